"""Property tests: any input to a parser gives a parsed value or a PermanentError, never anything else."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l10n.elmo import parse_elmo, parse_task_definition
from life.hg.pushlog import parse_pushlog
from plumbing.errors import PermanentError
from worker.dispatch import Delivery
from worker.hgmo import parse as parse_hgpush
from worker.taskcluster import parse_task_completed

REVISION = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                         max_size=4), max_leaves=30)


def plausible_hg_body():
    push = st.fixed_dictionaries({"pushid": st.integers(-5, 2**33) | SCALARS})
    data = st.fixed_dictionaries({}, optional={
        "repo_url": st.text(max_size=40) | SCALARS,
        "heads": st.lists(REVISION | st.text(max_size=41), max_size=3) | SCALARS,
        "pushlog_pushes": st.lists(push | JSON, max_size=3) | push | SCALARS,
    })
    payload = st.fixed_dictionaries({"type": st.sampled_from(["changegroup.1", "newrepo.1", "obsolete.1"]) | SCALARS,
                                     "data": data | JSON})
    return st.fixed_dictionaries({"payload": payload | JSON}) | JSON


def plausible_elmo():
    summary = st.dictionaries(st.sampled_from(["changed", "missing", "errors", "missingInFiles", "keys", "x"]),
                              st.integers(-10, 10**10) | SCALARS, max_size=6)
    comparison = st.fixed_dictionaries({
        "locale": st.sampled_from(["de", "ja-JP-mac", "sr-Latn", "x"]) | st.text(max_size=12),
        "config": st.sampled_from(["_configs/browser.toml", "../x", "/abs"]) | st.text(max_size=20),
        "artifact": st.sampled_from(["public/a.json", "public/../x", "private/x"]) | st.text(max_size=20),
        "revisions": st.dictionaries(st.sampled_from(["/l10n-central/de/", "rel/", "/a/../b/"]) | st.text(max_size=10),
                                     REVISION | st.text(max_size=41), max_size=3) | JSON,
        "summary": summary | JSON,
    })
    return st.fixed_dictionaries({
        "version": st.sampled_from(["1.0", "2.0"]) | SCALARS,
        "repository": st.sampled_from(["https://hg.mozilla.org/l10n/gecko-strings/", "file:///x"]) | SCALARS,
        "comparisons": st.lists(comparison | JSON, max_size=3) | JSON,
    }) | JSON


def parses_or_refuses(parse, *args):
    try:
        parse(*args)
    except PermanentError as error:
        assert str(error)  # a readable reason, never empty


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=plausible_hg_body(), routing_key=st.sampled_from(["l10n-central/de", "../x", "a b"]) | st.text(max_size=20))
def test_hg_message_parser_never_raises_anything_else(body, routing_key):
    parses_or_refuses(parse_hgpush, Delivery(json.dumps(body).encode(), "exchange/hgpushes/v2", routing_key))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", None, ""]))
def test_hg_message_parser_takes_any_bytes(raw, content_type):
    parses_or_refuses(parse_hgpush, Delivery(raw, "exchange/hgpushes/v2", "l10n-central/de", content_type))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=plausible_elmo(), fallback=st.none() | st.text(max_size=30))
def test_elmo_parser_never_raises_anything_else(document, fallback):
    parses_or_refuses(parse_elmo, document, fallback)


@settings(max_examples=200, deadline=None)
@given(message=JSON | st.fixed_dictionaries({"status": st.fixed_dictionaries({"taskId": st.text(max_size=30)}) | JSON,
                                             "runId": st.integers(-3, 2000) | SCALARS}))
def test_task_message_parser_never_raises_anything_else(message):
    parses_or_refuses(parse_task_completed, message, "https://tc.example")


@settings(max_examples=200, deadline=None)
@given(task=JSON | st.fixed_dictionaries({"created": st.text(max_size=30) | SCALARS,
                                          "metadata": st.fixed_dictionaries({"source": SCALARS}) | JSON}))
def test_task_definition_parser_never_raises_anything_else(task):
    parses_or_refuses(parse_task_definition, task)


@settings(max_examples=200, deadline=None)
@given(answer=JSON | st.fixed_dictionaries({
    "lastpushid": st.integers(-2, 50) | SCALARS,
    "pushes": st.dictionaries(st.text(max_size=4), st.fixed_dictionaries({
        "changesets": st.lists(REVISION | SCALARS, max_size=3) | SCALARS,
        "date": st.integers(-5, 2**40) | SCALARS, "user": SCALARS}) | JSON, max_size=3) | JSON}))
def test_pushlog_parser_never_raises_anything_else(answer):
    parses_or_refuses(parse_pushlog, answer, 0, 50)
