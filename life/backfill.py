"""Backfill: bring every known repository up to date without waiting for a message.

Pulse is at-least-once only while the worker's queue exists; a queue that
expired or was deleted loses notifications. For each known, non-archived
repository this asks json-pushes for ``lastpushid`` (one cheap request; for a
git repository, the ref advertisement's tip of the tracked branch) and
ingests what is missing through the same code the worker uses (same locks,
idempotent). Repositories that waited longest go first; one that keeps
failing is backed off (see ``sync.next_attempt``) so it cannot starve the
others.
"""

import logging
import time
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.utils import timezone

from plumbing.errors import PermanentError, TransientError

from .models import Repository
from .pushlog import PushlogClient
from .repositories import catch_up

log = logging.getLogger(__name__)


@dataclass
class RepositoryOutcome:
    name: str
    status: str  # "up to date", "caught up", "failed"
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
            f"{self.count('caught up')} caught up, {self.count('up to date')} up to date, "
            f"{self.count('failed')} failed, {self.backed_off} backing off"
        )


def due_repositories(names=None):
    """Known, non-archived repositories, those that waited longest first; backed-off ones left out."""
    now = timezone.now()
    repositories = Repository.objects.active().select_related("sync_state")
    if names:
        repositories = repositories.filter(name__in=names)
    due = repositories.filter(Q(sync_state__isnull=True) | Q(sync_state__next_attempt__isnull=True)
                              | Q(sync_state__next_attempt__lte=now))
    ordered = due.order_by(F("sync_state__last_synced").asc(nulls_first=True), "name")
    return list(ordered), repositories.count() - due.count()


def backfill(limit=None, names=None, client=None, on_outcome=None):
    """Backfill up to ``limit`` repositories; returns a BackfillReport."""
    started = time.monotonic()
    client = client or PushlogClient()
    repositories, backed_off = due_repositories(names)
    report = BackfillReport(backed_off=backed_off)
    for repository in repositories[:limit]:
        try:
            result = catch_up(repository, client=client)
        except (TransientError, PermanentError) as error:
            outcome = RepositoryOutcome(repository.name, "failed", str(error))
        else:
            if result.pushes:
                outcome = RepositoryOutcome(repository.name, "caught up", f"{result.pushes} pushes, {result.changesets} changesets")
            else:
                outcome = RepositoryOutcome(repository.name, "up to date")
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    report.seconds = time.monotonic() - started
    return report
