"""Pure parsing and validation: no server, no database."""

import pytest

from life.hg.pushlog import parse_pushlog
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
        ({"lastpushid": 3, "pushes": {"x": {}}}, "push id 'x' is malformed"),
        ({"lastpushid": 3, "pushes": {"-1": {}}}, "push id '-1' is malformed"),
        ({"lastpushid": 9, "pushes": {"9": {"changesets": [A], "date": 1, "user": "u"}}}, "outside"),
        ({"lastpushid": 9, "pushes": {"0": {"changesets": [A], "date": 1, "user": "u"}}}, "outside"),
    ],
)
def test_a_page_that_is_garbage_as_a_whole_is_refused(data, reason):
    with pytest.raises(PermanentError, match=reason):
        parse_pushlog(data, 0, 3)


GOOD = {"changesets": [A], "date": 1227196396, "user": "u@example.com"}
YEAR_1, YEAR_9999 = -62135596800, 253402300799  # first and last second


@pytest.mark.parametrize(
    "push, reason",
    [
        (7, "is not a JSON object"),
        ({**GOOD, "changesets": ["abc"]}, "malformed changesets"),
        ({**GOOD, "changesets": [A.upper()]}, "malformed changesets"),
        ({**GOOD, "changesets": A}, "malformed changesets"),
        ({**GOOD, "user": None}, "has no user"),
        ({**GOOD, "user": "a\x00b"}, "a user with a NUL character"),
        ({**GOOD, "user": "lone \udc80 surrogate"}, "not valid Unicode"),
        ({**GOOD, "date": "now"}, "date that is malformed"),
        ({**GOOD, "date": 1.5}, "date that is malformed"),
        ({**GOOD, "date": True}, "date that is malformed"),
        ({**GOOD, "date": YEAR_1 - 1}, "outside years 1 to 9999"),
        ({**GOOD, "date": YEAR_9999 + 1}, "outside years 1 to 9999"),
        ({**GOOD, "date": 2**70}, "outside years 1 to 9999"),
    ],
)
def test_a_push_upstream_cannot_produce_is_rejected_alone(push, reason):
    data = {"lastpushid": 3, "pushes": {"1": GOOD, "2": push, "3": {**GOOD, "changesets": [B]}}}

    page = parse_pushlog(data, 0, 3)

    assert [p.push_id for p in page.pushes] == [1, 3]
    assert [(r.push_id, r.reason) for r in page.rejected] == [(2, page.rejected[0].reason)]
    assert reason in page.rejected[0].reason
    assert str(page.rejected[0]).startswith("upstream push 2 ")


def test_a_push_id_too_large_to_store_is_rejected_alone():
    data = {"lastpushid": 2**31, "pushes": {"5": GOOD, str(2**31): GOOD}}

    page = parse_pushlog(data, 0, None)

    assert [p.push_id for p in page.pushes] == [5]
    assert [r.push_id for r in page.rejected] == [2**31] and "beyond 2147483647" in page.rejected[0].reason


def test_whatever_upstream_can_legally_produce_is_kept_whole():
    user = "Zoë 🦊 " * 10_000 + "\n\t<control> \x7f"
    data = {"lastpushid": 3, "pushes": {"1": {**GOOD, "user": user, "date": YEAR_1},
                                        "2": {**GOOD, "user": "", "date": YEAR_9999},
                                        "3": {**GOOD, "changesets": []}}}

    page = parse_pushlog(data, 0, 3)

    assert page.rejected == ()
    assert [(p.user, p.date) for p in page.pushes[:2]] == [(user, YEAR_1), ("", YEAR_9999)]
    assert page.pushes[2].changesets == ()


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
