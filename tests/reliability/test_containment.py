"""Containment (issue 12): no delivery, broker fault or slow pull stops the real worker, multiplies
a message or loses one. Each test runs ``consume-pulse`` as a process against RabbitMQ and the test
database, and ends by proving the next good message is still stored."""

import json
import re
import signal
import time
import zlib
from datetime import datetime
from decimal import Decimal

import amqp
import pytest
from django.db import connection

from life.models import Push, Repository
from simulated import pulse
from simulated.harness import WorkerProcess, declare_queues, queue_depth, wait_until
from tests.worker_support import configure
from worker.models import DeadLetter

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REPO = "l10n-central/de"
HGPUSH = "exchange/hgpushes/v2"


def raw_publish(broker_url, routing_key, body, **properties):
    """Publish with py-amqp itself: routing keys as raw bytes, any header table, any property."""
    vhost = broker_url.rsplit("/", 1)[1]
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", virtual_host=vhost) as conn:
        channel = conn.channel()
        channel.basic_publish(amqp.Message(body, **properties), exchange=HGPUSH, routing_key=routing_key)


def good_push(hgmo, broker_url, content):
    """A real push upstream and its announcement; returns the push id."""
    _, push_id = hgmo.commit_and_push(REPO, {"a.ftl": content.encode()})
    raw_publish(broker_url, REPO, json.dumps(pulse.changegroup(REPO, hgmo.repo_url(REPO), [push_id])).encode(),
                content_type="application/json", content_encoding="utf-8")
    return push_id


def stored_pushes():
    connection.close()
    return sorted(Push.objects.values_list("push_id", flat=True))


@pytest.fixture
def repository(hgmo):
    hgmo.create_repo(REPO)
    return Repository.objects.create(name=REPO, url=hgmo.repo_url(REPO))


BOMB = zlib.compress(json.dumps({"payload": {"type": "changegroup.1", "pad": "x" * 50_000_000}}).encode(), 9)
HOSTILE = [
    # (what, routing key, body, properties, expected dead letter reason)
    ("lone surrogate in routing key", b"l10n-central/\xed\xa0\x80", b"{}", {}, "not a safe relative path"),
    ("newline forging a log line", b"l10n-central/de\n2026-01-01 INFO worker forged", b"{}", {},
     "not a safe relative path"),
    ("invalid UTF-8 body", REPO.encode(), b'{"payload": "\xff\xfe"}', {}, "body is not JSON"),
    ("lone surrogate in JSON", REPO.encode(), b'{"payload": {"type": "changegroup.1", "data": {"repo_url": "\\ud800"}}}',
     {}, "is not valid Unicode"),  # the rule GitHub's clone_url follows too
    ("control characters everywhere", REPO.encode(), b'{"payload": {"type": "\\u0000\\u001b[31m"}}',
     {"content_type": "application/json"}, None),
    ("headers no database stores as JSON", REPO.encode(), b"{not json",
     {"application_headers": {"bytes": b"\xff\xfe\x00", "nul\x00key": "v\x00", "nested": {"a": [1, b"\xff", None]},
                              "huge": 2**62, "float": 1.5e300, "decimal": Decimal("1.23"),
                              "when": datetime(2026, 1, 1), "x-retries": 2**40}}, "body is not JSON"),
    ("unknown content encoding", REPO.encode(), b"{}", {"content_encoding": "x-rot13"}, "is not supported"),
    ("compression bomb", REPO.encode(), BOMB, {"application_headers": {"compression": "application/x-gzip"}},
     "compressed bodies are refused"),
    ("odd content type", REPO.encode(), b"{}", {"content_type": "application/json; charset=latin-1"},
     "is not application/json"),
    ("empty body", REPO.encode(), b"", {}, "body is not JSON"),
]


def test_no_delivery_stops_the_worker_and_the_next_good_push_is_stored(hgmo, repository, broker_url, worker_env,
                                                                       tmp_path):
    declare_queues()
    for _what, routing_key, body, properties, _reason in HOSTILE:
        raw_publish(broker_url, routing_key, body, **properties)
    good_push(hgmo, broker_url, "1")

    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=120) == 0, worker.output()[-3000:]

    output = worker.output()
    assert stored_pushes() == [1]
    letters = list(DeadLetter.objects.order_by("id"))
    expected = [case for case in HOSTILE if case[4] is not None]
    assert len(letters) == len(expected), [letter.error for letter in letters]
    # Work touching a repository runs in its lane (worker/lanes.py): letters are matched by what they
    # hold, not by the order they were written in.
    for what, _key, body, _properties, reason in expected:
        matching = [letter for letter in letters
                    if reason in letter.error and bytes(letter.body) == body[: len(bytes(letter.body))]]
        assert matching, (what, [letter.error for letter in letters])  # the raw bytes, never decompressed
    bomb = next(letter for letter in letters if "compressed bodies" in letter.error)
    assert bytes(bomb.body) == BOMB
    assert output.count("consuming queue/") == 1  # one connection: nothing made it reconnect, or restart
    assert "Traceback" not in output and "Logging error" not in output
    assert not re.search(r"^2026-01-01 INFO worker forged", output, re.MULTILINE)  # the newline was escaped
    assert "de\\n2026-01-01 INFO worker forged" in output
    assert queue_depth(broker_url, "hgmo") == 0 and queue_depth(broker_url, "hgmo/retry-1s") == 0


