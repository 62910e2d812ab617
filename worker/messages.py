"""Parsing Pulse deliveries into typed values (DESIGN §5.1).

Pure code: bytes and delivery metadata in, a dataclass or a PermanentError
with a readable reason out. Nothing here talks to a broker or a database.
"""

from dataclasses import dataclass, field

from life.errors import PermanentError
from life.jsondoc import decode_json
from life.names import is_revision, validate_repository_name


# Set by the consumer on task-completed deliveries: the deployment they came from.
TASKCLUSTER_ROOT_URL_HEADER = "x-taskcluster-root-url"


@dataclass(frozen=True)
class Delivery:
    """What the broker handed us, in plain data."""

    body: bytes
    exchange: str
    routing_key: str
    content_type: str | None = "application/json"
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HgPush:
    """One hg.mozilla.org notification: ``kind`` is the payload type."""

    kind: str
    repository: str
    repo_url: str | None = None
    push_ids: tuple[int, ...] = ()
    heads: tuple[str, ...] = ()

    @property
    def subject(self):
        return self.repository


def _object(value, what):
    if not isinstance(value, dict):
        raise PermanentError(f"{what} is not a JSON object")
    return value


def _push_ids(pushes):
    # Should be a list of one; can be empty; one published example is a bare object.
    if pushes is None:
        return ()
    if isinstance(pushes, dict):
        pushes = [pushes]
    if not isinstance(pushes, list):
        raise PermanentError("pushlog_pushes is neither a list nor an object")
    ids = []
    for push in pushes:
        push_id = _object(push, "a pushlog_pushes entry").get("pushid")
        if not isinstance(push_id, int) or isinstance(push_id, bool) or not 0 < push_id < 2**31:
            raise PermanentError(f"pushid {str(push_id)[:40]!r} is not a positive integer")
        ids.append(push_id)
    return tuple(ids)


def _heads(heads):
    if heads is None:
        return ()
    if not isinstance(heads, list) or not all(is_revision(head) for head in heads):
        raise PermanentError("heads is not a list of 40-hex revisions")
    return tuple(heads)


def _repo_url(data):
    url = data.get("repo_url")
    if url is not None and (not isinstance(url, str) or len(url) > 500):
        raise PermanentError("repo_url is not a string of sensible length")
    return url


def parse_hgpush(delivery):
    """An HgPush from a delivery on exchange/hgpushes/v2.

    The repository comes from the routing key, as hg.mozilla.org sets it;
    ``_meta`` is optional and ignored.
    """
    repository = validate_repository_name(delivery.routing_key)
    envelope = _object(decode_json(delivery.body, delivery.content_type), "message body")
    payload = _object(envelope.get("payload"), "payload")
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        raise PermanentError("payload.type is missing or not a string")
    data = _object(payload.get("data", {}), "payload.data")
    if kind == "changegroup.1":
        return HgPush(
            kind,
            repository,
            repo_url=_repo_url(data),
            push_ids=_push_ids(data.get("pushlog_pushes")),
            heads=_heads(data.get("heads")),
        )
    return HgPush(kind, repository, repo_url=_repo_url(data))
