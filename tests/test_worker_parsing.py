"""Pure parts of the worker: configuration and message parsing (no broker, no database)."""

import json

import pytest

from life.errors import PermanentError
from simulated import pulse
from worker.config import EMBEDDED_BROKER, ConfigError, load_config, mask_password
from worker.messages import Delivery, parse_hgpush

A = "a" * 40


def delivery(body, routing_key="l10n-central/de", content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, "exchange/hgpushes/v2", routing_key, content_type)


def test_no_broker_configured_means_the_embedded_one():
    config = load_config({})
    assert config.broker_url == EMBEDDED_BROKER and config.embedded
    assert config.queue_name("hgmo") == "queue/local/hgmo"


def test_pulse_settings_build_an_amqps_url_with_masked_password():
    config = load_config({"PULSE_USER": "elmo", "PULSE_PASSWORD": "s3cr:t@"})
    assert config.broker_url == "amqps://elmo:s3cr%3At%40@pulse.mozilla.org:5671/%2F"
    assert "s3cr" not in config.safe_url and config.safe_url.startswith("amqps://elmo:***@pulse.mozilla.org")
    assert config.queue_name("tasks") == "queue/elmo/tasks"
    assert config.task_routes == ("route.project.l10n.elmo.v1",)


@pytest.mark.parametrize(
    "environ, setting",
    [
        ({"PULSE_URL": ""}, "PULSE_URL is set but empty"),
        ({"PULSE_URL": "http://x"}, "PULSE_URL must start with"),
        ({"PULSE_URL": "amqp://host/"}, "PULSE_URL names no user"),
        ({"PULSE_USER": "elmo"}, "PULSE_PASSWORD is required"),
        ({"PULSE_HOST": "localhost"}, "PULSE_USER is required"),
        ({"PULSE_USER": "u", "PULSE_PASSWORD": "p", "PULSE_SSL": "maybe"}, "PULSE_SSL must be true or false"),
        ({"PULSE_USER": "u", "PULSE_PASSWORD": "p", "PULSE_PORT": "x"}, "PULSE_PORT must be a whole number"),
        ({"TASKCLUSTER_ROUTES": " , "}, "TASKCLUSTER_ROUTES is set but names nothing"),
        ({"PULSE_RETRY_DELAYS": "10,-1"}, "PULSE_RETRY_DELAYS must be positive"),
    ],
)
def test_bad_configuration_names_the_setting(environ, setting):
    with pytest.raises(ConfigError, match=setting):
        load_config(environ)


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


@pytest.mark.parametrize("headers, retries", [({}, 0), ({"x-retries": 3}, 3), ({"x-retries": "abc"}, 0),
                                              ({"x-retries": -5}, 0), ({"x-retries": [1]}, 0)])
def test_retry_count_header_cannot_crash_the_worker(headers, retries):
    from worker.consumer import _retries

    assert _retries(headers) == retries
