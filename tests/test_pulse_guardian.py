"""Living with PulseGuardian: Pulse deletes a queue past its size limit, whatever it holds.

Every queue the worker owns is bounded (PULSE_QUEUE_MAX_LENGTH); queues
deployed without the bound are re-made with every message; a source's queue
deleted behind the worker's back is noticed, counted and backfilled; dead
letters are kept only as long as their retention. Real RabbitMQ (a scratch
vhost per test), real databases.
"""

import json
import threading
from datetime import timedelta

import pytest
from amqp.exceptions import NotFound, PreconditionFailed, ResourceLocked
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from kombu import Connection, Exchange, Producer
from prometheus_client import REGISTRY

from life.models import Push, Repository
from simulated import pulse
from simulated.harness import declare_queues, queue_depth, run_worker, wait_until
from tests.worker_support import configure
from worker import remaking, topology
from worker.config import brokers
from worker.consumer import PulseWorker, connect
from worker.dispatch import Delivery
from worker.hgmo import KnownRepositories
from worker.housekeeping import Housekeeping
from worker.models import DeadLetter
from worker.policy import ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER
from worker.sources import sources


def main_broker():
    from django.conf import settings

    return brokers(settings)[0]


def publish_many(broker_url, count, prefix="m"):
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel)
        for n in range(count):
            producer.publish(f"{prefix}{n}".encode(), exchange=Exchange(pulse.HGPUSH_EXCHANGE, type="topic",
                             passive=True), routing_key=f"repo/{n}", content_type="application/json",
                             content_encoding="utf-8", delivery_mode=2, declare=[])


def publish_to_own(broker_url, broker, routing_key, count, prefix):
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel)
        for n in range(count):
            producer.publish(f"{prefix}{n}".encode(), exchange=topology.own_exchange(broker), routing_key=routing_key,
                             headers={"x-test": n}, delivery_mode=2, declare=[])


def drain(broker_url, suffix):
    """Every message of the worker's queue ``suffix``, taken (body, exchange, routing key, headers)."""
    from settings.pulse import user_of

    name = f"queue/{user_of(broker_url)}/worker/{suffix}"
    taken = []
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            taken.append((body, message.delivery_info["exchange"], message.delivery_info["routing_key"],
                          message.headers))
    return taken


def hgmo_source(broker):
    return next(s for s in sources(broker, KnownRepositories(ttl=0)) if s.name == "hgmo")


# --- bounded queues ---------------------------------------------------------------


@pytest.mark.django_db
def test_every_queue_the_worker_owns_is_bounded(broker_url, worker_env, monkeypatch, settings):
    configure(monkeypatch, settings, PULSE_QUEUE_MAX_LENGTH="5", PULSE_RETRY_DELAYS="600")
    broker = main_broker()
    declare_queues()
    source = hgmo_source(broker)

    publish_many(broker_url, 8)  # three past the bound: the oldest give way into the parking queue
    depths = lambda: (queue_depth(broker_url, "hgmo/parked"), queue_depth(broker_url, "hgmo"))  # noqa: E731
    try:
        wait_until(lambda: depths() == (3, 5))
    except AssertionError:
        raise AssertionError(depths()) from None
    assert [body for body, *_ in drain(broker_url, "hgmo")] == [f"m{n}".encode() for n in range(3, 8)]

    publish_to_own(broker_url, broker, topology.parked_key(source), 9, "p")  # the parking queue: oldest dropped
    wait_until(lambda: queue_depth(broker_url, "hgmo/parked") == 5)
    # A delay queue: the oldest go back to the source's queue early (never lost).
    publish_to_own(broker_url, broker, topology.retry_key(source, 600), 7, "r")
    wait_until(lambda: queue_depth(broker_url, "hgmo") == 2)
    assert queue_depth(broker_url, "hgmo/retry-600s") == 5


# --- re-making queues deployed without the bound ---------------------------------------


def old_arguments(broker):
    """What queues were declared with before PULSE_QUEUE_MAX_LENGTH."""
    return {"x-expires": broker.queue_expires_seconds * 1000}


