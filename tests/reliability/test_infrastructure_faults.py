"""Infrastructure faults under a running worker: the broker restarted, the database stopped for 20 s,
hg.mozilla.org and the Taskcluster Queue failing, hanging or refusing connections. Nothing lost,
nothing duplicated, the worker recovers on its own, and a healthy repository is not held up by a
failing one for longer than one retry interval."""

import signal
import subprocess
import time

import pytest
from django.db import connection
from kombu import Connection

from l10n.models import Run
from life.models import Push, Repository
from simulated import pulse
from simulated.harness import WorkerProcess, declare_queues, queue_depth, wait_until
from simulated.taskcluster import SimulatedQueue
from worker.models import DeadLetter

# They stop this machine's PostgreSQL and RabbitMQ, and bound how long a healthy repository waits:
# they run alone (.ci/run), after the rest.
pytestmark = [pytest.mark.slow, pytest.mark.exclusive, pytest.mark.django_db(transaction=True)]
RETRY_DELAY = 1


def repositories(hgmo, count):
    made = []
    for i in range(count):
        name = f"l10n-central/l{i}"
        hgmo.create_repo(name)
        made.append(Repository.objects.create(name=name, url=hgmo.repo_url(name)))
    return made


def push_and_announce(hgmo, broker_url, repository, content):
    _, push_id = hgmo.commit_and_push(repository.name, {"a.ftl": content.encode()})
    with Connection(broker_url) as conn:
        pulse.publish_hgpush(conn, repository.name, pulse.changegroup(repository.name, repository.url, [push_id]))
    return push_id


def stored_pushes():
    connection.close()  # the test's own connection may have died with the server
    return sorted(Push.objects.values_list("repository__name", "push_id"))


def expected_pushes(repos, rounds):
    return sorted((r.name, push_id) for r in repos for push_id in range(1, rounds + 1))


def finish(worker, broker_url):
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0, worker.output()[-3000:]
    assert queue_depth(broker_url, "hgmo") == 0


def test_broker_restart_mid_stream(hgmo, broker_url, worker_env, tmp_path):
    repos = repositories(hgmo, 3)
    declare_queues()
    worker = WorkerProcess("--idle-exit", "120", log_path=tmp_path / "worker.log")
    for repo in repos:
        push_and_announce(hgmo, broker_url, repo, "1")
    wait_until(lambda: len(stored_pushes()) == 3, timeout=60)

    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
    try:
        time.sleep(3)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
    for repo in repos:
        push_and_announce(hgmo, broker_url, repo, "2")

    wait_until(lambda: stored_pushes() == expected_pushes(repos, 2), timeout=120)
    assert worker.output().count("consuming queue/") >= 2  # it reconnected by itself
    finish(worker, broker_url)


def test_database_stopped_for_20_seconds(hgmo, broker_url, worker_env, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("stops the machine's PostgreSQL service; run on PostgreSQL")
    repos = repositories(hgmo, 3)
    declare_queues()
    worker = WorkerProcess("--idle-exit", "180", log_path=tmp_path / "worker.log")
    worker.wait_for_log("consuming")
    cluster = subprocess.run("ls /etc/postgresql | head -n1", shell=True, capture_output=True, text=True).stdout.strip()
    connection.close()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "stop", "-m", "fast"], check=True,
                   timeout=60)
    try:
        for repo in repos:
            push_and_announce(hgmo, broker_url, repo, "1")
        with Connection(broker_url) as conn:  # a dead letter to write while there is no database
            pulse.publish_hgpush(conn, repos[0].name, b"{not json")
        time.sleep(20)
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"], check=True,
                       timeout=60)
    wait_until(lambda: stored_pushes() == expected_pushes(repos, 1), timeout=120)
    output = worker.output()
    assert "outcome=retried" in output  # it failed while the database was away, then recovered
    assert DeadLetter.objects.filter(body=b"{not json").count() == 1  # written once the database was back
    waits = output.count("cannot record a dead letter, the database is unavailable")
    assert 1 <= waits <= 8, waits  # waited with back-off: no spinning, no requeue loop
    finish(worker, broker_url)


@pytest.mark.parametrize("fault", ["error", "hang", "refuse"])
def test_failing_hg_server_does_not_hold_up_healthy_repositories(fault, hgmo, broker_url, worker_env, tmp_path,
                                                                 monkeypatch, settings):
    monkeypatch.setenv("VCS_TIMEOUT", "5")
    settings.HTTP_TIMEOUT = 2  # handed to the worker process
    sick, healthy = repositories(hgmo, 2)
    declare_queues()
    hgmo.hang_seconds = 10
    if fault == "refuse":
        port = hgmo.port
        hgmo.stop()
    else:
        hgmo.set_fault(fault, sick.name)
    worker = WorkerProcess("--idle-exit", "120", log_path=tmp_path / "worker.log")
    worker.wait_for_log("consuming")
    if fault == "refuse":
        # The whole server is down; pushes were recorded upstream before it went away.
        hgmo.start(port)
        _, sick_push = hgmo.commit_and_push(sick.name, {"a": b"1"})
        hgmo.stop()
        with Connection(broker_url) as conn:
            pulse.publish_hgpush(conn, sick.name, pulse.changegroup(sick.name, sick.url, [sick_push]))
        time.sleep(4)
        hgmo.start(port)
        started = time.monotonic()
        push_and_announce(hgmo, broker_url, healthy, "1")
    else:
        push_and_announce(hgmo, broker_url, sick, "1")
        started = time.monotonic()
        push_and_announce(hgmo, broker_url, healthy, "1")

    wait_until(lambda: ("l10n-central/l1", 1) in stored_pushes(), timeout=60)
    waited = time.monotonic() - started
    # At most the sick message in hand (bounded by the timeouts) plus one retry interval.
    assert waited < 5 + RETRY_DELAY + 5, waited
    hgmo.set_fault(None)
    wait_until(lambda: stored_pushes() == expected_pushes([sick, healthy], 1), timeout=90)
    assert "outcome=retried" in worker.output() or fault == "refuse"
    finish(worker, broker_url)


def test_failing_taskcluster_queue_is_retried_until_it_answers(hgmo, broker_url, worker_env, tmp_path, settings,
                                                              monkeypatch):
    settings.HTTP_TIMEOUT = 1  # handed to the worker process
    with SimulatedQueue() as queue:
        monkeypatch.setenv("TASKCLUSTER_ROOT_URL", queue.root_url)
        hgmo.create_repo("l10n/gecko-strings")
        gecko = Repository.objects.create(name="l10n/gecko-strings", url=hgmo.repo_url("l10n/gecko-strings"))
        task_id = queue.add_task(source=gecko.url)
        queue.add_artifact(task_id, 0, "public/elmo.json", {"version": "1.0", "comparisons": [
            {"locale": "de", "config": "c.toml", "artifact": "public/de.json", "revisions": {},
             "summary": {"changed": 1}}]})
        declare_queues()
        queue.hang_seconds = 10
        queue.set_fault("hang")
        body, routing_key, routes = queue.task_completed_message(task_id)
        with Connection(broker_url) as conn:
            pulse.publish_task_completed(conn, body, routing_key, routes)
        worker = WorkerProcess("--idle-exit", "120", log_path=tmp_path / "worker.log")
        worker.wait_for_log("outcome=retried", timeout=60)
        queue.set_fault("error")
        time.sleep(3)
        queue.set_fault(None)
        wait_until(lambda: connection.close() or Run.objects.count() == 1, timeout=60)
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        assert queue_depth(broker_url, "tasks") == 0
