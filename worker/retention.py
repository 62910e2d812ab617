"""How long dead letters are kept (DEAD_LETTER_RETENTION, DEAD_LETTER_RETENTION_UNRESOLVED).

A resolved one (replayed successfully) is kept DEAD_LETTER_RETENTION days
after it was resolved, for the record; an unresolved one
DEAD_LETTER_RETENTION_UNRESOLVED days after it arrived, long enough for an
operator to fix and replay it, short enough that the table does not grow for
ever. ``prune-dead-letters`` applies the rule; the worker does it daily.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import DeadLetter

CHUNK = 1000  # ids per DELETE when deleting what was listed


@dataclass
class Pruned:
    resolved: int = 0
    unresolved: int = 0
    dry_run: bool = False
    rows: list = field(default_factory=list)  # (id, created, resolved, exchange, routing key), when listed

    @property
    def total(self):
        return self.resolved + self.unresolved

    def summary(self):
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{verb} {self.resolved} resolved dead letters (resolved over {settings.DEAD_LETTER_RETENTION} "
                f"days ago) and {self.unresolved} unresolved ones (over {settings.DEAD_LETTER_RETENTION_UNRESOLVED} "
                f"days old)")


def expired(resolved, now=None):
    """The resolved (or unresolved) dead letters past their retention."""
    now = now or timezone.now()
    if resolved:
        before = now - timedelta(days=settings.DEAD_LETTER_RETENTION)
        # Resolved by an older version that did not say when: counted from its arrival.
        return DeadLetter.objects.alias(since=Coalesce("resolved_at", "created")).filter(
            resolved=True, since__lt=before)
    before = now - timedelta(days=settings.DEAD_LETTER_RETENTION_UNRESOLVED)
    return DeadLetter.objects.filter(resolved=False, created__lt=before)


def prune(dry_run=False, now=None, listing=False):
    """Delete the dead letters past their retention (none with ``dry_run``); returns how many were (or
    would be) deleted and, with ``listing``, which: exactly those are deleted."""
    pruned = Pruned(dry_run=dry_run)
    for resolved in (True, False):
        doomed = expired(resolved, now)
        if listing:
            rows = list(doomed.order_by("created", "pk").values_list("pk", "created", "exchange", "routing_key"))
            pruned.rows += [(pk, created, resolved, exchange, key) for pk, created, exchange, key in rows]
            count = len(rows)
            if not dry_run:
                ids = [row[0] for row in rows]
                for start in range(0, len(ids), CHUNK):
                    DeadLetter.objects.filter(pk__in=ids[start:start + CHUNK]).delete()
        elif dry_run:
            count = doomed.count()
        else:
            count, _ = doomed.delete()
        setattr(pruned, "resolved" if resolved else "unresolved", count)
    return pruned