@pytest.mark.parametrize("poison", [
    {"routing_key": b"l10n-central/\xff\xfe"},  # py-amqp fails decoding the delivery itself
    {"message_id": b"id-\xff"},  # ... or its properties, which would put its framing out of step
])
def test_a_frame_the_client_cannot_decode_is_parked_by_the_broker(poison, hgmo, repository, broker_url, worker_env,
                                                                  monkeypatch, settings, tmp_path):
    configure(monkeypatch, settings, PULSE_DELIVERY_LIMIT="2")
    declare_queues()
    good_push(hgmo, broker_url, "1")
    raw_publish(broker_url, poison.get("routing_key", REPO.encode()), b"{}",
                **{key: value for key, value in poison.items() if key != "routing_key"})
    good_push(hgmo, broker_url, "2")

    worker = WorkerProcess("--idle-exit", "4", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=120) == 0, worker.output()[-3000:]

    output = worker.output()
    assert stored_pushes() == [1, 2]  # each exactly once: nothing was glued to another delivery
    assert not DeadLetter.objects.exists()
    assert queue_depth(broker_url, "hgmo/parked") == 1
    assert queue_depth(broker_url, "hgmo") == 0
    # It cost the connection at most limit + 1 times, then the broker parked the message.
    assert 1 <= output.count("cannot handle") <= 3
    assert "Traceback" not in output


def test_a_message_the_worker_keeps_dying_on_becomes_a_dead_letter(hgmo, repository, broker_url, worker_env,
                                                                   monkeypatch, settings, tmp_path):
    configure(monkeypatch, settings, PULSE_DELIVERY_LIMIT="2")
    declare_queues()
    hgmo.hang_seconds = 60
    hgmo.set_fault("hang", REPO)
    good_push(hgmo, broker_url, "1")
    for attempt in range(2):  # killed while handling it, twice
        requests_before = hgmo.requests_seen
        worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / f"killed-{attempt}.log")
        wait_until(lambda before=requests_before: hgmo.requests_seen > before)  # it is handling the push now
        worker.kill()
    hgmo.set_fault(None)

    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=60) == 0

    letter = DeadLetter.objects.get()
    assert "delivered 3 times without being settled" in letter.error
    assert stored_pushes() == []
    good_push(hgmo, broker_url, "2")  # the next push (it brings push 1 too) is stored
    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "after.log")
    assert worker.wait(timeout=60) == 0
    assert stored_pushes() == [1, 2]


def test_a_pull_longer_than_the_heartbeat_keeps_its_connection_and_is_acked_once(hgmo, repository, broker_url,
                                                                                worker_env, monkeypatch, settings,
                                                                                tmp_path):
    configure(monkeypatch, settings, PULSE_HEARTBEAT="2")
    declare_queues()
    hgmo.hang_seconds = 30
    hgmo.set_fault("slow-pull", REPO)
    good_push(hgmo, broker_url, "1")

    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=180) == 0, worker.output()[-3000:]

    output = worker.output()
    assert stored_pushes() == [1]
    assert output.count("outcome=") == 1 and "outcome=stored" in output
    assert output.count("consuming queue/") == 1 and "connection to" not in output
    for queue in ("hgmo", "hgmo/retry-1s", "hgmo/parked"):
        assert queue_depth(broker_url, queue) == 0, queue


@pytest.mark.exclusive  # counts tries in a time window
def test_a_wrong_broker_password_is_one_line_a_try_with_back_off(broker_url, monkeypatch, settings, tmp_path):
    wrong = broker_url.replace("guest:guest@", "guest:wrong@")
    configure(monkeypatch, settings, PULSE_URL=wrong)
    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    time.sleep(9)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0

    output = worker.output()
    tries = output.count("refused the credentials of guest")
    assert 2 <= tries <= 4, output  # at 0, 1, 3 and 8 seconds: backing off, not once a second
    assert "Traceback" not in output and "wrong" not in output  # nor the password
