"""consume-pulse against the real RabbitMQ, the real database and the simulated hg.mozilla.org."""

import logging
import signal
import subprocess
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from kombu import Connection

from life.models import Changeset, Forest, Push, Repository
from simulated import pulse
from simulated.harness import WorkerProcess, declare_queues, queue_depth, run_worker, wait_until
from worker.config import brokers
from worker.consumer import DEFERRED_ACK_DELAY, PulseWorker, connect
from worker.hgmo import KnownRepositories
from worker.models import DeadLetter
from worker.outcome_log import SkipSummary


def make_repository(hgmo, name):
    hgmo.create_repo(name)
    return Repository.objects.create(name=name, url=hgmo.repo_url(name))


def publish(broker_url, repository, body, **kwargs):
    with Connection(broker_url) as conn:
        pulse.publish_hgpush(conn, repository, body, **kwargs)


def push_message(hgmo, name, push_id):
    return pulse.changegroup(name, hgmo.repo_url(name), [push_id])


@pytest.mark.django_db
def test_changegroup_is_stored_and_acked(hgmo, broker_url, worker_env):
    repo = make_repository(hgmo, "l10n-central/de")
    node, push_id = hgmo.commit_and_push("l10n-central/de", {"a.ftl": b"a = b\n"})
    declare_queues()
    publish(broker_url, repo.name, push_message(hgmo, repo.name, push_id))

    worker = run_worker(max_messages=1)

    assert worker.handled == 1
    assert Push.objects.get(repository=repo, push_id=1).changesets.get().revision == node
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db
def test_same_message_twice_stores_once(hgmo, broker_url, worker_env):
    repo = make_repository(hgmo, "l10n-central/fr")
    _, push_id = hgmo.commit_and_push("l10n-central/fr", {"a": b"1"})
    declare_queues()
    for _ in range(2):
        publish(broker_url, repo.name, push_message(hgmo, repo.name, push_id))

    run_worker(max_messages=2)

    assert Push.objects.filter(repository=repo).count() == 1
    assert Changeset.objects.count() == 2  # null + the pushed one
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db
def test_unknown_repository_obsolete_and_unknown_type_store_nothing(hgmo, broker_url, worker_env):
    repo = make_repository(hgmo, "l10n-central/de")
    declare_queues()
    publish(broker_url, "l10n-central/xx", pulse.changegroup("l10n-central/xx", "https://hg.example/x/", [7]))
    publish(broker_url, repo.name, pulse.obsolete(repo.name, repo.url, ["a" * 40]))
    publish(broker_url, repo.name, pulse.hgpush_body("brand-new.7", repo.name, {"repo_url": repo.url}))
    hgmo.stop()  # nothing here may contact hg

    run_worker(max_messages=3)

    assert not Push.objects.exists()
    assert Changeset.objects.count() == 1
    assert not DeadLetter.objects.exists()
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db
def test_a_repository_not_tracked_is_skipped_by_its_routing_key_whatever_its_body(hgmo, broker_url, worker_env):
    """Most of what hg.mozilla.org announces is for repositories nobody tracks: skipped unread, so a
    body that would not parse costs nothing and stores nothing; ours, or one under a known forest
    (``newrepo.1`` may add it), is read as ever."""
    repo = make_repository(hgmo, "l10n-central/de")
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    declare_queues()
    publish(broker_url, "try", b"{not json")
    publish(broker_url, "integration/autoland", b"\xff\xfe")
    publish(broker_url, repo.name, b"{not json")
    publish(broker_url, "l10n-central/it", b"{not json")
    hgmo.stop()  # nothing here may contact hg

    worker = run_worker(max_messages=4)

    assert worker.handled == 4
    assert sorted(DeadLetter.objects.values_list("routing_key", flat=True)) == ["l10n-central/de", "l10n-central/it"]
    assert not Push.objects.exists()
    assert queue_depth(broker_url, "hgmo") == 0


def test_skipped_unread_deliveries_are_summed_up_once_an_interval(caplog):
    now = [0.0]
    summary = SkipSummary(interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="worker"):
        for second in range(0, 120, 2):  # one skip every 2 s for two minutes
            now[0] = float(second)
            summary.add()
        now[0] = 130.0
        summary.flush_if_due()  # 59 s since the last line: not yet
        summary.flush()  # the consumer stops: what is left is logged
        summary.flush()  # nothing left: no line
    assert [record.getMessage() for record in caplog.records] == [
        "skipped 31 messages for repositories not tracked, in the last 60s",  # 0 s to 60 s
        "skipped 29 messages for repositories not tracked, in the last 70s",  # 62 s to 118 s
    ]


