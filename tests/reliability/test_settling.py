"""Settling never dispatches (issue 19 §3): no delivery is handled inside another's settling, and a kill at any
moment of settling leaves exactly one copy of the message."""

import signal
from pathlib import Path

import pytest

from life.models import Repository
from simulated.harness import WorkerProcess, declare_queues, queue_depth, run_worker
from tests.test_worker import publish, publish_unknown_pushes, push_message
from worker.consumer import PulseWorker
from worker.models import DeadLetter
from worker.settling import Settler

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_delivery_is_handled_while_a_retry_copy_is_published(hgmo, broker_url, worker_env, monkeypatch):
    hgmo.create_repo("l10n-central/de")
    Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    hgmo.set_fault("error")  # every push of the known repository is retried: a copy published per delivery
    declare_queues()
    for push_id in range(1, 6):
        publish(broker_url, "l10n-central/de", push_message(hgmo, "l10n-central/de", push_id))
    publish_unknown_pushes(broker_url, 40)  # deliveries waiting on the channel while copies go out

    settling, reentered, published = [False], [], []
    original_settle, original_on_message = PulseWorker.finish, PulseWorker.on_message
    original_publish = Settler._publish

    def finish(self, *args):
        settling[0] = True
        try:
            return original_settle(self, *args)
        finally:
            settling[0] = False

    def on_message(self, source, message):
        if settling[0]:
            reentered.append(message.delivery_info.get("routing_key"))
        return original_on_message(self, source, message)

    monkeypatch.setattr(PulseWorker, "finish", finish)
    monkeypatch.setattr(PulseWorker, "on_message", on_message)
    def publish_copy(self, body, **options):
        published.append(options["routing_key"])
        return original_publish(self, body, **options)

    monkeypatch.setattr(Settler, "_publish", publish_copy)

    worker = run_worker(max_messages=45)

    assert worker.handled == 45
    assert len(published) == 5  # a retry copy for each push of the failing repository
    assert reentered == []  # none handled inside another's settling
    assert queue_depth(broker_url, "hgmo") == 0
    assert queue_depth(broker_url, "hgmo/retry-1s") + queue_depth(broker_url, "hgmo") <= 5


KILLED_WHILE_SETTLING = Path(__file__).with_name("killed_while_settling.py")
FAILING = "l10n-central/de"

# (what becomes of the message, where the worker is killed while settling it)
KILL_POINTS = [
    ("retried", "before-settling"),  # the outcome known, nothing of it recorded
    ("retried", "after-publish"),  # the retry copy confirmed, the original not acked
    ("retried", "after-ack"),
    ("retried", "after-dead-letter"),  # the copy's dead letter committed, the copy not acked
    ("dead-lettered", "before-settling"),
    ("dead-lettered", "after-dead-letter"),  # the dead letter committed, the message not acked
    ("dead-lettered", "after-ack"),
]


@pytest.mark.parametrize("fate, point", KILL_POINTS, ids=[f"{fate} {point}" for fate, point in KILL_POINTS])
def test_a_kill_at_any_moment_of_settling_leaves_exactly_one_copy(hgmo, broker_url, worker_env, monkeypatch,
                                                                  tmp_path, fate, point):
    """A worker killed (SIGKILL) at ``point`` while settling a message, then a worker started again:
    the message ends as exactly one dead letter, and no copy is left in any queue. A retried message
    gives up after one retry (PULSE_MAX_RETRIES=1), so its one copy ends as a dead letter too."""
    hgmo.create_repo(FAILING)
    Repository.objects.create(name=FAILING, url=hgmo.repo_url(FAILING))
    monkeypatch.setenv("PULSE_MAX_RETRIES", "1")
    declare_queues()
    if fate == "retried":
        hgmo.set_fault("error")  # every attempt fails transiently
        publish(broker_url, FAILING, push_message(hgmo, FAILING, 1))
    else:
        publish(broker_url, FAILING, b"not JSON at all")
    marker = tmp_path / "killed"

    killed = WorkerProcess("--idle-exit", "30", log_path=tmp_path / "killed.log",
                           program=[str(KILLED_WHILE_SETTLING), point, str(marker)])
    assert killed.wait(timeout=120) == -signal.SIGKILL, killed.output()[-3000:]
    assert marker.read_text() == point
    again = WorkerProcess("--idle-exit", "5", log_path=tmp_path / "again.log")
    assert again.wait(timeout=120) == 0, again.output()[-3000:]

    letters = list(DeadLetter.objects.all())
    assert len(letters) == 1, [(letter.error, letter.retries) for letter in letters]
    assert letters[0].routing_key == FAILING and letters[0].exchange == "exchange/hgpushes/v2"
    assert ("gave up after 1 retries" in letters[0].error) == (fate == "retried"), letters[0].error
    for queue in ("hgmo", "hgmo/retry-1s"):
        assert queue_depth(broker_url, queue) == 0, queue
