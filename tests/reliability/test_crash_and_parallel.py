"""Crash consistency and parallel workers over a mixed stream of 500+ messages (DESIGN §6).

The same stream is consumed three times against the same upstream world:
by one worker (the reference), by a worker killed with SIGKILL at 10 random
points and restarted, and by three workers at once. The contract tables
must end up identical, row for row, every time.
"""

import importlib
import random
import shutil
import time

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from kombu import Connection

from l10n.models import Active, Run
from life.models import Changeset, Forest, Locale, Push, Repository, Tree
from simulated import stream
from simulated.harness import WorkerProcess, declare_queues, queue_depth
from simulated.taskcluster import SimulatedQueue
from worker.models import DeadLetter

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def contract_snapshot():
    """Every row of the contract tables (DESIGN §5.4), by natural keys: ids differ between runs."""
    return {
        "locales": sorted(Locale.objects.values_list("code", "name", "native")),
        "forests": sorted(Forest.objects.values_list("name", "url", "archived")),
        "repositories": sorted(Repository.objects.values_list("name", "url", "forest__name", "locale__code", "archived")),
        "changesets": sorted(Changeset.objects.values_list("revision", "user", "description", "branch__name",
                                                           "placeholder")),
        "files": sorted(Changeset.files.through.objects.values_list("changeset__revision", "file__path")),
        "parents": sorted(Changeset.parents.through.objects.values_list("from_changeset__revision",
                                                                        "to_changeset__revision")),
        "repository_changesets": sorted(Repository.changesets.through.objects.values_list(
            "repository__name", "changeset__revision")),
        "pushes": sorted(Push.objects.values_list("repository__name", "push_id", "user", "push_date")),
        "push_changesets": sorted(Push.changesets.through.objects.values_list(
            "push__repository__name", "push__push_id", "changeset__revision")),
        "trees": sorted(Tree.objects.values_list("code", "config_repository__name", "config_path")),
        "runs": sorted(Run.objects.values_list("task_id", "run_id", "tree__code", "locale__code", "changed", "missing",
                                               "total", "completion", "srctime", "root_url", "artifact")),
        "run_revisions": sorted(Run.revisions.through.objects.values_list("run__task_id", "run__locale__code",
                                                                          "changeset__revision")),
        "active": sorted(Active.objects.values_list("tree__code", "locale__code", "run__task_id")),
    }


def reset(hgmo):
    """An empty database (as after migrate) and no clones, for the next consumption of the stream."""
    call_command("flush", interactive=False, verbosity=0)
    importlib.import_module("life.migrations.0002_null_changeset").create_null_changeset(apps, None)
    shutil.rmtree(settings.REPOSITORY_BASE, ignore_errors=True)
    stream.seed_database(hgmo)


def consume(broker_url, messages, tmp_path, run, workers=1, kills=0, seed=0):
    declare_queues()
    with Connection(broker_url) as conn:
        stream.publish(conn, messages)
    rng = random.Random(seed)
    for kill in range(kills):
        victim = WorkerProcess("--idle-exit", "30", log_path=tmp_path / f"{run}-killed-{kill}.log")
        time.sleep(rng.uniform(0.5, 4))
        victim.kill()
    finishers = [WorkerProcess("--idle-exit", "4", log_path=tmp_path / f"{run}-{n}.log") for n in range(workers)]
    assert [worker.wait(timeout=900) for worker in finishers] == [0] * workers
    for suffix in ("hgmo", "tasks", "hgmo/retry-1s", "tasks/retry-1s"):
        assert queue_depth(broker_url, suffix) == 0, suffix
    snapshot = contract_snapshot()
    dead = {(d.routing_key, bytes(d.body)): d.error for d in DeadLetter.objects.all()}
    return snapshot, dead


def assert_dead_letters(dead, expected):
    """Exactly the hostile messages were dead-lettered; an unexpected one is shown with its error."""
    unexpected = {key: error for key, error in dead.items() if key not in expected}
    assert not unexpected, unexpected
    assert dead.keys() == expected


def test_killed_and_parallel_workers_end_with_the_database_of_a_clean_run(hgmo, broker_url, worker_env, tmp_path,
                                                                         monkeypatch):
    if connection.vendor == "sqlite":
        pytest.skip("parallel workers need PostgreSQL or MySQL (SQLite has no row locks)")
    with SimulatedQueue() as queue:
        monkeypatch.setenv("TASKCLUSTER_ROOT_URL", queue.root_url)
        messages = stream.build(hgmo, queue)
        assert len(messages) >= 500
        expected_dead = {(m.routing_key, m.body) for m in messages if m.expect == "dead-lettered"}
        reset(hgmo)  # every run starts from the database migrate leaves, whatever ran before

        clean, dead = consume(broker_url, messages, tmp_path, "clean")
        assert_dead_letters(dead, expected_dead)
        assert clean["pushes"] and clean["runs"] and not any(row[-1] for row in clean["changesets"])  # no placeholder

        reset(hgmo)
        crashed, dead = consume(broker_url, messages, tmp_path, "crash", kills=10, seed=1)
        assert_dead_letters(dead, expected_dead)
        assert crashed == clean

        reset(hgmo)
        parallel, dead = consume(broker_url, messages, tmp_path, "parallel", workers=3)
        assert_dead_letters(dead, expected_dead)
        assert parallel == clean
        logs = "".join(path.read_text() for path in tmp_path.glob("parallel-*.log"))
        assert "IntegrityError" not in logs and "deadlock" not in logs.lower()
