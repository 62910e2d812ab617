"""Shared fixtures: a simulated hg.mozilla.org, clone storage, service checks.

Tests that need a service on this machine skip with the reason when it is
missing, unless REQUIRE_SERVICES is set (as .ci/run does): then a missing
service is a failure.
"""

import os
import socket

import pytest

from plumbing import memo
from simulated.broker import RABBITMQ_HOST, RABBITMQ_PORT, scratch_vhost

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")

# pytest-django refuses the database to a test without one of these (or the django_db mark).
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server"}


def pytest_collection_modifyitems(items):
    """Mark ``database`` every test that uses the database: .ci/run runs the others on one
    database only, since running them on each would change nothing."""
    for item in items:
        if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.database)


def require_service(name, host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        message = f"{name} is not reachable at {host}:{port} ({error})"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and REQUIRE_SERVICES is set")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def no_worker_left_behind():
    from simulated.harness import WorkerProcess

    yield
    while WorkerProcess.running:
        WorkerProcess.running.pop().kill()


@pytest.fixture
def hgmo(tmp_path):
    from simulated.hgmo import SimulatedHgmo

    with SimulatedHgmo(tmp_path / "upstream") as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_process_memos():
    """A worker remembers content-addressed facts (never wrong, but a test counting work or rows must
    start as a new process does)."""
    memo.forget_everything()


@pytest.fixture(autouse=True)
def repository_base(tmp_path, settings):
    settings.REPOSITORY_BASE = tmp_path / "clones"
    settings.HTTP_TIMEOUT = 5
    settings.VCS_TIMEOUT = 60
    return settings.REPOSITORY_BASE


# --- RabbitMQ ---------------------------------------------------------------


@pytest.fixture
def broker_url():
    """A fresh vhost on the real RabbitMQ, with the upstream exchanges declared as Pulse has them."""
    require_service("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    with scratch_vhost() as url:
        yield url


@pytest.fixture
def worker_env(broker_url, monkeypatch, settings):
    """A worker (in this process or as a subprocess) on the test broker, with quick retries."""
    from tests.worker_support import configure

    env = {"PULSE_URL": broker_url, "PULSE_RETRY_DELAYS": "1", "PULSE_PREFETCH": "4"}
    configure(monkeypatch, settings, **env)
    return env
