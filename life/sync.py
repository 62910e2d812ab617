"""Recording each ingestion's outcome in SyncState, and the back-off of failing repositories."""

import contextlib
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from plumbing.errors import Deferred, NotUpstreamYet, PermanentError, TransientError
from plumbing.text import storable
from plumbing.urls import mask_secrets

from .models import SyncState

log = logging.getLogger(__name__)

FAILURES_BEFORE_BACKOFF = 5
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
ERROR_LENGTH = 2000


def next_attempt(failures, now):
    """When a repository that failed ``failures`` times in a row may be tried again.

    A few failures are retried at once; after that the wait doubles, capped,
    so a repository that keeps failing cannot starve the others.
    """
    if failures < FAILURES_BEFORE_BACKOFF:
        return now
    return now + min(BACKOFF_BASE * 2 ** (failures - FAILURES_BEFORE_BACKOFF), BACKOFF_CAP)


def refuse_while_backing_off(repository):
    """Raise Deferred if ``repository`` is backing off: a message for it waits without touching upstream.

    The backfill already leaves such a repository alone until ``next_attempt``;
    messages do too, so a repository whose server hangs is not tried again for
    each of its messages (each costing up to VCS_TIMEOUT).
    """
    until = SyncState.objects.filter(repository=repository).values_list("next_attempt", flat=True).first()
    if until is not None and until > timezone.now():
        raise Deferred(f"{repository.name} is backing off until {until:%Y-%m-%d %H:%M:%S}Z; not fetched now")


def record_success(repository, stored_push_id, upstream_push_id, rejected=()):
    """Call inside the transaction that stored the data (one UPDATE, the common case).

    ``rejected``: RejectedPushes met on the way; they replace the last ones
    recorded, and do not count as failures: the repository syncs fine, upstream
    holds a push that cannot be stored.
    """
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
    if rejected:
        fields["last_rejection"] = storable("; ".join(str(rejection) for rejection in rejected)[:ERROR_LENGTH])
    if not SyncState.objects.filter(repository=repository).update(**fields):
        SyncState.objects.get_or_create(repository=repository, defaults=fields)


def describe(error):
    """An error as an operator reads it: the classified ones speak for themselves, others name their type."""
    if isinstance(error, (TransientError, PermanentError)):
        return str(error)
    return mask_secrets(f"{type(error).__name__}: {error}")


def record_failure(repository, error):
    """In a transaction of its own: the failed ingestion's transaction was rolled back."""
    now = timezone.now()
    with transaction.atomic():
        state, _ = SyncState.objects.select_for_update().get_or_create(repository=repository)
        state.failures += 1
        state.last_attempt = now
        state.last_error = storable(describe(error)[:ERROR_LENGTH])
        state.next_attempt = next_attempt(state.failures, now)
        state.save()
    return state


def record_attempt(repository):
    """An attempt that neither succeeded nor failed (upstream was not ready): only its time.

    The backfill takes the repositories tried longest ago first; without this, one
    that is never ready would come first in every run.
    """
    now = timezone.now()
    if not SyncState.objects.filter(repository=repository).update(last_attempt=now):
        SyncState.objects.get_or_create(repository=repository, defaults={"last_attempt": now})


@contextlib.contextmanager
def recording_failures(repository):
    """Record an ingestion's failure in SyncState (in its own transaction), then let it propagate unchanged.

    Every exception counts: upstream or the network failing, bad input, the
    database refusing a value, a full disk, a bug. Two say nothing against the
    repository and are not counted: upstream not having the announced push yet
    (a lagging mirror: only the attempt's time is kept), and an error that says
    so itself (``repository_is_fine``, such as a message's push that upstream
    holds but cannot be stored).
    """
    try:
        yield
    except NotUpstreamYet:
        _safely(record_attempt, repository)
        raise
    except Exception as error:
        if not getattr(error, "repository_is_fine", False):
            _safely(record_failure, repository, error)
        raise


def _safely(record, repository, *args):
    try:
        record(repository, *args)
    except Exception:
        # The database may be what failed: the original error matters more than its record.
        log.exception("cannot record the outcome of ingesting %s in its sync state", repository.name)
