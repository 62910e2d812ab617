"""compare-locales results from Taskcluster: real compare-locales output, simulated Queue, real RabbitMQ."""

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from kombu import Connection

from l10n.ingest import ingest_task
from l10n.models import SUMMARY_COUNTS, Active, Run
from l10n.store import activate_runs
from life.hg.ingest import ingest_pushes
from life.models import Changeset, Locale, Repository, Tree
from plumbing.errors import PermanentError, TransientError
from simulated import compare, pulse
from simulated.broker import scratch_vhost
from simulated.harness import declare_queues, run_worker
from simulated.taskcluster import SimulatedQueue
from tests.worker_support import configure
from worker.models import DeadLetter

KINDS = {"de": "complete", "fr": "partial", "it": "error", "es-ES": "obsolete"}


@pytest.fixture
def queue():
    with SimulatedQueue() as server:
        yield server


@pytest.fixture
def gecko_strings(hgmo):
    hgmo.create_repo("l10n/gecko-strings")
    return Repository.objects.create(name="l10n/gecko-strings", url=hgmo.repo_url("l10n/gecko-strings"))


def publish_task(queue, hgmo, kinds, **elmo_options):
    """A completed compare-locales task over ``kinds``; returns (task id, compare-locales results, revisions)."""
    revisions, results = compare.publish_world(hgmo, kinds)
    document = compare.elmo_document(
        results, revisions=revisions, repository=hgmo.repo_url("l10n/gecko-strings"), **elmo_options
    )
    task_id = queue.add_task(source=hgmo.repo_url("l10n/gecko-strings"))
    queue.add_artifact(task_id, 0, "public/elmo.json", document)
    for code, result in results.items():
        queue.add_artifact(task_id, 0, compare.artifact_name(code), result["details"])
    return task_id, results, revisions


def deliver(broker_url, queue, task_id, run_id=0):
    body, routing_key, routes = queue.task_completed_message(task_id, run_id)
    with Connection(broker_url) as conn:
        pulse.publish_task_completed(conn, body, routing_key, routes)


@pytest.fixture
def tasks_env(worker_env, queue, monkeypatch, settings):
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url)
    return worker_env


@pytest.mark.django_db
def test_compare_locales_results_arrive_through_pulse(hgmo, queue, gecko_strings, broker_url, tasks_env):
    task_id, results, revisions = publish_task(queue, hgmo, KINDS)
    declare_queues()
    deliver(broker_url, queue, task_id)

    run_worker(max_messages=1)

    runs = {run.locale.code: run for run in Run.objects.select_related("locale", "tree")}
    assert set(runs) == set(KINDS)
    for code, run in runs.items():
        summary = results[code]["summary"]
        assert {key: getattr(run, key) for key in SUMMARY_COUNTS} == {
            key: summary.get(key, 0) for key in SUMMARY_COUNTS
        }
        total = summary["changed"] + summary["unchanged"] + summary["missing"]
        assert run.total == total
        assert run.completion == int(summary["changed"] * 100 / total)
        assert (run.root_url, run.task_id, run.run_id) == (queue.root_url, task_id, 0)
        assert run.artifact == compare.artifact_name(code)
        assert set(run.revisions.values_list("revision", flat=True)) == set(revisions[code].values())
        assert Active.objects.get(tree=run.tree, locale=run.locale).run == run
    assert runs["de"].completion == 100 and runs["fr"].missing > 0
    assert runs["it"].errors > 0 and runs["es-ES"].obsolete > 0
    tree = runs["de"].tree
    assert (tree.config_repository, tree.config_path) == (gecko_strings, compare.CONFIG_PATH)


@pytest.mark.django_db
def test_same_task_twice_stores_once(hgmo, queue, gecko_strings, broker_url, tasks_env):
    task_id, _, _ = publish_task(queue, hgmo, {"de": "complete"})
    declare_queues()
    deliver(broker_url, queue, task_id)
    deliver(broker_url, queue, task_id)

    run_worker(max_messages=2)
    call_command("ingest-task", task_id, "--root-url", queue.root_url)

    assert Run.objects.count() == 1
    assert Active.objects.count() == 1


@pytest.mark.django_db
def test_ingest_task_records_the_deployment_as_the_worker_does(hgmo, queue, gecko_strings, broker_url, tasks_env):
    by_worker, _, _ = publish_task(queue, hgmo, {"de": "complete"})
    by_operator, _, _ = publish_task(queue, hgmo, {"fr": "complete"})
    declare_queues()
    deliver(broker_url, queue, by_worker)
    run_worker(max_messages=1)
    # The operator spells the deployment with a trailing slash.
    call_command("ingest-task", by_operator, "--root-url", queue.root_url + "/")

    assert dict(Run.objects.values_list("task_id", "root_url")) == {
        by_worker: queue.root_url, by_operator: queue.root_url}