@pytest.mark.django_db
def test_malformed_body_is_dead_lettered_and_replayed_after_fix(hgmo, broker_url, worker_env):
    repo = make_repository(hgmo, "l10n-central/de")
    _, push_id = hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    declare_queues()
    publish(broker_url, repo.name, b"{not json")
    publish(broker_url, "unknown/repo", pulse.changegroup("unknown/repo", "https://hg.example/", [1]))
    # Points at a repository the database does not know yet: permanent until an operator adds it.
    publish(broker_url, "l10n-central/it", pulse.newrepo("l10n-central/it", hgmo.repo_url("l10n-central/it")))
    Forest.objects.create(name="l10n-central", url="https://elsewhere.example/l10n-central/")

    run_worker(max_messages=3)

    letters = list(DeadLetter.objects.order_by("created"))
    assert [(d.routing_key, d.resolved) for d in letters] == [("l10n-central/de", False), ("l10n-central/it", False)]
    assert "not JSON" in letters[0].error
    assert bytes(letters[0].body) == b"{not json"
    assert "is not https://elsewhere.example/l10n-central/it/" in letters[1].error
    assert queue_depth(broker_url, "hgmo") == 0

    # The operator fixes the forest's URL; the replay now creates the repository.
    hgmo.create_repo("l10n-central/it")
    Forest.objects.filter(name="l10n-central").update(url=hgmo.url + "l10n-central/")
    with pytest.raises(CommandError, match="1 dead letter"):
        call_command("replay-failed")
    assert Repository.objects.filter(name="l10n-central/it").exists()
    letters[1].refresh_from_db()
    assert letters[1].resolved and letters[1].replays == 1
    assert not DeadLetter.objects.get(pk=letters[0].pk).resolved


@pytest.mark.django_db
def test_upstream_down_is_retried_without_holding_up_other_repositories(hgmo, broker_url, worker_env):
    sick = make_repository(hgmo, "l10n-central/de")
    healthy = make_repository(hgmo, "l10n-central/fr")
    hgmo.commit_and_push(sick.name, {"a": b"1"})
    hgmo.commit_and_push(healthy.name, {"a": b"1"})
    hgmo.set_fault("error", sick.name)
    declare_queues()
    publish(broker_url, sick.name, push_message(hgmo, sick.name, 1))
    publish(broker_url, healthy.name, push_message(hgmo, healthy.name, 1))

    run_worker(max_messages=2)  # the sick one fails and goes to the delay queue

    assert Push.objects.filter(repository=healthy).count() == 1
    assert not Push.objects.filter(repository=sick).exists()
    assert not DeadLetter.objects.exists()

    hgmo.set_fault(None)
    run_worker(max_messages=1)  # it comes back after the retry delay

    assert Push.objects.filter(repository=sick).count() == 1
    assert queue_depth(broker_url, "hgmo") == 0


# --- the real command in a subprocess ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sigkill_while_handling_a_push_stores_it_exactly_once_after_restart(hgmo, broker_url, worker_env, tmp_path):
    repo = make_repository(hgmo, "l10n-central/de")
    node, _ = hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    hgmo.hang_seconds = 30
    hgmo.set_fault("hang", repo.name)
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))

    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    worker.wait_for_log("consuming")
    wait_until(lambda: hgmo.requests_seen > 0)
    worker.kill()
    hgmo.set_fault(None)

    restarted = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker2.log")
    assert restarted.wait() == 0, restarted.output()

    assert Push.objects.filter(repository=repo).count() == 1
    assert Changeset.objects.filter(revision=node).count() == 1
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_message_in_hand_and_exits_zero(hgmo, broker_url, worker_env, tmp_path):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    hgmo.hang_seconds = 3
    hgmo.set_fault("hang", repo.name)
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))

    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    worker.wait_for_log("consuming")
    wait_until(lambda: hgmo.requests_seen > 0)
    worker.signal(signal.SIGTERM)

    assert worker.wait() == 0, worker.output()
    assert "outcome=stored" in worker.output()
    assert Push.objects.filter(repository=repo).count() == 1
    assert queue_depth(broker_url, "hgmo") == 0


