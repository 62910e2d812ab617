"""hg.mozilla.org's ``json-pushes?version=2`` (DESIGN §5.2): parsing, and the client.

``parse_pushlog`` is pure: a decoded JSON value in, a PushlogPage or a
PermanentError out. ``PushlogClient`` does the HTTP.

Two kinds of bad answers are told apart. An answer that is garbage as a
whole (not an object, no ``lastpushid``, push ids that are not numbers or lie
outside the asked range) cannot be trusted at all: PermanentError. One push
that upstream could not legally have produced (a user with a NUL, a date
outside years 1-9999, malformed changesets, an id too large to store) is
rejected alone: the page carries it as a RejectedPush and the other pushes
are stored as usual.
"""

import re

from plumbing.errors import PermanentError
from plumbing.http import get_json, http_session
from plumbing.names import is_revision
from plumbing.text import text_problem
from plumbing.urls import SameOrigin

from ..records import PushlogPage, PushRecord, RejectedPush, date_problem

# str.isdigit() would accept "²" and other digits int() refuses.
_PUSH_ID = re.compile(r"[0-9]{1,10}")
# What Push.push_id holds on every supported database (a signed 32-bit column on PostgreSQL).
MAX_PUSH_ID = 2**31 - 1


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_text(value):
    """A string every database stores exactly: no NUL, no lone surrogate (JSON can carry both)."""
    return text_problem(value) is None


def push_problem(push_id, push):
    """Why the push ``push_id`` of a json-pushes answer cannot be stored, or None."""
    if push_id > MAX_PUSH_ID:
        return f"has an id beyond {MAX_PUSH_ID}, the largest one stored"
    if not isinstance(push, dict):
        return "is not a JSON object"
    changesets, user, date = push.get("changesets"), push.get("user"), push.get("date")
    if not isinstance(changesets, list) or not all(is_revision(c) for c in changesets):
        return "has malformed changesets"
    if not isinstance(user, str):
        return "has no user"
    if "\x00" in user:
        return "has a user with a NUL character"
    if not _is_text(user):
        return "has a user that is not valid Unicode"
    problem = date_problem(date)
    if problem is not None:
        return f"has a date that {problem}"
    return None


def parse_pushlog(data, start_id=0, end_id=None):
    """Validate a json-pushes answer and return its pushes ordered by id.

    Only pushes with ``start_id < id <= end_id`` are accepted: a server
    answering outside the asked range is not trusted.
    """
    if not isinstance(data, dict):
        raise PermanentError("json-pushes answer is not a JSON object")
    last_push_id = data.get("lastpushid")
    pushes = data.get("pushes")
    if not _is_count(last_push_id):
        raise PermanentError("json-pushes answer has no valid 'lastpushid'")
    if not isinstance(pushes, dict):
        raise PermanentError("json-pushes answer has no 'pushes' object")
    records, rejected = [], []
    for key, push in pushes.items():
        if not _PUSH_ID.fullmatch(key):
            raise PermanentError(f"json-pushes push id {key[:20]!r} is malformed")
        push_id = int(key)
        if push_id <= start_id or (end_id is not None and push_id > end_id):
            raise PermanentError(f"json-pushes returned push {push_id} outside ({start_id}, {end_id}]")
        problem = push_problem(push_id, push)
        if problem:
            rejected.append(RejectedPush(push_id, problem))
        else:
            records.append(PushRecord(push_id, push["user"], push["date"], tuple(push["changesets"])))
    records.sort(key=lambda record: record.push_id)
    rejected.sort(key=lambda rejection: rejection.push_id)
    return PushlogPage(last_push_id, tuple(records), tuple(rejected))


class PushlogClient:
    def __init__(self, session=None):
        self.session = session or http_session()

    def fetch(self, repository_url, start_id, end_id):
        """Pushes with ``start_id < id <= end_id``; both ends always bounded."""
        data = get_json(
            self.session,
            repository_url + "json-pushes",
            {"version": "2", "startID": str(start_id), "endID": str(end_id)},
            redirects=SameOrigin(repository_url),
        )
        return parse_pushlog(data, start_id, end_id)

    def last_push_id(self, repository_url):
        """The upstream's newest push id, with one cheap (empty-range) request."""
        return self.fetch(repository_url, 0, 0).last_push_id

    def pages(self, repository_url, after, up_to, page_size):
        """The pushes with ``after < id <= up_to``, ``page_size`` push ids per request."""
        for start in range(after, up_to, page_size):
            yield self.fetch(repository_url, start, min(start + page_size, up_to))