@pytest.mark.django_db
def test_repository_from_task_metadata_source(hgmo, queue, gecko_strings):
    task_id, _, _ = publish_task(queue, hgmo, {"de": "complete"}, drop_repository=True)

    stored = ingest_task(queue.root_url, task_id, 0)

    assert stored.created == 1
    assert Run.objects.get().tree.config_repository == gecko_strings


@pytest.mark.django_db
def test_older_summary_with_missing_keys_and_missing_in_files(queue, gecko_strings):
    task_id = queue.add_task(source=gecko_strings.url)
    queue.add_artifact(task_id, 0, "public/elmo.json", {
        "version": "1.0",
        "comparisons": [{"locale": "pl", "config": "browser/locales/l10n.toml", "artifact": "public/pl.json",
                         "revisions": {}, "summary": {"changed": 50, "unchanged": 10, "missing": 15,
                                                       "missingInFiles": 25}}],
    })

    ingest_task(queue.root_url, task_id, 0)

    run = Run.objects.get()
    assert (run.errors, run.warnings, run.obsolete, run.missingInFiles) == (0, 0, 0, 25)
    assert run.total == 100 and run.completion == 50


@pytest.mark.django_db
@pytest.mark.parametrize(
    "state, reason",
    [("missing", "missing (HTTP 404)"), ("expired", "expired (HTTP 410)"), ("error", "error artifact (HTTP 424)")],
)
def test_unusable_artifact_is_dead_lettered(state, reason, queue, gecko_strings, broker_url, tasks_env):
    task_id = queue.add_task(source=gecko_strings.url)
    queue.set_artifact_state(task_id, 0, "public/elmo.json", state)
    declare_queues()
    deliver(broker_url, queue, task_id)

    run_worker(max_messages=1)

    letter = DeadLetter.objects.get()
    assert reason in letter.error
    assert letter.exchange == "exchange/taskcluster-queue/v1/task-completed"
    assert letter.routing_key.startswith(f"primary.{task_id}.0.")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_invalid_elmo_json_stores_nothing_at_all(hgmo, queue, gecko_strings, broker_url, tasks_env):
    task_id, results, revisions = publish_task(queue, hgmo, {"de": "complete", "fr": "partial"})
    document = compare.elmo_document(results, revisions=revisions, repository=gecko_strings.url)
    document["comparisons"][1]["revisions"]["/l10n-central/fr/"] = "not-a-revision"
    queue.add_artifact(task_id, 0, "public/elmo.json", document)
    placeholders_before = Changeset.objects.count()
    declare_queues()
    deliver(broker_url, queue, task_id)

    run_worker(max_messages=1)

    assert "40 lowercase hex" in DeadLetter.objects.get().error
    assert not Run.objects.exists() and not Active.objects.exists()
    assert Changeset.objects.count() == placeholders_before


@pytest.mark.django_db
def test_queue_unreachable_or_failing_is_transient(queue, gecko_strings):
    task_id = queue.add_task(source=gecko_strings.url)
    queue.set_fault("error")
    with pytest.raises(TransientError, match="HTTP 500"):
        ingest_task(queue.root_url, task_id, 0)
    queue.stop()
    with pytest.raises(TransientError, match="ConnectionError"):
        ingest_task(queue.root_url, task_id, 0)


@pytest.mark.django_db
def test_unknown_config_repository_is_permanent(hgmo, queue):
    task_id, _, _ = publish_task(queue, hgmo, {"de": "complete"})
    with pytest.raises(PermanentError, match="not a known repository"):
        ingest_task(queue.root_url, task_id, 0)


@pytest.mark.django_db
def test_comparison_before_push_creates_placeholders_the_push_fills(hgmo, queue, gecko_strings):
    locale = Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    task_id, _, revisions = publish_task(queue, hgmo, {"de": "complete"})

    ingest_task(queue.root_url, task_id, 0)  # the builds were faster than the pushes

    compared = Changeset.objects.get(revision=revisions["de"]["/l10n-central/de/"])
    assert compared.placeholder and compared.user == ""
    ingest_pushes(locale)
    ingest_pushes(gecko_strings)

    filled = Changeset.objects.get(revision=compared.revision)
    assert filled.pk == compared.pk and not filled.placeholder
    assert filled.user and filled.description and filled.files.exists() and filled.parents.exists()
    run = Run.objects.get()
    assert set(run.revisions.values_list("placeholder", flat=True)) == {False}
    assert run.revisions.count() == 2


