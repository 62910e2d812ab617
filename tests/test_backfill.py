"""Backfill: nothing missed when notifications are."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from kombu import Connection

from life.backfill import backfill
from life.models import Push, Repository, SyncState
from life.sync import FAILURES_BEFORE_BACKOFF, next_attempt
from simulated import pulse
from simulated.harness import WorkerProcess, declare_queues, run_worker
from worker.metrics import SyncStateCollector


def make_repositories(hgmo, *names):
    repositories = []
    for name in names:
        hgmo.create_repo(name)
        repositories.append(Repository.objects.create(name=name, url=hgmo.repo_url(name)))
    return repositories


def state(repository):
    return SyncState.objects.get(repository=repository)


def test_back_off_starts_after_a_few_failures_and_is_capped():
    now = timezone.now()
    assert [next_attempt(n, now) - now for n in range(FAILURES_BEFORE_BACKOFF)] == [timedelta(0)] * 5
    waits = [next_attempt(n, now) - now for n in range(5, 20)]
    assert waits[0] == timedelta(minutes=1) and waits[1] == timedelta(minutes=2)
    assert waits == sorted(waits) and max(waits) == timedelta(hours=6)


@pytest.mark.django_db
def test_pushes_made_while_no_worker_runs_are_stored_without_any_message(hgmo, capsys):
    de, fr, it = make_repositories(hgmo, "l10n-central/de", "l10n-central/fr", "l10n-central/it")
    for repository, pushes in ((de, 2), (fr, 1), (it, 0)):
        for i in range(pushes):
            hgmo.commit_and_push(repository.name, {"a.ftl": f"a = {i}\n".encode()})

    call_command("backfill")

    assert sorted(Push.objects.values_list("repository__name", "push_id")) == [
        ("l10n-central/de", 1), ("l10n-central/de", 2), ("l10n-central/fr", 1)]
    assert (state(de).stored_push_id, state(de).upstream_push_id, state(de).failures) == (2, 2, 0)
    assert state(it).last_synced is not None
    output = capsys.readouterr().out
    assert "l10n-central/de: caught up: 2 pushes" in output and "l10n-central/it: up to date" in output
    assert output.strip().endswith("2 caught up, 1 up to date, 0 failed, 0 backing off")


@pytest.mark.django_db
def test_failing_repository_backs_off_without_starving_the_others(hgmo):
    sick, healthy = make_repositories(hgmo, "l10n-central/de", "l10n-central/fr")
    hgmo.set_fault("error", sick.name)
    for attempt in range(1, FAILURES_BEFORE_BACKOFF + 1):
        hgmo.commit_and_push(healthy.name, {"a": str(attempt).encode()})
        hgmo.commit_and_push(sick.name, {"a": str(attempt).encode()})
        report = backfill()
        # The sick one was tried longest ago, so it goes first; the other still gets its turn.
        assert [(o.name, o.status) for o in report.outcomes] == [(sick.name, "failed"), (healthy.name, "caught up")]
        assert state(sick).failures == attempt
        assert "HTTP 500" in state(sick).last_error
    assert state(sick).next_attempt > timezone.now()  # backing off now

    report = backfill()
    assert [o.name for o in report.outcomes] == [healthy.name] and report.backed_off == 1

    hgmo.set_fault(None)
    SyncState.objects.filter(repository=sick).update(next_attempt=timezone.now())  # time passes
    report = backfill()
    assert {o.name: o.status for o in report.outcomes}[sick.name] == "caught up"
    assert Push.objects.filter(repository=sick).count() == FAILURES_BEFORE_BACKOFF
    assert (state(sick).failures, state(sick).last_error, state(sick).next_attempt) == (0, "", None)


def block_clones_of(repository_base, forest):
    """A file where the forest's clones must go: writing the clone fails as on a full disk."""
    repository_base.mkdir(parents=True, exist_ok=True)
    (repository_base / forest).write_text("not a directory")


