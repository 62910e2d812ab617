"""Backfill: bring every known repository up to date without waiting for a message.

Pulse is at-least-once only while the worker's queue exists; a queue that
expired or was deleted loses notifications. For each known, non-archived
repository this asks json-pushes for ``lastpushid`` (one cheap request; for a
git repository, the ref advertisement's tip of the tracked branch) and
ingests what is missing through the same code the worker uses (same locks,
idempotent). Repositories tried longest ago go first, so one that just
failed goes after the others; one that keeps failing is backed off (see
``sync.next_attempt``). A failure of any kind is recorded for its repository
and the run goes on: one broken repository cannot starve the others.
"""

import enum
import logging
import time
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.utils import timezone

from plumbing.errors import PermanentError, TransientError
from plumbing.http import http_session

from .kinds import for_repository
from .models import Repository
from .sync import describe

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    UP_TO_DATE = "up to date"
    CAUGHT_UP = "caught up"
    FAILED = "failed"


@dataclass(frozen=True)
class RepositoryOutcome:
    name: str
    status: Status
    detail: str = ""


@dataclass
class BackfillReport:
    outcomes: list = field(default_factory=list)
    backed_off: int = 0
    seconds: float = 0.0

    def count(self, status):
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def summary(self):
        return (
            f"backfill: {len(self.outcomes)} repositories in {self.seconds:.1f}s: "
            f"{self.count(Status.CAUGHT_UP)} caught up, {self.count(Status.UP_TO_DATE)} up to date, "
            f"{self.count(Status.FAILED)} failed, {self.backed_off} backing off"
        )


def due_repositories(names=None):
    """Known, non-archived repositories, those tried longest ago first; backed-off ones left out."""
    now = timezone.now()
    repositories = Repository.objects.active().select_related("sync_state")
    if names:
        repositories = repositories.filter(name__in=names)
    due = repositories.filter(Q(sync_state__isnull=True) | Q(sync_state__next_attempt__isnull=True)
                              | Q(sync_state__next_attempt__lte=now))
    ordered = due.order_by(
        F("sync_state__last_attempt").asc(nulls_first=True), F("sync_state__last_synced").asc(nulls_first=True), "name"
    )
    return list(ordered), repositories.count() - due.count()


def backfill(limit=None, names=None, session=None, on_outcome=None):
    """Backfill up to ``limit`` repositories (one HTTP session for all); returns a BackfillReport."""
    started = time.monotonic()
    session = session or http_session()
    repositories, backed_off = due_repositories(names)
    report = BackfillReport(backed_off=backed_off)
    for repository in repositories[:limit]:
        try:
            result = for_repository(repository).catch_up(repository, session=session)
        except Exception as error:  # recorded in its SyncState already; the others still get their turn
            if not isinstance(error, (TransientError, PermanentError)):
                log.exception("backfill of %s failed", repository.name)
            outcome = RepositoryOutcome(repository.name, Status.FAILED, describe(error))
        else:
            outcome = _success(repository, result)
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    report.seconds = time.monotonic() - started
    return report


def _success(repository, result):
    details = []
    if result.pushes:
        details.append(f"{result.pushes} pushes, {result.changesets} changesets")
    if result.rejected:
        details.append(f"{len(result.rejected)} pushes rejected, e.g. {result.rejected[0]}")
    return RepositoryOutcome(repository.name, Status.CAUGHT_UP if result.pushes else Status.UP_TO_DATE,
                             "; ".join(details))
