"""Recording each ingestion's outcome in SyncState, and the back-off of failing repositories."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import SyncState

FAILURES_BEFORE_BACKOFF = 5
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)


def next_attempt(failures, now):
    """When a repository that failed ``failures`` times in a row may be tried again.

    A few failures are retried at once; after that the wait doubles, capped,
    so a repository that keeps failing cannot starve the others.
    """
    if failures < FAILURES_BEFORE_BACKOFF:
        return now
    return now + min(BACKOFF_BASE * 2 ** (failures - FAILURES_BEFORE_BACKOFF), BACKOFF_CAP)


def record_success(repository, stored_push_id, upstream_push_id):
    """Call inside the transaction that stored the data (one UPDATE, the common case)."""
    now = timezone.now()
    fields = {
        "last_synced": now,
        "last_attempt": now,
        "stored_push_id": stored_push_id,
        "upstream_push_id": upstream_push_id,
        "failures": 0,
        "last_error": "",
        "next_attempt": None,
    }
    if not SyncState.objects.filter(repository=repository).update(**fields):
        SyncState.objects.get_or_create(repository=repository, defaults=fields)


def record_failure(repository, error):
    """In a transaction of its own: the failed ingestion's transaction was rolled back."""
    now = timezone.now()
    with transaction.atomic():
        state, _ = SyncState.objects.select_for_update().get_or_create(repository=repository)
        state.failures += 1
        state.last_attempt = now
        state.last_error = str(error)[:2000]
        state.next_attempt = next_attempt(state.failures, now)
        state.save()
    return state