@pytest.mark.django_db
def test_a_repository_failing_in_any_way_does_not_stop_the_run(hgmo, repository_base):
    broken, fine, also_fine = make_repositories(hgmo, "a-forest/de", "b-forest/de", "b-forest/fr")
    for repository in (broken, fine, also_fine):
        hgmo.commit_and_push(repository.name, {"a.ftl": b"1"})
    block_clones_of(repository_base, "a-forest")

    report = backfill()

    assert [(o.name, o.status) for o in report.outcomes] == [
        (broken.name, "failed"), (fine.name, "caught up"), (also_fine.name, "caught up")]
    assert "Error" in report.outcomes[0].detail
    assert sorted(Push.objects.values_list("repository__name", flat=True)) == [fine.name, also_fine.name]
    assert state(broken).failures == 1 and state(broken).last_error == report.outcomes[0].detail


@pytest.mark.django_db
def test_a_broken_repository_does_not_take_the_only_slot_every_run(hgmo, repository_base):
    broken, fine, also_fine = make_repositories(hgmo, "a-forest/de", "b-forest/de", "b-forest/fr")
    block_clones_of(repository_base, "a-forest")
    tried = []
    for _ in range(6):
        for repository in (broken, fine, also_fine):
            hgmo.commit_and_push(repository.name, {"a.ftl": str(len(tried)).encode()})
        tried += [(o.name, o.status) for o in backfill(limit=1).outcomes]

    assert tried == [(broken.name, "failed"), (fine.name, "caught up"), (also_fine.name, "caught up")] * 2


@pytest.mark.django_db
def test_longest_waiting_first_and_limit(hgmo):
    old, new, never = make_repositories(hgmo, "a/old", "a/new", "a/never")
    now = timezone.now()
    SyncState.objects.create(repository=old, last_synced=now - timedelta(days=2))
    SyncState.objects.create(repository=new, last_synced=now - timedelta(minutes=1))

    report = backfill(limit=2)

    assert [o.name for o in report.outcomes] == ["a/never", "a/old"]


@pytest.mark.django_db
def test_sync_state_metrics(hgmo):
    (de,) = make_repositories(hgmo, "l10n-central/de")
    backfill()
    SyncState.objects.filter(repository=de).update(last_synced=timezone.now() - timedelta(seconds=100), failures=2)

    metrics = {m.name: m for m in SyncStateCollector().collect()}

    (since,) = metrics["l10n_repository_seconds_since_sync"].samples
    assert since.labels == {"repository": "l10n-central/de"} and 100 <= since.value < 130
    assert metrics["l10n_repository_sync_failures"].samples[0].value == 2


@pytest.mark.django_db(transaction=True)
def test_the_worker_backfills_on_its_own(hgmo, worker_env, settings):
    settings.BACKFILL_INTERVAL = 0.5
    (de,) = make_repositories(hgmo, "l10n-central/de")
    hgmo.commit_and_push(de.name, {"a": b"1"})

    run_worker(idle_exit=4)  # no message at all

    assert Push.objects.filter(repository=de).count() == 1


@pytest.mark.django_db(transaction=True)
def test_backfill_beside_a_worker_stores_each_push_once(hgmo, broker_url, worker_env, tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("parallel ingestion needs PostgreSQL or MySQL (SQLite has no row locks)")
    repositories = make_repositories(hgmo, *(f"l10n-central/l{i}" for i in range(4)))
    declare_queues()
    with Connection(broker_url) as conn:
        for round_ in range(10):
            for repository in repositories:
                _, push_id = hgmo.commit_and_push(repository.name, {"a": f"{repository.name} {round_}".encode()})
                pulse.publish_hgpush(conn, repository.name,
                                     pulse.changegroup(repository.name, repository.url, [push_id]))
    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker.log")

    while worker.process.poll() is None:
        backfill()

    assert worker.wait() == 0
    assert Push.objects.count() == 40
    for repository in repositories:
        stored = sorted(Push.objects.filter(repository=repository).values_list("push_id", flat=True))
        assert stored == list(range(1, 11))
