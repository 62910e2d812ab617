"""GitHub push notifications, in the two formats Pulse carries them (DESIGN §5.3b).

- ``exchange/github-webhooks/v1``: GitHub's webhooks republished by Mozilla's
  version-control tooling; routing key ``<owner>/<repo>/<event>``, body
  ``{"event", "request_id", "payload": <webhook payload>, "_meta"}``.
- ``exchange/taskcluster-github/v1/push``: Taskcluster's GitHub integration;
  routing key ``primary.<organization>.<repository>``, body ``{"version": 1,
  "organization", "repository", …, "body": <webhook payload>}``.

``parse_webhook`` and ``parse_taskcluster_github`` are pure: a delivery in, a
GitHubPush (or a GitHubEvent to skip) or a PermanentError out. Only what the
worker uses is read from the payload: which ref moved, from where to where,
who pushed and when. ``commits[]`` is never used (GitHub caps it, and some
events have none): the push's commits come from the local clone, fetched
from the repository's configured URL. A ``clone_url`` that is not that URL
makes the message a dead letter; nothing a message names is ever contacted.

The handler serves both sources: a push to the tracked branch of a known
git repository goes to ``life.git.ingest``; other branches, tags, deletions
and other events are skipped with the reason.
"""

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from life.git.ingest import ingest_push
from life.models import Repository
from life.records import date_problem
from life.sync import refuse_while_backing_off
from plumbing.errors import PermanentError
from plumbing.jsondoc import decode_json, validate_schema
from plumbing.text import printable, text_problem

from . import exchanges, metrics
from .dispatch import skipped, stored
from .known import Refreshed

WEBHOOKS_EXCHANGE = exchanges.GITHUB_WEBHOOKS
TASKCLUSTER_GITHUB_EXCHANGE = exchanges.TASKCLUSTER_GITHUB
# GitHub caps webhook payloads at 25 MB; the envelope adds little.
MAX_BODY_BYTES = 26 * 1024 * 1024
NULL_SHA = "0" * 40

_SHA = {"type": "string", "pattern": "^[0-9a-f]{40}$"}
_OWNER = r"[A-Za-z0-9][A-Za-z0-9-]{0,38}"
_NAME = r"[A-Za-z0-9._-]{1,100}"
_FULL_NAME = re.compile(rf"({_OWNER})/({_NAME})\Z")

PUSH_PAYLOAD_SCHEMA = {
    "type": "object",
    "required": ["ref", "before", "after", "repository", "pusher"],
    "properties": {
        "ref": {"type": "string", "minLength": 1, "maxLength": 255},
        "before": _SHA,
        "after": _SHA,
        "created": {"type": "boolean"},
        "deleted": {"type": "boolean"},
        "forced": {"type": "boolean"},
        "pusher": {
            "type": "object",
            "required": ["name"],
            # No bound on the name: hg's pushlog users have none either (the same text rules for every source).
            "properties": {"name": {"type": "string"}, "email": {"type": ["string", "null"]}},
        },
        "repository": {
            "type": "object",
            "required": ["full_name"],
            "properties": {
                "full_name": {"type": "string", "maxLength": 140},
                "clone_url": {"type": "string", "maxLength": 500},
                # In push payloads (unlike other events) a Unix time; its range is hg's (life.records.date_problem).
                "pushed_at": {"type": "integer"},
            },
        },
        "commits": {"type": "array"},
        "head_commit": {"type": ["object", "null"]},
    },
}

WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["event", "payload"],
    "properties": {"event": {"type": "string", "maxLength": 50}, "payload": {"type": "object"}},
}

TASKCLUSTER_GITHUB_SCHEMA = {
    "type": "object",
    "required": ["version", "organization", "repository", "body"],
    "properties": {
        "version": {"const": 1},
        "organization": {"type": "string", "maxLength": 100},
        "repository": {"type": "string", "maxLength": 200},
        "branch": {"type": "string", "maxLength": 255},
        "body": {"type": "object"},
    },
}


@dataclass(frozen=True)
class GitHubPush:
    """A push to ``ref`` of the GitHub repository ``full_name``, from ``before`` to ``after``."""

    full_name: str
    ref: str
    before: str
    after: str
    deleted: bool
    forced: bool
    pusher: str
    pushed_at: int | None = None
    clone_url: str | None = None
    kind: ClassVar[str] = "push"  # a dispatch.Message: kind and subject

    @property
    def subject(self):
        return self.full_name


@dataclass(frozen=True)
class GitHubEvent:
    """Any other webhook event (a dispatch.Message): skipped without reading its body."""

    kind: str
    full_name: str

    @property
    def subject(self):
        return self.full_name


# --- parsing ------------------------------------------------------------------


def _full_name(value, where):
    if not isinstance(value, str) or not _FULL_NAME.match(value):
        raise PermanentError(f"{where} {str(value)[:150]!r} is not a GitHub repository name (owner/name)")
    return value


