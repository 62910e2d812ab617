"""A throwaway vhost on a real RabbitMQ, set up the way Pulse looks to the worker.

Tests and benchmarks get one each, so they never see each other's queues.
"""

import contextlib
import subprocess
import uuid

from kombu import Connection, Exchange

from worker.github import TASKCLUSTER_GITHUB_EXCHANGE
from worker.github import WEBHOOKS_EXCHANGE as GITHUB_WEBHOOKS_EXCHANGE
from worker.hgmo import EXCHANGE as HGPUSH_EXCHANGE
from worker.taskcluster import EXCHANGE as TASK_COMPLETED_EXCHANGE

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60)


def declare_upstream_exchanges(url):
    """What hg.mozilla.org, Taskcluster and GitHub's republishers own on the real Pulse."""
    with Connection(url) as connection:
        for name in (HGPUSH_EXCHANGE, TASK_COMPLETED_EXCHANGE, GITHUB_WEBHOOKS_EXCHANGE, TASKCLUSTER_GITHUB_EXCHANGE):
            Exchange(name, type="topic", durable=True)(connection.default_channel).declare()


@contextlib.contextmanager
def scratch_vhost(prefix="test"):
    """Yields an amqp:// URL for a new vhost (guest has every right there); deletes it after."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
        declare_upstream_exchanges(url)
        yield url
    finally:
        rabbitmqctl("delete_vhost", vhost)
