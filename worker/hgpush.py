"""Handling hg.mozilla.org push notifications (DESIGN §1.1)."""

import time

from django.conf import settings

from life.errors import PermanentError
from life.ingest import ingest_new_repository, ingest_pushes, new_repository_url
from life.models import Repository

from . import metrics
from .config import HGPUSH_EXCHANGE
from .dispatch import register, skipped, stored
from .messages import parse_hgpush


def _same_url(announced, trusted):
    return announced is None or announced.rstrip("/") == trusted.rstrip("/")


def handle_hgpush(push):
    if push.kind == "changegroup.1":
        return handle_changegroup(push)
    if push.kind == "newrepo.1":
        return handle_newrepo(push)
    if push.kind == "obsolete.1":
        return skipped("obsolescence markers are not stored")
    return skipped(f"unknown message type {push.kind[:40]!r}")


class KnownRepositories:
    """The names of active repositories, re-read at most every KNOWN_REPOSITORIES_TTL seconds.

    hg.mozilla.org announces every push of every repository and almost all
    are for repositories we do not track: skipping them must not cost a
    query each. A repository added elsewhere is seen within that time; the
    same race exists anyway with a parallel worker still creating it, and a
    missed push is recovered by the next push or the backfill.
    """

    def __init__(self):
        self.names = frozenset()
        self.read_at = None

    def __contains__(self, name):
        now = time.monotonic()
        if self.read_at is None or now - self.read_at >= settings.KNOWN_REPOSITORIES_TTL:
            self.names = frozenset(Repository.objects.active().values_list("name", flat=True))
            self.read_at = now
        return name in self.names

    def forget(self):
        self.read_at = None


known_repositories = KnownRepositories()


def handle_changegroup(push):
    if push.repository not in known_repositories:
        return skipped("unknown repository")
    repository = Repository.objects.active().filter(name=push.repository).first()
    if repository is None:
        return skipped("unknown repository")
    if not _same_url(push.repo_url, repository.url):
        raise PermanentError(f"repo_url {push.repo_url[:200]!r} is not the known URL of {repository.name}")
    result = ingest_pushes(repository, max(push.push_ids) if push.push_ids else None)
    metrics.HG_SECONDS.observe(result.hg_seconds)
    if not result.pushes:
        return skipped("pushes already stored")
    return stored(
        f"{result.pushes} pushes, {result.changesets} changesets, "
        f"{result.placeholders_filled} placeholders filled, hg {result.hg_seconds:.2f}s"
    )


def handle_newrepo(push):
    url = new_repository_url(push.repository)
    if url is None:
        return skipped("not under a known forest")
    if not _same_url(push.repo_url, url):
        raise PermanentError(f"repo_url {push.repo_url[:200]!r} is not {url}, the forest's URL for it")
    repository, result = ingest_new_repository(push.repository)
    metrics.HG_SECONDS.observe(result.hg_seconds)
    known_repositories.forget()
    return stored(f"repository {repository.name}, {result.changesets} changesets")


register(HGPUSH_EXCHANGE, parse_hgpush, handle_hgpush)
