"""What becomes of a delivery (DESIGN §6): refused, retried, or given up on. Pure functions.

The consumer asks these before and after a source handles a delivery; they
read only the delivery's plain data and the clock they are given.
"""

import math
from dataclasses import dataclass, replace

from plumbing.text import printable

from .dispatch import Status

RETRIES_HEADER = "x-retries"
FIRST_ATTEMPT_HEADER = "x-first-attempt"  # when the worker first tried the message, seconds since the epoch
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
DELIVERY_COUNT_HEADER = "x-delivery-count"  # set by quorum queues on each redelivery
COMPRESSION_HEADER = "compression"
# What a retry copy does not carry over: the worker's own bookkeeping (set afresh), the broker's
# dead-lettering records, and CC/BCC, which would fan the copy out to other queues again.
NOT_CARRIED = frozenset({
    RETRIES_HEADER, FIRST_ATTEMPT_HEADER, ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER,
    DELIVERY_COUNT_HEADER, COMPRESSION_HEADER, "x-death", "x-first-death-exchange", "x-first-death-queue",
    "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "CC", "BCC",
})
# Bodies are bytes read as they are; these encodings say nothing else about them.
PLAIN_ENCODINGS = frozenset({"", "utf-8", "utf8", "binary", "8bit", "7bit"})
MAX_RETRIES_COUNTED = 10**6


def _count(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), MAX_RETRIES_COUNTED)


def retries(headers):
    """How often the worker retried this message: its own header, but any message may carry anything."""
    return _count(headers.get(RETRIES_HEADER))


def first_attempt(headers, now):
    """When the worker first tried this message: its own header if plausible, else now."""
    value = headers.get(FIRST_ATTEMPT_HEADER)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= now:
        return float(value)
    return now


@dataclass(frozen=True)
class Attempt:
    """What a delivery's headers say of the worker's earlier tries at it, read once per delivery."""

    retries: int  # how often the worker retried it
    first_attempt: float  # when the worker first tried it, seconds since the epoch


def attempt(headers, now):
    """The Attempt of a delivery with ``headers`` received at ``now``."""
    return Attempt(retries(headers), first_attempt(headers, now))


def refusal(delivery, delivery_limit):
    """Why ``delivery`` is refused before any source parses it, or None.

    A compressed body is never decompressed (a few kilobytes can expand to
    gigabytes); an encoding other than plain bytes or UTF-8 is not guessed
    at; a message delivered ``delivery_limit`` times without being settled is
    one the worker keeps dying on, so it is not handled once more.
    """
    compression = delivery.headers.get(COMPRESSION_HEADER)
    if compression is not None:
        return f"compressed bodies are refused (compression {printable(compression, 60)!r}); the raw bytes are kept"
    encoding = delivery.content_encoding
    if encoding is not None and str(encoding).strip().lower() not in PLAIN_ENCODINGS:
        return f"content encoding {printable(encoding, 60)!r} is not supported (utf-8 or binary)"
    delivered = _count(delivery.headers.get(DELIVERY_COUNT_HEADER))
    if delivered >= delivery_limit:
        return (f"delivered {delivered + 1} times without being settled: the worker stopped each time while "
                "handling it")
    return None


def final(outcome, *, retries, first_attempt, now, max_retries):
    """``outcome``, except a retry that has run out of tries or time becomes a dead letter."""
    if outcome.status is not Status.RETRY or not outcome.counted:
        return outcome
    waited = now - first_attempt
    if outcome.give_up_after is not None and waited >= outcome.give_up_after:
        return replace(outcome, status=Status.DEAD, give_up_after=None,
                       detail=f"gave up after {waited:.0f}s (the limit is {outcome.give_up_after:.0f}s): {outcome.detail}")
    if retries >= max_retries:
        return replace(outcome, status=Status.DEAD, give_up_after=None,
                       detail=f"gave up after {retries} retries: {outcome.detail}")
    return outcome


def retry_headers(delivery, retries, first_attempt, counted=True):
    """The headers of ``delivery``'s retry copy: as received, less what must not travel, plus the count
    (unchanged for a message deferred without being tried)."""
    headers = {name: value for name, value in delivery.headers.items() if name not in NOT_CARRIED}
    headers.update({
        RETRIES_HEADER: retries + 1 if counted else retries,
        FIRST_ATTEMPT_HEADER: first_attempt,
        ORIGINAL_EXCHANGE_HEADER: delivery.exchange,
        ORIGINAL_ROUTING_KEY_HEADER: delivery.routing_key,
    })
    return headers


def retry_delay(delays, retries):
    return delays[min(retries, len(delays) - 1)]
