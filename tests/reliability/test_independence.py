"""One slow upstream costs the others nothing (issue 19 §1), with the real consume-pulse and broker."""

import time

import pytest

from life.models import Push, Repository, SyncState
from simulated.harness import WorkerProcess, declare_queues, queue_depth, wait_until
from tests.test_clones import make_repository
from tests.test_worker import publish, push_message

pytestmark = pytest.mark.django_db(transaction=True)

HANGING = "l10n-central/hanging"


def good_world(hgmo, repositories, pushes_each):
    """Repositories with ``pushes_each`` pushes each; returns [(name, push id)] in publishing order."""
    announced = []
    for n in range(repositories):
        repo = make_repository(hgmo, f"l10n-central/good{n}")
        for p in range(pushes_each):
            _, push_id = hgmo.commit_and_push(repo.name, {"a.ftl": f"a = {p}\n".encode()})
            announced.append((repo.name, push_id))
    return announced


def stored_pushes(names):
    return Push.objects.filter(repository__name__in=names).count()


def test_pushes_of_other_repositories_are_stored_while_one_server_hangs(hgmo, broker_url, worker_env, tmp_path,
                                                                         monkeypatch):
    hanging = make_repository(hgmo, HANGING)
    hgmo.commit_and_push(HANGING, {"a.ftl": b"a = 1\n"})
    announced = good_world(hgmo, repositories=5, pushes_each=4)
    declare_queues()
    hgmo.hang_seconds = 120
    hgmo.set_fault("slow-pull", HANGING)  # json-pushes answers; the clone's transfer never comes
    for _ in range(3):  # three messages for the hanging repository first, then every good push
        publish(broker_url, HANGING, push_message(hgmo, HANGING, 1))
    for name, push_id in announced:
        publish(broker_url, name, push_message(hgmo, name, push_id))

    monkeypatch.setenv("VCS_TIMEOUT", "100")
    monkeypatch.setenv("WORKER_THREADS", "3")
    started = time.monotonic()
    worker = WorkerProcess("--idle-exit", "300", log_path=tmp_path / "worker.log")
    names = {name for name, _ in announced}
    wait_until(lambda: stored_pushes(names) == len(announced), timeout=60)
    waited = time.monotonic() - started

    # Every good push is stored while the hanging repository's first clone still hangs (100 s).
    assert waited < 60
    assert not Push.objects.filter(repository=hanging).exists()
    assert "outcome=stored" in worker.output()
    # The hanging repository's later messages wait in a delay queue, not in the worker's hands.
    assert "is busy with earlier messages; not fetched now" in worker.output()
    wait_until(lambda: queue_depth(broker_url, "hgmo") == 0)


def test_a_repository_backing_off_is_not_fetched_for_its_messages(hgmo, broker_url, worker_env, tmp_path):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 1\n"})
    from datetime import timedelta

    from django.utils import timezone

    SyncState.objects.create(repository=repo, failures=7, next_attempt=timezone.now() + timedelta(hours=1),
                             last_error="earlier failures")
    declare_queues()
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))

    worker = WorkerProcess("--max-messages", "1", log_path=tmp_path / "worker.log")
    assert worker.wait() == 0, worker.output()

    assert "is backing off until" in worker.output()
    assert not Push.objects.filter(repository=repo).exists()
    assert Repository.objects.get(pk=repo.pk).sync_state.failures == 7  # not counted against it
    # One copy waits, untouched, for the back-off to end (its delay queue hands it back each second).
    wait_until(lambda: queue_depth(broker_url, "hgmo") + queue_depth(broker_url, "hgmo/retry-1s") == 1)