@pytest.mark.django_db
def test_queues_declared_without_the_bound_are_remade_keeping_every_message(hgmo, broker_url, worker_env, monkeypatch,
                                                                            settings):
    configure(monkeypatch, settings, PULSE_RETRY_DELAYS="600")
    broker = main_broker()
    source = hgmo_source(broker)
    with monkeypatch.context() as old:
        old.setattr(topology, "_expiring", old_arguments)
        declare_queues()
    repo = Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    hgmo.create_repo(repo.name)
    _, push_id = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = b\n"})
    push = json.dumps(pulse.changegroup(repo.name, repo.url, [push_id])).encode()
    with Connection(broker_url) as conn:
        pulse.publish_hgpush(conn, repo.name, push)
    publish_many(broker_url, 3000)  # past 2,000: RabbitMQ delivers a classic queue in rounds
    publish_to_own(broker_url, broker, topology.retry_key(source, 600), 300, "r")
    publish_to_own(broker_url, broker, topology.parked_key(source), 40, "p")
    wait_until(lambda: queue_depth(broker_url, "hgmo") == 3001)
    monkeypatch.setattr(remaking, "BATCH", 100)  # a dozen transactions per queue

    declare_queues()  # what the worker does at start

    assert queue_depth(broker_url, "hgmo") == 3001
    assert queue_depth(broker_url, "hgmo/retry-600s") == 300
    assert queue_depth(broker_url, "hgmo/parked") == 40
    # They are the queues the configuration asks for now: declared with the old arguments, refused.
    with Connection(broker_url) as conn, pytest.raises(PreconditionFailed):
        conn.default_channel.queue_declare(topology.queue_name(broker, source), durable=True,
                                           arguments={**old_arguments(broker), "x-queue-type": "quorum"})
    with Connection(broker_url) as conn, pytest.raises(Exception, match="NOT_FOUND"):
        conn.default_channel.queue_declare(remaking.holding_name(topology.queue_name(broker, source)), passive=True)

    # Still bound: a new message arrives.
    publish_many(broker_url, 1, prefix="after")
    wait_until(lambda: queue_depth(broker_url, "hgmo") == 3002)
    kept = drain(broker_url, "hgmo")
    assert sorted(body for body, *_ in kept) == sorted([f"m{n}".encode() for n in range(3000)] + [b"after0", push])
    for body, exchange, key, headers in kept:
        if body == b"after0":
            assert (exchange, key) == (pulse.HGPUSH_EXCHANGE, "repo/0")
        else:  # moved twice: the worker's exchange, and headers saying where it first came from
            assert exchange == broker.own_exchange
            assert headers[ORIGINAL_EXCHANGE_HEADER] == pulse.HGPUSH_EXCHANGE
            assert headers[ORIGINAL_ROUTING_KEY_HEADER] == (repo.name if body == push else f"repo/{body.decode()[1:]}")
    # The worker handles the push as hg.mozilla.org's.
    with Connection(broker_url) as conn:
        Producer(conn.default_channel).publish(push, exchange=topology.own_exchange(broker),
                                               routing_key=topology.redeliver_key(source), headers=next(
                                                   h for b, _, _, h in kept if b == push),
                                               content_type="application/json", content_encoding="utf-8", declare=[])
    run_worker(max_messages=1)
    assert Push.objects.filter(repository=repo, push_id=push_id).exists()
    retried = drain(broker_url, "hgmo/retry-600s")
    assert sorted(headers["x-test"] for _, _, _, headers in retried) == list(range(300))
    assert sorted(body for body, *_ in drain(broker_url, "hgmo/parked")) == sorted(f"p{n}".encode() for n in range(40))


class Killed(Exception):
    pass


@pytest.mark.django_db
@pytest.mark.parametrize("kill_at", ["moving out", "deleted", "moving back"])
def test_a_remaking_killed_midway_is_finished_by_the_next_start(broker_url, worker_env, monkeypatch, settings,
                                                                kill_at):
    with monkeypatch.context() as old:
        old.setattr(topology, "_expiring", old_arguments)
        declare_queues()
    publish_many(broker_url, 250)
    assert queue_depth(broker_url, "hgmo") == 250, queue_depth(broker_url, "hgmo")
    monkeypatch.setattr(remaking, "BATCH", 100)

    with monkeypatch.context() as dying:
        if kill_at == "deleted":
            # Dies once the old queue is deleted, before the new one is declared.
            declared = remaking._declared
            calls = []

            def dies_after_delete(connection, queue):
                if queue.name.endswith("/hgmo"):
                    calls.append(queue.name)
                    if len(calls) == 4:  # declare, remake's check, remake's own try, then after the delete
                        raise Killed
                return declared(connection, queue)

            dying.setattr(remaking, "_declared", dies_after_delete)
        else:
            keep_origin = remaking._keep_origin
            seen = []

            def dies_in_second_batch(message, broker):
                moving_back = message.delivery_info["exchange"] == ""
                if moving_back == (kill_at == "moving back"):
                    seen.append(message)
                    if len(seen) == 150:  # one batch committed, half of the next one in hand
                        raise Killed
                return keep_origin(message, broker)

            dying.setattr(remaking, "_keep_origin", dies_in_second_batch)
        with pytest.raises(Killed):
            declare_queues()  # the connection closes: what was not committed goes back

    declare_queues()  # the next start

    assert sorted(body for body, *_ in drain(broker_url, "hgmo")) == sorted(f"m{n}".encode() for n in range(250))


def test_only_one_worker_remakes_at_a_time(broker_url, worker_env):
    broker = main_broker()
    with connect(broker) as first, connect(broker) as second:
        with remaking.lock(first.default_channel.connection, broker):
            with pytest.raises(ResourceLocked):
                with remaking.lock(second.default_channel.connection, broker, wait=1.5):
                    pass
        with remaking.lock(second.default_channel.connection, broker, wait=1):
            pass


# --- a queue deleted behind the worker's back -------------------------------------------


def lost(how):
    return REGISTRY.get_sample_value("l10n_worker_queue_lost_total", {"source": "hgmo", "how": how}) or 0.0


