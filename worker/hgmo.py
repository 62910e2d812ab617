"""hg.mozilla.org push notifications (``exchange/hgpushes/v2``, DESIGN §1.1 and §5.1).

``parse`` is pure: a delivery in, an HgPush or a PermanentError with a
readable reason out. ``handle`` does the work through ``life``: pull and
store pushes for a known repository, create one under a known forest.
"""

from dataclasses import dataclass

from life.hg.ingest import find_forest, ingest_new_repository, ingest_pushes
from life.models import Forest, Repository
from life.sync import refuse_while_backing_off
from plumbing.errors import PermanentError
from plumbing.jsondoc import decode_json
from plumbing.names import is_revision, validate_repository_name
from plumbing.text import printable, text_problem

from . import exchanges, metrics
from .dispatch import skipped, stored
from .known import Refreshed

EXCHANGE = exchanges.HGPUSHES


@dataclass(frozen=True)
class HgPush:
    """One hg.mozilla.org notification (a dispatch.Message): ``kind`` is the payload type."""

    kind: str
    repository: str
    repo_url: str | None = None
    push_ids: tuple[int, ...] = ()
    heads: tuple[str, ...] = ()

    @property
    def subject(self):
        return self.repository


# --- parsing ------------------------------------------------------------------


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
    if url is not None and (problem := text_problem(url)) is not None:
        raise PermanentError(f"repo_url {printable(url, 100)!r} {problem}")
    return url


def parse(delivery):
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


# --- handling -------------------------------------------------------------------


class KnownRepositories(Refreshed):
    """The names of active repositories (``worker.known``)."""

    def read(self):
        return frozenset(Repository.objects.active().values_list("name", flat=True))

    def __contains__(self, name):
        return name in self.current()


class KnownForests(Refreshed):
    """The names of the forests a ``newrepo.1`` message may add a repository to."""

    def read(self):
        return frozenset(Forest.objects.active().values_list("name", flat=True))


class HgPushHandler:
    """Handles HgPush messages; holds the worker's caches of known repositories and forests."""

    def __init__(self, known_repositories):
        self.known = known_repositories
        self.forests = KnownForests(known_repositories.ttl, known_repositories.clock)

    def skips_unread(self, routing_key):
        """Whether a delivery routed by ``routing_key`` can only be skipped, whatever its body: the
        repository (the routing key, as ``parse`` takes it) is neither tracked nor under a known
        forest. Most of what hg.mozilla.org announces; settled without reading the body."""
        try:
            validate_repository_name(routing_key)
        except PermanentError:
            return False  # read, and refused with its reason
        return routing_key not in self.known and Forest.name_over(routing_key) not in self.forests.current()

    def lane(self, push):
        """Where ``push``'s work runs (``worker.lanes``): its repository's lane, or None when it is settled
        on the consumer's thread without touching upstream or the database (most of what arrives)."""
        if push.kind == "changegroup.1" and push.repository in self.known:
            return f"hg:{push.repository}"
        if push.kind == "newrepo.1":
            return f"hg:{push.repository}"
        return None

    def __call__(self, push):
        if push.kind == "changegroup.1":
            return self.changegroup(push)
        if push.kind == "newrepo.1":
            return self.newrepo(push)
        if push.kind == "obsolete.1":
            return skipped("obsolescence markers are not stored")
        return skipped(f"unknown message type {push.kind[:40]!r}")

    def changegroup(self, push):
        if push.repository not in self.known:
            return skipped("unknown repository")
        repository = Repository.objects.active().filter(name=push.repository).first()
        if repository is None:
            return skipped("unknown repository")
        _check_announced_url(push.repo_url, repository.url, f"the known URL of {repository.name}")
        refuse_while_backing_off(repository)
        result = ingest_pushes(repository, max(push.push_ids, default=None), announced=push.push_ids)
        metrics.VCS_SECONDS.labels("hg").observe(result.vcs_seconds)
        if not result.pushes:
            return skipped("pushes already stored")
        return stored(
            f"{result.pushes} pushes, {result.changesets} changesets, "
            f"{result.placeholders_filled} placeholders filled, hg {result.vcs_seconds:.2f}s"
        )

    def newrepo(self, push):
        found = find_forest(push.repository)
        if found is None:
            return skipped("not under a known forest")
        forest, code = found
        url = forest.repository_url(code)
        _check_announced_url(push.repo_url, url, f"{url}, the forest's URL for it")
        repository, result = ingest_new_repository(forest, code)
        metrics.VCS_SECONDS.labels("hg").observe(result.vcs_seconds)
        self.known.forget()
        return stored(f"repository {repository.name}, {result.changesets} changesets")


def _check_announced_url(announced, trusted, what):
    """The message's repo_url is never used, but one that disagrees with ours is a wrong message."""
    if announced is not None and announced.rstrip("/") != trusted.rstrip("/"):
        raise PermanentError(f"repo_url {announced[:200]!r} is not {what}")
