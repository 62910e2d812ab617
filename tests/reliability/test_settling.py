"""Settling never dispatches (issue 19 §3): no delivery is handled inside another's settling."""

import pytest

from life.models import Repository
from simulated.harness import declare_queues, queue_depth, run_worker
from tests.test_worker import publish, publish_unknown_pushes, push_message
from worker.consumer import PulseWorker
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