@pytest.mark.django_db(transaction=True)
def test_a_queue_deleted_under_the_consumer_is_counted_redeclared_and_backfilled(hgmo, broker_url, worker_env,
                                                                                 caplog):
    repo = Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    hgmo.create_repo(repo.name)
    declare_queues()
    broker = main_broker()
    worker = PulseWorker(connect(broker), broker, threads=0)

    def run():
        try:
            worker.run()
        finally:
            connections.close_all()  # the test database is dropped after the test

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.consumers)
        before = lost("cancelled")
        hgmo.commit_and_push(repo.name, {"a.ftl": b"a = b\n"})  # announced in the messages Pulse deletes
        name = topology.queue_name(broker, hgmo_source(broker))
        with Connection(broker_url) as conn:
            conn.default_channel.queue_delete(name)  # what PulseGuardian does

        wait_until(lambda: Push.objects.filter(repository=repo).count() == 1, timeout=30)
        assert lost("cancelled") == before + 1
        assert lost("missing") == 0  # declared again at once: the same loss, counted once
        wait_until(lambda: queue_consumers(broker_url, name) == 1)
    finally:
        worker.stop()
        thread.join(30)
    assert f"queue {name} was deleted behind the worker's back" in caplog.text


def queue_consumers(broker_url, name):
    with Connection(broker_url) as conn:
        try:
            return conn.default_channel.queue_declare(name, passive=True).consumer_count
        except NotFound:
            return 0  # not declared again yet


@pytest.mark.django_db(transaction=True)
def test_a_queue_found_missing_at_start_is_counted_and_backfilled(hgmo, broker_url, worker_env):
    repo = Repository.objects.create(name="l10n-central/fr", url=hgmo.repo_url("l10n-central/fr"))
    hgmo.create_repo(repo.name)
    declare_queues()  # the worker knew it (its bindings are recorded)
    broker = main_broker()
    name = topology.queue_name(broker, hgmo_source(broker))
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = b\n"})
    with Connection(broker_url) as conn:
        conn.default_channel.queue_delete(name)  # while no worker was connected
    before = lost("missing")

    worker = run_worker(idle_exit=1, threads=0)
    worker.housekeeping.backfill_thread.join(30)

    assert lost("missing") == before + 1
    assert Push.objects.filter(repository=repo).count() == 1
    assert queue_depth(broker_url, "hgmo") == 0  # declared again


@pytest.mark.django_db(transaction=True)
def test_a_queue_new_to_the_worker_is_not_a_loss(broker_url, worker_env):
    before = lost("missing")
    worker = run_worker(idle_exit=0.5, threads=0)
    assert lost("missing") == before
    assert worker.housekeeping.backfill_thread is None


# --- dead letters' retention ----------------------------------------------------------


def letter(days_old, resolved_days_ago=None, resolved=None):
    row = DeadLetter.record(Delivery(b"{}", "exchange/hgpushes/v2", f"r/{days_old}", None, {}), "bad")
    now = timezone.now()
    DeadLetter.objects.filter(pk=row.pk).update(
        created=now - timedelta(days=days_old),
        resolved=resolved if resolved is not None else resolved_days_ago is not None,
        resolved_at=None if resolved_days_ago is None else now - timedelta(days=resolved_days_ago),
    )
    return row.pk


@pytest.mark.django_db
def test_prune_dead_letters_deletes_exactly_those_past_their_retention(capsys):
    doomed = {
        letter(100, resolved_days_ago=91),
        letter(95, resolved=True),  # resolved before it said when: counted from its arrival
        letter(366),
    }
    kept = {
        letter(400, resolved_days_ago=89),
        letter(364),
        letter(1),
        letter(2, resolved_days_ago=1),
    }

    call_command("prune-dead-letters", "--dry-run")
    dry = capsys.readouterr().out
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == doomed | kept
    assert "would delete 2 resolved dead letters" in dry and "and 1 unresolved ones" in dry
    assert {int(line.split()[0][1:]) for line in dry.splitlines() if line.startswith("#")} == doomed

    call_command("prune-dead-letters")
    out = capsys.readouterr().out
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == kept
    assert {int(line.split()[0][1:]) for line in out.splitlines() if line.startswith("#")} == doomed
    assert "deleted 2 resolved dead letters (resolved over 90 days ago) and 1 unresolved ones" in out


@pytest.mark.django_db
def test_the_retention_follows_the_settings_and_the_worker_prunes_daily(settings):
    settings.DEAD_LETTER_RETENTION = 10
    settings.DEAD_LETTER_RETENTION_UNRESOLVED = 20
    resolved, unresolved, young = letter(30, resolved_days_ago=11), letter(21), letter(19)
    house = Housekeeping(backfills=True)

    house.maybe_prune()
    assert set(DeadLetter.objects.values_list("pk", flat=True)) == {young}

    older = letter(50)
    house.maybe_prune()  # once a day
    assert DeadLetter.objects.filter(pk=older).exists()
    house.next_prune = 0  # a day later
    house.maybe_prune()
    assert not DeadLetter.objects.filter(pk=older).exists()
    assert {resolved, unresolved} & set(DeadLetter.objects.values_list("pk", flat=True)) == set()

