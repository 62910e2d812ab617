"""Running the real worker next to the simulated world: in-process, or as ``consume-pulse`` in a subprocess.

Shared by the tests and the benchmarks.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from kombu import Connection

from settings.pulse import user_of
from worker import topology
from worker.config import brokers
from worker.consumer import PulseWorker, connect
from worker.hgmo import KnownRepositories
from worker.sources import sources

PROJECT = Path(__file__).resolve().parent.parent


def run_worker(**options):
    """Run consume-pulse's worker in this process until it stops by itself.

    Inside a test's transaction the handlers run on the consumer's thread: a handler thread's own
    database connection could not see the test's uncommitted rows."""
    broker = brokers(settings)[0]
    if connection.in_atomic_block:
        options.setdefault("threads", 0)
    worker = PulseWorker(connect(broker), broker, **options)
    worker.run()
    return worker


def declare_queues():
    """What the worker declares at start, so messages published before it starts are kept."""
    for broker in brokers(settings):
        with connect(broker) as conn:
            channel = conn.default_channel
            consumed = topology.available(channel.connection, broker, sources(broker, KnownRepositories(ttl=0)))
            topology.declare(channel, broker, consumed)


def queue_depth(broker_url, suffix):
    """Messages ready in the worker's queue ``suffix`` (``hgmo``, ``tasks/retry-1s``, ``hgmo/parked``…)."""
    with Connection(broker_url) as conn:
        name = f"queue/{user_of(broker_url)}/worker/{suffix}"
        return conn.default_channel.queue_declare(name, passive=True).message_count


def database_url():
    """The URL of the database the tests use (the test database), for worker subprocesses."""
    db = connection.settings_dict
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"sqlite:///{db['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[engine]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"{scheme}://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or ''}/{db['NAME']}"


class WorkerProcess:
    """``./manage.py consume-pulse`` as a child process, the way it runs in production."""

    # Killed at the end of each test (conftest), so a failed test leaves no worker behind.
    running = []

    def __init__(self, *args, log_path, program=None):
        """``program`` (a script and its arguments) runs instead of ``manage.py``, which then comes
        first in ``args`` (tests that patch the worker before it starts)."""
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url(),
                "REPOSITORY_BASE": str(settings.REPOSITORY_BASE),
                "HTTP_TIMEOUT": str(settings.HTTP_TIMEOUT),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, *(program or [str(PROJECT / "manage.py")]), "consume-pulse", *args],
            env=env,
            cwd=PROJECT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        WorkerProcess.running.append(self)

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def wait_for_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker never logged {text!r}; log:\n{self.output()[-3000:]}")

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout=60):
        try:
            return self.process.wait(timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.wait()


def wait_until(predicate, timeout=30, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met in time")