@pytest.mark.django_db
def test_push_before_comparison_links_complete_changesets(hgmo, queue, gecko_strings):
    locale = Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    task_id, _, revisions = publish_task(queue, hgmo, {"de": "complete"})
    ingest_pushes(locale)
    ingest_pushes(gecko_strings)
    changesets = Changeset.objects.count()

    ingest_task(queue.root_url, task_id, 0)

    assert Changeset.objects.count() == changesets
    assert not Changeset.objects.placeholders().exists()
    assert set(Run.objects.get().revisions.values_list("revision", flat=True)) == set(revisions["de"].values())


@pytest.mark.django_db
def test_late_older_run_does_not_displace_the_active_one(hgmo, queue, gecko_strings):
    from datetime import datetime, timedelta, timezone

    revisions, results = compare.publish_world(hgmo, {"de": "partial"})
    document = compare.elmo_document(results, revisions=revisions, repository=gecko_strings.url)
    now = datetime.now(timezone.utc)
    older = queue.add_task(source=gecko_strings.url, created=now - timedelta(hours=2))
    newer = queue.add_task(source=gecko_strings.url, created=now)
    for task_id in (older, newer):
        queue.add_artifact(task_id, 0, "public/elmo.json", document)

    ingest_task(queue.root_url, newer, 0)
    ingest_task(queue.root_url, older, 0)  # arrives late

    assert Run.objects.count() == 2
    assert Active.objects.get().run.task_id == newer


