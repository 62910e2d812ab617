"""Re-running a dead letter through the same dispatch as a live message."""

from django.utils import timezone

from .dispatch import Status, process
from .messages import Delivery


def replay(letter):
    """Process ``letter`` again; resolve it when it now succeeds. Returns the Outcome."""
    delivery = Delivery(
        bytes(letter.body), letter.exchange, letter.routing_key, letter.content_type or None, dict(letter.headers)
    )
    outcome = process(delivery)
    letter.replays += 1
    if outcome.status in (Status.STORED, Status.SKIPPED):
        letter.resolved, letter.resolved_at = True, timezone.now()
    else:
        letter.error = outcome.detail
    letter.save(update_fields=["replays", "resolved", "resolved_at", "error"])
    return outcome
