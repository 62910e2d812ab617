"""Pure parsing and validation: no server, no database."""

import pytest

from life.pushlog import parse_pushlog
from life.records import PushRecord
from plumbing.errors import PermanentError
from plumbing.names import validate_locale_code, validate_repository_name, validate_revision

A, B = "a" * 40, "b" * 40


def test_parse_pushlog_orders_pushes_and_keeps_dag_order():
    data = {
        "lastpushid": 21,
        "pushes": {
            "17": {"changesets": [B], "date": 1227196397, "user": "b@example.com"},
            "16": {"changesets": [A, B], "date": 1227196396, "user": "a@example.com"},
        },
    }
    page = parse_pushlog(data, 15, 21)
    assert page.last_push_id == 21
    assert page.pushes == (
        PushRecord(16, "a@example.com", 1227196396, (A, B)),
        PushRecord(17, "b@example.com", 1227196397, (B,)),
    )


@pytest.mark.parametrize(
    "data, reason",
    [
        ([], "not a JSON object"),
        ({"pushes": {}}, "lastpushid"),
        ({"lastpushid": -1, "pushes": {}}, "lastpushid"),
        ({"lastpushid": True, "pushes": {}}, "lastpushid"),
        ({"lastpushid": 3, "pushes": []}, "'pushes' object"),
        ({"lastpushid": 3, "pushes": {"x": {}}}, "malformed"),
        ({"lastpushid": 3, "pushes": {"1": {"changesets": ["abc"], "date": 1, "user": "u"}}}, "changesets"),
        ({"lastpushid": 3, "pushes": {"1": {"changesets": [A.upper()], "date": 1, "user": "u"}}}, "changesets"),
        ({"lastpushid": 3, "pushes": {"1": {"changesets": [A], "date": "now", "user": "u"}}}, "user or date"),
        ({"lastpushid": 3, "pushes": {"1": {"changesets": [A], "date": 1, "user": None}}}, "user or date"),
        ({"lastpushid": 9, "pushes": {"9": {"changesets": [A], "date": 1, "user": "u"}}}, "outside"),
    ],
)
def test_parse_pushlog_rejects_malformed_answers(data, reason):
    with pytest.raises(PermanentError, match=reason):
        parse_pushlog(data, 0, 3)


@pytest.mark.parametrize("name", ["mozilla-central", "l10n-central/de", "releases/l10n/mozilla-beta/ja-JP-mac"])
def test_repository_names_accepted(name):
    assert validate_repository_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "..", "../x", "a/../b", "/etc/passwd", "a/", "a\\b", "a b", ".hg", "a/.hg", "x" * 201, "é"]
)
def test_repository_names_refused(name):
    with pytest.raises(PermanentError):
        validate_repository_name(name)


@pytest.mark.parametrize("code", ["de", "es-ES", "sr-Latn", "ja-JP-mac", "ca-valencia", "ast", "es-419", "zh-TW"])
def test_mozilla_locale_codes_accepted(code):
    assert validate_locale_code(code) == code


@pytest.mark.parametrize("code", ["", "DE", "de_DE", "d", "de-", "../de", "de\n", "german-language-x"])
def test_non_tag_locale_codes_refused(code):
    with pytest.raises(PermanentError):
        validate_locale_code(code)


@pytest.mark.parametrize("revision", ["0" * 39, "g" * 40, "A" * 40, "a" * 41, None, 12])
def test_revisions_must_be_40_lowercase_hex(revision):
    with pytest.raises(PermanentError):
        validate_revision(revision)