@pytest.mark.django_db(transaction=True)
def test_two_taskcluster_deployments_on_their_own_brokers(hgmo, gecko_strings, broker_url, tasks_env, monkeypatch,
                                                          settings):
    with SimulatedQueue() as community, scratch_vhost() as community_broker:
        firefox_ci = SimulatedQueue()
        with firefox_ci:
            configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=firefox_ci.root_url, TASKCLUSTER_EXTRA_SOURCES=json.dumps(
                [{"pulse_url": community_broker, "root_url": community.root_url,
                  "routes": ["route.project.l10n.elmo.v1"]}]
            ))
            first, _, _ = publish_task(firefox_ci, hgmo, {"de": "complete"})
            second, _, _ = publish_task(community, hgmo, {"fr": "partial"})
            declare_queues()
            deliver(broker_url, firefox_ci, first)
            deliver(community_broker, community, second)

            call_command("consume-pulse", idle_exit=2)

    assert dict(Run.objects.values_list("task_id", "root_url")) == {
        first: firefox_ci.root_url,
        second: community.root_url,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("a_moves", ["before B", "after B's first statement"])
def test_newer_run_wins_while_another_worker_repoints_the_active_row(a_moves):
    """Workers A and B activate runs of one tree and locale at once, B's run the newer. A
    re-points the Active row and holds its lock either before B starts or right after B's first
    statement on the table. Neither may fail (PostgreSQL drops a re-pointed row from a locking
    read with a join; MySQL deadlocks on an insert's shared lock), and B's run must win."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no row locks")
    repository = Repository.objects.create(name="l10n/gecko-strings", url="https://hg.example/l10n/gecko-strings")
    tree = Tree.objects.create(code="gecko-browser", config_repository=repository, config_path="browser.toml")
    locale = Locale.objects.create(code="de")
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)

    def new_run(task_id, hours):
        return Run.objects.create(tree=tree, locale=locale, task_id=task_id, run_id=0,
                                  srctime=start + timedelta(hours=hours), root_url="https://tc.example")

    Active.objects.create(tree=tree, locale=locale, run=new_run("old", 0))
    b_touched_active, b_locks, a_holds_lock, errors = threading.Event(), threading.Event(), threading.Event(), {}

    def worker_a():
        try:
            if a_moves != "before B":
                b_touched_active.wait(10)
            with transaction.atomic():
                activate_runs([new_run("from-a", 1)])
                a_holds_lock.set()
                b_locks.wait(10)
                time.sleep(0.5)  # B's locking read, if it has not passed already, now waits for A
        except Exception as error:  # reported in the test's thread
            errors["A"] = error
        finally:
            connections.close_all()

    def interleave(execute, sql, params, many, context):
        on_active = "l10n_active" in sql
        if on_active and "FOR UPDATE" in sql.upper():
            b_locks.set()
        result = execute(sql, params, many, context)
        if on_active and not b_touched_active.is_set():
            b_touched_active.set()
            if a_moves != "before B":
                a_holds_lock.wait(2)  # A cannot get the lock if B already holds it
        return result

    def worker_b():
        try:
            if a_moves == "before B":
                a_holds_lock.wait(10)
            with transaction.atomic(), connection.execute_wrapper(interleave):
                activate_runs([new_run("from-b", 2)])
        except Exception as error:
            errors["B"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert a_holds_lock.is_set() and b_locks.is_set()
    assert Active.objects.get(tree=tree, locale=locale).run.task_id == "from-b"


# --- only tasks that carry a configured route count --------------------------------------------


def one_comparison(repository_url, config="browser/locales/l10n.toml", locale="de"):
    return {"locale": locale, "config": config, "artifact": "public/compare.json", "revisions": {},
            "summary": {"changed": 1}}


def add_simple_task(queue, repository_url, **task_options):
    task_id = queue.add_task(source=repository_url, **task_options)
    queue.add_artifact(task_id, 0, "public/elmo.json",
                       {"version": "1.0", "comparisons": [one_comparison(repository_url)]})
    return task_id


@pytest.mark.django_db
def test_task_without_a_configured_route_is_refused_before_its_artifact_is_read(queue, gecko_strings):
    task_id = add_simple_task(queue, gecko_strings.url, routes=["index.gecko.v2.l10n.compare.latest"])

    with pytest.raises(PermanentError, match=rf"task {task_id} carries none of the configured routes "
                                             r"\(route\.project\.l10n\.elmo\.v1\)"):
        ingest_task(queue.root_url, task_id, 0)

    assert queue.requests_seen == 1  # the definition only
    assert not Run.objects.exists() and not Tree.objects.exists()


@pytest.mark.django_db
def test_configured_routes_may_be_topic_patterns(queue, gecko_strings, monkeypatch, settings):
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url, TASKCLUSTER_ROUTES="route.project.l10n.#")
    matching = add_simple_task(queue, gecko_strings.url, routes=["project.l10n.elmo.v2"])
    other = add_simple_task(queue, gecko_strings.url, routes=["project.releng.elmo.v1"])

    assert ingest_task(queue.root_url, matching, 0).created == 1
    with pytest.raises(PermanentError, match=r"carries none of the configured routes \(route\.project\.l10n\.#\)"):
        ingest_task(queue.root_url, other, 0)


@pytest.mark.django_db
def test_ingest_task_checks_the_routes_of_the_deployment_it_targets(queue, gecko_strings, monkeypatch, settings):
    with SimulatedQueue() as community:
        configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url, TASKCLUSTER_EXTRA_SOURCES=json.dumps(
            [{"pulse_url": "amqp://community:secret@127.0.0.1:5672/", "root_url": community.root_url,
              "routes": ["route.community.l10n"]}]
        ))
        community_task = add_simple_task(community, gecko_strings.url, routes=["community.l10n"])
        firefox_ci_task = add_simple_task(community, gecko_strings.url)  # the main deployment's route

        call_command("ingest-task", community_task, "--root-url", community.root_url)
        with pytest.raises(CommandError, match=r"carries none of the configured routes \(route\.community\.l10n\)"):
            call_command("ingest-task", firefox_ci_task, "--root-url", community.root_url)

    assert list(Run.objects.values_list("task_id", "root_url")) == [(community_task, community.root_url)]


# --- tree codes -----------------------------------------------------------------------------------


def store_configurations(queue, repository, paths):
    task_id = queue.add_task(source=repository.url)
    queue.add_artifact(task_id, 0, "public/elmo.json",
                       {"version": "1.0", "comparisons": [one_comparison(repository.url, config=p) for p in paths]})
    ingest_task(queue.root_url, task_id, 0)
    return dict(Tree.objects.filter(config_repository=repository).values_list("config_path", "code"))


@pytest.mark.django_db
def test_a_thousand_configurations_with_one_stem_get_distinct_codes_in_any_order(queue, gecko_strings):
    paths = [f"app{n}/locales/l10n.toml" for n in range(1000)]

    codes = store_configurations(queue, gecko_strings, paths)

    assert len(codes) == len(set(codes.values())) == 1000
    assert max(map(len, codes.values())) <= Tree._meta.get_field("code").max_length
    assert codes[min(paths)] == "gecko-strings-l10n"
    assert all(code.startswith("gecko-strings-l10n-") for path, code in codes.items() if path != min(paths))
    assert set(Tree.repositories.through.objects.values_list("repository_id", flat=True)) == {gecko_strings.pk}
    # The same configurations in another order, from scratch: the same codes.
    Active.objects.all().delete()
    Run.objects.all().delete()
    Tree.objects.all().delete()
    assert store_configurations(queue, gecko_strings, paths[::-1]) == codes


@pytest.mark.django_db
def test_a_tree_whose_plain_code_is_taken_gets_a_code_of_its_own(queue, gecko_strings):
    elsewhere = Repository.objects.create(name="users/someone/gecko-strings", url="https://hg.example/users/gecko/")
    Tree.objects.create(code="gecko-strings-browser", config_repository=elsewhere, config_path="browser.toml")

    codes = store_configurations(queue, gecko_strings, ["_configs/browser.toml"])

    assert codes["_configs/browser.toml"].startswith("gecko-strings-browser-")
    assert store_configurations(queue, gecko_strings, ["_configs/browser.toml"]) == codes  # found, not re-made
    assert Tree.objects.count() == 2
