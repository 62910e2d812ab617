"""A throwaway vhost on a real RabbitMQ, set up the way Pulse looks to the worker.

Tests and benchmarks get one each, so they never see each other's queues.
Vhosts are made through RabbitMQ's management HTTP API when it answers
(milliseconds), else with ``rabbitmqctl`` (a second of CPU each: an Erlang
node starts for every call). ``.ci/run`` enables the management plugin.
"""

import contextlib
import functools
import subprocess
import uuid

import requests
from kombu import Connection, Exchange

from worker import exchanges

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
MANAGEMENT_API = f"http://{RABBITMQ_HOST}:15672/api"


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60)


def declare_upstream_exchanges(url):
    """What hg.mozilla.org, Taskcluster and GitHub's republishers own on the real Pulse."""
    with Connection(url) as connection:
        for name in exchanges.ALL:
            Exchange(name, type="topic", durable=True)(connection.default_channel).declare()


class _ManagementApi:
    def __init__(self, session):
        self.session = session

    def add_vhost(self, vhost):
        self.session.put(f"{MANAGEMENT_API}/vhosts/{vhost}", timeout=30).raise_for_status()
        self.session.put(f"{MANAGEMENT_API}/permissions/{vhost}/guest",
                         json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=30).raise_for_status()

    def delete_vhost(self, vhost):
        self.session.delete(f"{MANAGEMENT_API}/vhosts/{vhost}", timeout=60).raise_for_status()


class _Rabbitmqctl:
    def add_vhost(self, vhost):
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost):
        rabbitmqctl("delete_vhost", vhost)


@functools.cache
def _administration():
    session = requests.Session()
    session.auth = ("guest", "guest")
    try:
        session.get(f"{MANAGEMENT_API}/overview", timeout=2).raise_for_status()
    except requests.RequestException:
        return _Rabbitmqctl()
    return _ManagementApi(session)


@contextlib.contextmanager
def scratch_vhost(prefix="test"):
    """Yields an amqp:// URL for a new vhost (guest has every right there); deletes it after."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    administration = _administration()
    administration.add_vhost(vhost)
    try:
        url = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
        declare_upstream_exchanges(url)
        yield url
    finally:
        administration.delete_vhost(vhost)
