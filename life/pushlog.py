"""hg.mozilla.org's ``json-pushes?version=2`` (DESIGN §5.2): parsing, and the client.

``parse_pushlog`` is pure: a decoded JSON value in, a PushlogPage or a
PermanentError out. ``PushlogClient`` does the HTTP.
"""

import re

from plumbing.errors import PermanentError
from plumbing.http import get_json, http_session
from plumbing.names import is_revision
from plumbing.urls import SameOrigin

from .records import PushlogPage, PushRecord

# str.isdigit() would accept "²" and other digits int() refuses.
_PUSH_ID = re.compile(r"[0-9]{1,10}")


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
    records = []
    for key, push in pushes.items():
        if not _PUSH_ID.fullmatch(key) or not isinstance(push, dict):
            raise PermanentError(f"json-pushes push {key[:20]!r} is malformed")
        push_id = int(key)
        if push_id <= start_id or (end_id is not None and push_id > end_id):
            raise PermanentError(f"json-pushes returned push {push_id} outside ({start_id}, {end_id}]")
        changesets, user, date = push.get("changesets"), push.get("user"), push.get("date")
        if not isinstance(changesets, list) or not all(is_revision(c) for c in changesets):
            raise PermanentError(f"json-pushes push {push_id} has malformed changesets")
        if not isinstance(user, str) or not _is_count(date):
            raise PermanentError(f"json-pushes push {push_id} has a malformed user or date")
        records.append(PushRecord(push_id, user[:255], date, tuple(changesets)))
    records.sort(key=lambda record: record.push_id)
    return PushlogPage(last_push_id, tuple(records))


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
        for start in range(after, up_to, page_size):
            yield self.fetch(repository_url, start, min(start + page_size, up_to))