def publish_unknown_pushes(broker_url, count):
    for n in range(count):
        name = f"try/unknown{n}"
        publish(broker_url, name, pulse.changegroup(name, f"https://hg.example/{name}/", [n + 1]))


@pytest.mark.django_db(transaction=True)
def test_skipped_messages_are_acked_once_the_queue_is_quiet(broker_url, worker_env, tmp_path, monkeypatch):
    """Skipped messages are acked together, late; a worker that dies after the queue went quiet
    must not get them back (acks wait at most DEFERRED_ACK_DELAY plus one idle poll of 1 s)."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # a line per skipped message
    declare_queues()
    publish_unknown_pushes(broker_url, 5)
    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    wait_until(lambda: worker.output().count("outcome=skipped") == 5)
    time.sleep(DEFERRED_ACK_DELAY + 2)
    worker.kill()

    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db(transaction=True)
def test_a_stored_message_acks_the_skipped_ones_before_it(hgmo, broker_url, worker_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # a line per skipped message
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    publish_unknown_pushes(broker_url, 5)
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))
    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    worker.wait_for_log("outcome=stored")
    worker.kill()  # at once: no time for the quiet-queue acks

    assert worker.output().count("outcome=skipped") == 5
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db(transaction=True)
def test_reconnects_after_the_broker_closes_its_connection(hgmo, broker_url, worker_env, tmp_path):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    worker.wait_for_log("consuming")
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))
    wait_until(lambda: Push.objects.filter(repository=repo).count() == 1)

    vhost = broker_url.rsplit("/", 1)[1]
    closed = subprocess.run(
        ["rabbitmqctl", "close_all_connections", "--vhost", vhost, "--limit", "100", "test"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    assert "Closed 0 connections" not in closed.stdout
    hgmo.commit_and_push(repo.name, {"a": b"2"})
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 2))

    wait_until(lambda: Push.objects.filter(repository=repo).count() == 2, timeout=60)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert worker.output().count("consuming") >= 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_give_the_same_database_as_one(hgmo, broker_url, worker_env, tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("parallel workers need PostgreSQL or MySQL (SQLite has no row locks)")
    names = [f"l10n-central/l{i}" for i in range(10)]
    for name in names:
        make_repository(hgmo, name)
    messages = []
    for round_ in range(20):
        for name in names:
            _, push_id = hgmo.commit_and_push(name, {f"f{round_}.ftl": f"{name} = {round_}\n".encode()})
            messages.append((name, push_message(hgmo, name, push_id)))
    declare_queues()
    with Connection(broker_url) as conn:
        for name, body in messages:
            pulse.publish_hgpush(conn, name, body)

    workers = [WorkerProcess("--idle-exit", "3", log_path=tmp_path / f"w{i}.log") for i in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]

    assert sum(w.output().count("outcome=") for w in workers) == 200
    assert Push.objects.count() == 200
    for name in names:
        expected = {p["id"]: p["changesets"] for p in hgmo.pushlog(name)}
        stored_pushes = Push.objects.filter(repository__name=name).prefetch_related("changesets")
        assert {p.push_id: [c.revision for c in p.changesets.all()] for p in stored_pushes} == expected
    assert Changeset.objects.complete().count() == 201  # the null changeset and 200 pushed
    assert not DeadLetter.objects.exists()
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db
def test_known_repositories_are_read_once_per_ttl():
    now = [0.0]
    known = KnownRepositories(ttl=5, clock=lambda: now[0])
    assert "l10n-central/de" not in known
    Repository.objects.create(name="l10n-central/de", url="https://hg.example/l10n-central/de/")
    now[0] = 4.9
    assert "l10n-central/de" not in known  # no query per message within the TTL
    now[0] = 5.0
    assert "l10n-central/de" in known
    Repository.objects.filter(name="l10n-central/de").update(archived=True)
    assert "l10n-central/de" in known
    known.forget()  # a new repository was just made: read again at once
    assert "l10n-central/de" not in known


@pytest.mark.django_db
def test_each_worker_has_its_own_cache_of_known_repositories(broker_url, worker_env):
    broker = brokers(settings)[0]
    first, second = (PulseWorker(connect(broker), broker) for _ in range(2))
    hgmo_handlers = [next(s.handle for s in w.sources if s.name == "hgmo") for w in (first, second)]
    assert hgmo_handlers[0].known is not hgmo_handlers[1].known
    assert hgmo_handlers[0].known.ttl == settings.KNOWN_REPOSITORIES_TTL


@pytest.mark.django_db
def test_an_earlier_versions_queue_is_drained_into_the_new_one_and_deleted(hgmo, broker_url, worker_env):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    legacy = "queue/guest/hgmo"  # a classic queue, as earlier versions declared it
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        channel.queue_declare(legacy, durable=True, auto_delete=False)
        channel.queue_bind(legacy, "exchange/hgpushes/v2", "#")
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))  # waiting in the old queue only

    run_worker(max_messages=1)

    assert Push.objects.filter(repository=repo).count() == 1
    with Connection(broker_url) as conn:
        with pytest.raises(Exception, match="NOT_FOUND"):
            conn.default_channel.queue_declare(legacy, passive=True)
    assert queue_depth(broker_url, "hgmo") == 0


@pytest.mark.django_db
def test_an_upstream_exchange_the_broker_lacks_disables_only_its_source(hgmo, broker_url, worker_env, caplog):
    with Connection(broker_url) as conn:
        conn.default_channel.exchange_delete("exchange/github-webhooks/v1")  # not published by this deployment
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))

    run_worker(max_messages=1)

    assert Push.objects.filter(repository=repo).count() == 1
    assert "upstream exchange exchange/github-webhooks/v1 does not exist" in caplog.text
    assert "source github-webhooks is not consumed" in caplog.text


# --- the handler threads: a slow job does not shrink the pool (worker/lanes.py) ---------------


def test_a_slow_job_gets_a_thread_standing_in_for_it_and_the_surplus_ends_after(monkeypatch):
    import threading

    from worker import lanes

    monkeypatch.setattr(lanes, "SLOW_JOB_SECONDS", 0.3)
    monkeypatch.setattr(lanes, "IDLE_CHECK_SECONDS", 0.1)
    pool = lanes.Lanes(threads=1, backlog_limit=5)
    hanging = threading.Event()
    pool.submit("hg:hanging", "hang", lambda: hanging.wait(30) and "released")
    pool.submit("hg:good", "good", lambda: "stored")

    finished = []
    wait_until(lambda: finished.extend(pool.collect()) or finished, timeout=10, interval=0.05)

    # The one configured thread is held by the hanging job; the good one ran on a thread standing in for it.
    assert finished == [("good", "stored", None)]
    assert len(pool.workers) == 2
    hanging.set()
    wait_until(lambda: finished.extend(pool.collect()) or len(finished) == 2, timeout=10, interval=0.05)
    assert finished[1] == ("hang", "released", None)
    wait_until(lambda: len(pool.workers) == 1, timeout=10)  # the surplus thread ends once idle
    pool.submit("hg:good", "again", lambda: "stored")
    wait_until(lambda: finished.extend(pool.collect()) or len(finished) == 3, timeout=10, interval=0.05)
    assert finished[2] == ("again", "stored", None)


def test_closing_the_pool_ends_its_threads_and_so_their_database_connections():
    # What a worker does when it stops, for a process that goes on (a test's, a command run in-process).
    from worker import lanes

    pool = lanes.Lanes(threads=3, backlog_limit=5)
    for n in range(3):
        pool.submit(f"hg:{n}", n, lambda n=n: n * 2)
    finished = []
    wait_until(lambda: finished.extend(pool.collect()) or len(finished) == 3, timeout=10, interval=0.05)
    threads = list(pool.workers)
    pool.close()

    assert sorted(outcome for _, outcome, _ in finished) == [0, 2, 4]
    assert len(threads) == 3 and not any(thread.is_alive() for thread in threads) and not pool.workers


def test_no_thread_stands_in_beyond_the_extra_allowed(monkeypatch):
    import threading

    from worker import lanes

    monkeypatch.setattr(lanes, "SLOW_JOB_SECONDS", 0.1)
    pool = lanes.Lanes(threads=1, backlog_limit=5, extra_threads=0)  # SQLite: one writer at a time
    hanging = threading.Event()
    pool.submit("hg:hanging", "hang", lambda: hanging.wait(30))
    pool.submit("hg:good", "good", lambda: "stored")
    time.sleep(0.5)

    assert pool.collect() == [] and len(pool.workers) == 1  # the good job waits for the only thread
    hanging.set()
    finished = []
    wait_until(lambda: finished.extend(pool.collect()) or len(finished) == 2, timeout=10, interval=0.05)
    assert [token for token, _, _ in finished] == ["hang", "good"]
