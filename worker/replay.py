"""Re-running a dead letter through the same source as a live message."""

from django.conf import settings
from django.utils import timezone

from .config import brokers
from .dispatch import Delivery, Outcome, Status, process
from .hgmo import KnownRepositories
from .sources import find


def replay(letter):
    """Process ``letter`` again; resolve it when it now succeeds. Returns the Outcome."""
    source = find(letter.source, letter.exchange, brokers(settings), KnownRepositories(ttl=0))
    if source is None:
        outcome = Outcome(Status.DEAD, f"source {letter.source or letter.exchange!r} is no longer configured")
    else:
        delivery = Delivery(bytes(letter.body), letter.exchange, letter.routing_key, letter.content_type or None,
                            dict(letter.headers))
        outcome = process(source, delivery)
    letter.replays += 1
    if outcome.status in (Status.STORED, Status.SKIPPED):
        letter.resolved, letter.resolved_at = True, timezone.now()
    else:
        letter.error = outcome.detail
    letter.save(update_fields=["replays", "resolved", "resolved_at", "error"])
    return outcome
