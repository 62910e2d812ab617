"""Pure parts of the worker: hg.mozilla.org message parsing, retry counting (no broker, no database)."""

import json
import subprocess
import sys

import pytest

from plumbing.errors import PermanentError
from simulated import pulse
from simulated.harness import PROJECT
from worker.config import Broker, mask_password
from worker.dispatch import Delivery
from worker.hgmo import KnownRepositories
from worker.hgmo import parse as parse_hgpush
from worker.sources import sources

A = "a" * 40


def delivery(body, routing_key="l10n-central/de", content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, "exchange/hgpushes/v2", routing_key, content_type)


def test_mask_password_leaves_urls_without_one_alone():
    assert mask_password("memory://") == "memory://"
    assert mask_password("amqp://u:p@h:1/v") == "amqp://u:***@h:1/v"


def test_changegroup_parses_push_ids_from_list_or_single_object():
    body = pulse.changegroup("l10n-central/de", "https://hg.mozilla.org/l10n-central/de/", [16, 17], heads=[A])
    push = parse_hgpush(delivery(body))
    assert (push.kind, push.repository, push.push_ids, push.heads) == ("changegroup.1", "l10n-central/de", (16, 17), (A,))
    body["payload"]["data"]["pushlog_pushes"] = body["payload"]["data"]["pushlog_pushes"][0]
    assert parse_hgpush(delivery(body)).push_ids == (16,)
    body["payload"]["data"]["pushlog_pushes"] = []
    assert parse_hgpush(delivery(body)).push_ids == ()


def test_meta_is_optional_and_routing_key_names_the_repository():
    body = pulse.newrepo("l10n-central/ja-JP-mac", "https://hg.mozilla.org/l10n-central/ja-JP-mac")
    del body["_meta"]
    push = parse_hgpush(delivery(body, routing_key="l10n-central/ja-JP-mac"))
    assert (push.kind, push.subject) == ("newrepo.1", "l10n-central/ja-JP-mac")


@pytest.mark.parametrize(
    "body, routing_key, content_type, reason",
    [
        (b"{nope", "a/b", "application/json", "not JSON"),
        (b"\xff\xfe", "a/b", "application/json", "not JSON"),
        (b"{}", "a/b", "text/plain", "content type"),
        (b"[]", "a/b", "application/json", "message body is not a JSON object"),
        (b"{}", "a/b", "application/json", "payload is not a JSON object"),
        (b'{"payload": {"type": 5}}', "a/b", "application/json", "payload.type"),
        (b'{"payload": {"type": "changegroup.1", "data": []}}', "a/b", "application/json", "payload.data"),
        (b'{"payload": {"type": "x"}}', "../etc", "application/json", "not a safe relative path"),
        (b'{"payload": {"type": "x"}}', "/abs", "application/json", "not a safe relative path"),
        (b"[" * 100 + b"]" * 100, "a/b", "application/json", "nests deeper"),
        (b" " * (1024 * 1024 + 1), "a/b", "application/json", "larger than"),
    ],
)
def test_malformed_hg_messages_are_permanent_errors(body, routing_key, content_type, reason):
    with pytest.raises(PermanentError, match=reason):
        parse_hgpush(delivery(body, routing_key, content_type))


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"pushlog_pushes": [{"pushid": "1"}]}, "pushid"),
        ({"pushlog_pushes": [{"pushid": 0}]}, "pushid"),
        ({"pushlog_pushes": [{"pushid": True}]}, "pushid"),
        ({"pushlog_pushes": "1"}, "neither a list"),
        ({"heads": ["abc"]}, "heads"),
        ({"repo_url": 5}, "repo_url"),
    ],
)
def test_malformed_changegroup_data(data, reason):
    body = {"payload": {"type": "changegroup.1", "data": data}}
    with pytest.raises(PermanentError, match=reason):
        parse_hgpush(delivery(body))


def test_consume_pulse_help_names_every_source():
    every = sources(Broker(url="memory://", user="u"), KnownRepositories(ttl=0))
    shown = subprocess.run([sys.executable, "manage.py", "consume-pulse", "--help"], cwd=PROJECT, capture_output=True,
                           text=True, timeout=60, check=True).stdout
    unwrapped = "".join(shown.split())  # argparse wraps lines, also after a hyphen
    assert every and all(source.exchange in unwrapped for source in every), shown
    assert "TASKCLUSTER_EXTRA_SOURCES" in unwrapped