def parse_push_payload(payload, full_name=None):
    """A GitHubPush from GitHub's push webhook payload; ``full_name``, if given, is the repository the
    message was routed for, which the payload must agree with."""
    validate_schema(payload, PUSH_PAYLOAD_SCHEMA, "push payload")
    repository = payload["repository"]
    name = _full_name(repository["full_name"], "repository.full_name")
    if full_name is not None and name.lower() != full_name.lower():
        raise PermanentError(f"payload is about {name!r}, the routing key about {full_name!r}")
    for where, value in (("ref", payload["ref"]), ("pusher.name", payload["pusher"]["name"]),
                         ("repository.clone_url", repository.get("clone_url", ""))):
        problem = text_problem(value)
        if problem is not None:
            raise PermanentError(f"{where} {printable(value, 100)!r} {problem}")
    if "pushed_at" in repository and (problem := date_problem(repository["pushed_at"])) is not None:
        raise PermanentError(f"repository.pushed_at {problem}")
    before, after = payload["before"], payload["after"]
    deleted = payload.get("deleted", after == NULL_SHA)
    if not deleted and after == NULL_SHA:
        raise PermanentError("push payload has no 'after' commit but is not a deletion")
    return GitHubPush(
        full_name=name,
        ref=payload["ref"],
        before=before,
        after=after,
        deleted=deleted,
        forced=payload.get("forced", False),
        pusher=payload["pusher"]["name"],
        pushed_at=repository.get("pushed_at"),
        clone_url=repository.get("clone_url"),
    )


def parse_webhook(delivery):
    """``exchange/github-webhooks/v1``: events other than pushes are recognised by the routing key alone
    and skipped, whatever their body; a push's routing key and body must agree."""
    full_name, _, event = delivery.routing_key.rpartition("/")
    if event != "push":
        return GitHubEvent(event[:50] or "-", full_name[:140] or "-")
    full_name = _full_name(full_name, "routing key's repository")
    envelope = decode_json(delivery.body, delivery.content_type, limit=MAX_BODY_BYTES)
    validate_schema(envelope, WEBHOOK_SCHEMA, "github-webhooks message")
    if envelope["event"] != event:
        raise PermanentError(f"message says event {envelope['event'][:60]!r}, the routing key {event!r}")
    return parse_push_payload(envelope["payload"], full_name)


def routing_word(name):
    """How Taskcluster writes an organization or repository name in a routing key (sanitizeGitHubField)."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "", name).replace(".", "%")


def parse_taskcluster_github(delivery):
    """``exchange/taskcluster-github/v1/push``: the repository is identified from the body."""
    message = decode_json(delivery.body, delivery.content_type, limit=MAX_BODY_BYTES)
    validate_schema(message, TASKCLUSTER_GITHUB_SCHEMA, "taskcluster-github message")
    push = parse_push_payload(message["body"])
    owner, name = push.full_name.split("/")
    if (routing_word(owner), routing_word(name)) != (message["organization"], message["repository"]):
        raise PermanentError(f"message is for {message['organization'][:60]}/{message['repository'][:60]}, "
                             f"its payload for {push.full_name}")
    return push


# --- handling -------------------------------------------------------------------


def repository_full_name(url):
    """``owner/name`` of a repository URL (``https://github.com/owner/name/``), lower-cased, or None."""
    path = urlsplit(url).path.strip("/").removesuffix(".git")
    return path.lower() if _FULL_NAME.match(path) else None


def same_repository_url(a, b):
    # The credentials a private mirror's configured URL carries are not part of where it is.
    def normal(url):
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return parts.scheme.lower(), host.lower(), parts.path.rstrip("/").removesuffix(".git").lower()
    return normal(a) == normal(b)


class KnownGitHubRepositories(Refreshed):
    """{owner/name: repository id} of the active git repositories (``worker.known``)."""

    def read(self):
        rows = Repository.objects.active().filter(kind=Repository.GIT).order_by("pk").values_list("pk", "url")
        ids = {}
        for pk, url in rows:
            ids.setdefault(repository_full_name(url), pk)
        return ids

    def get(self, full_name):
        return self.current().get(full_name.lower())


class GitHubPushHandler:
    """Handles both sources' messages; holds the worker's cache of known GitHub repositories."""

    def __init__(self, known):
        self.known = known

    def lane(self, message):
        """Where ``message``'s work runs (``worker.lanes``): its repository's lane, or None when it is
        skipped on the consumer's thread."""
        if message.kind != "push":
            return None
        pk = self.known.get(message.full_name)
        return None if pk is None else f"git:{pk}"

    def __call__(self, message):
        if message.kind != "push":
            return skipped(f"{message.kind} event")
        pk = self.known.get(message.full_name)
        repository = None if pk is None else Repository.objects.active().filter(pk=pk, kind=Repository.GIT).first()
        if repository is None:
            return skipped("unknown repository")
        if message.clone_url is not None and not same_repository_url(message.clone_url, repository.url):
            raise PermanentError(f"clone_url {message.clone_url[:200]!r} is not the known URL of {repository.name}")
        if message.ref.startswith("refs/tags/"):
            return skipped(f"tag {message.ref.removeprefix('refs/tags/')[:100]}")
        if message.ref != f"refs/heads/{repository.branch}":
            return skipped(f"push to {message.ref[:100]}, not to the tracked branch {repository.branch}")
        if message.deleted:
            return skipped(f"tracked branch {repository.branch} deleted")
        refuse_while_backing_off(repository)
        result = ingest_push(repository, message.after, before=message.before, pusher=message.pusher,
                             pushed_at=message.pushed_at)
        metrics.VCS_SECONDS.labels("git").observe(result.vcs_seconds)
        if not result.pushes:
            return skipped(result.detail or "push already stored")
        return stored(
            f"{result.pushes} pushes, {result.changesets} changesets, "
            f"{result.placeholders_filled} placeholders filled{', forced' if message.forced else ''}, "
            f"git {result.vcs_seconds:.2f}s"
        )
