"""Settling a delivery (DESIGN §6): what its outcome leaves behind, then the ack.

A message is acked only after its effects are committed; a transient
failure is republished to a delay queue (with publisher confirms) before
the original is acked; a permanent one is stored as a DeadLetter before it
is acked. While the database is away, a dead letter waits for it (with
back-off): requeueing would only bring the message straight back.
"""

import logging
from dataclasses import replace

from django.db import InterfaceError, OperationalError, close_old_connections

from plumbing.text import printable

from . import policy, topology
from .dispatch import Status
from .models import DeadLetter

log = logging.getLogger("worker")

DATABASE_BACKOFF = (1, 2, 5, 10, 30)
# A quiet queue gets the acks of the skipped messages it delivered after this long.
DEFERRED_ACK_DELAY = 0.5


class Settler:
    """Settles the deliveries of one broker: dead letters, retry copies, acks.

    ``sleep(seconds)`` waits but not past a stop, and ``stopping()`` says whether the worker is
    stopping; the consumer gives both, and ``retry_producer`` for each channel it consumes from.
    """

    def __init__(self, broker, acks, sleep, stopping):
        self.broker = broker
        self.acks = acks
        self.sleep = sleep
        self.stopping = stopping
        self.retry_producer = None

    def settle(self, message, source, delivery, attempt, outcome):
        """Record ``outcome``, then ack. Returns the outcome as settled (a retry that cannot be copied
        is a dead letter), or None if the worker stopped first (the message went back)."""
        if outcome.status is Status.RETRY:
            outcome = self.publish_retry(source, delivery, attempt, outcome)
        waits = 0
        while outcome.status is Status.DEAD:
            try:
                DeadLetter.record(delivery, outcome.detail, source=source.name if source else "",
                                  retries=attempt.retries)
                break
            except (OperationalError, InterfaceError) as error:
                close_old_connections()
                if self.stopping():
                    message.requeue()
                    return None
                delay = DATABASE_BACKOFF[min(waits, len(DATABASE_BACKOFF) - 1)]
                waits += 1
                log.warning("cannot record a dead letter, the database is unavailable (%s); waiting %ds",
                            printable(error, 200), delay)
                self.sleep(delay)
        self.acks.ack(message, defer=outcome.status is Status.SKIPPED)
        return outcome

    def publish_retry(self, source, delivery, attempt, outcome):
        """Publish ``delivery``'s retry copy to its delay queue; returns ``outcome``, or a dead one when no
        copy can be made."""
        delay = policy.retry_delay(self.broker.retry_delays, attempt.retries)
        try:
            self.retry_producer.publish(
                delivery.body,
                exchange=topology.own_exchange(self.broker),
                routing_key=topology.retry_key(source, delay),
                headers=policy.retry_headers(delivery, attempt.retries, attempt.first_attempt),
                content_type=delivery.content_type or "application/json",
                content_encoding=delivery.content_encoding or "binary",
                delivery_mode=2,
                declare=[],
            )
        except (TypeError, ValueError) as error:  # UnicodeError too: headers that cannot travel again
            return replace(outcome, status=Status.DEAD,
                           detail=f"{outcome.detail} (no retry copy can be made: {error})")
        return outcome


class DeferredAcks:
    """Acks of skipped messages, sent as one ``multiple`` ack with the next ack or when the queue is quiet.

    Most of what hg.mozilla.org announces is skipped, and an ack frame per
    skipped message costs more than the skipping. A skipped message has no
    effects, so a late ack loses nothing: if the worker dies first, the
    message comes back and is skipped again.

    A ``multiple`` ack settles every delivery of the channel up to its tag, so
    it is only used while this worker has seen every tag (they count up by
    one per delivery). A delivery the AMQP client could not decode leaves a
    gap: from then on the channel's acks are one by one, and that delivery
    stays unsettled until the connection is dropped and the broker counts it.
    """

    def __init__(self, enabled, limit):
        self.enabled = enabled
        self.limit = limit
        self.new_channel()

    def new_channel(self):
        self.last_tag, self.every_tag_seen, self.waiting = 0, True, []

    def ack(self, message, defer=False):
        tag = message.delivery_tag
        if not isinstance(tag, int) or tag != self.last_tag + 1:
            self.every_tag_seen = False
        self.last_tag = tag
        multiple = self.enabled and self.every_tag_seen
        if defer and multiple and len(self.waiting) < self.limit:
            self.waiting.append(message)
            return
        if multiple:
            message.ack(multiple=True)
        else:
            for waiting in self.waiting:
                waiting.ack()
            message.ack()
        self.waiting = []

    def flush(self):
        if self.waiting:
            self.waiting[-1].ack(multiple=True)  # only ever deferred while every tag was seen
        self.waiting = []

    def forget(self):
        """The channel is gone, and with it what it delivered: those come back."""
        self.new_channel()
