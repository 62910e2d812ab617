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
from kombu import Producer

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
    stopping; the consumer gives both. Retry copies go out on a connection of the settler's own
    (``publishing_connection``), which consumes nothing: a publish, and the wait for its confirm,
    cannot dispatch a delivery, so no message is ever handled inside another's settling. (The
    embedded broker, in one process, gets a ``retry_producer`` on the consuming channel.)
    """

    def __init__(self, broker, acks, sleep, stopping):
        self.broker = broker
        self.acks = acks
        self.sleep = sleep
        self.stopping = stopping
        self.retry_producer = None
        self.publisher = None  # the kombu Connection retry copies are published on

    def publishing_connection(self, consuming):
        """Publish retry copies on a connection like ``consuming`` (made when first needed). It carries
        no heartbeats: it is idle between retries, and a broker would close it for missing them."""
        self.close()
        self.publisher = consuming.clone(heartbeat=0)
        self.retry_producer = None

    def close(self):
        if self.publisher is not None:
            try:
                self.publisher.release()
            except Exception:  # noqa: BLE001 - a connection already broken is simply dropped
                log.debug("closing the publishing connection failed", exc_info=True)
            self.publisher, self.retry_producer = None, None

    def _publish(self, body, **options):
        if self.publisher is None:
            self.retry_producer.publish(body, **options)
            return
        for attempt in (1, 2):
            try:
                if self.retry_producer is None:
                    self.retry_producer = Producer(self.publisher.default_channel)
                self.retry_producer.publish(body, **options)
                return
            except self.publisher.connection_errors:
                # Idle for long, the connection may be gone: one new connection, then the error stands
                # (the delivery is not acked, so it comes back).
                self.publisher.collect()
                self.publisher = self.publisher.clone()
                self.retry_producer = None
                if attempt == 2:
                    raise

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
        # A deferred message waits the longest step when its repository is backing off, the shortest
        # when it is only busy with earlier messages (a burst of pushes to one repository).
        if outcome.counted:
            delay = policy.retry_delay(self.broker.retry_delays, attempt.retries)
        else:
            delay = self.broker.retry_delays[0] if outcome.soon else self.broker.retry_delays[-1]
        try:
            self._publish(
                delivery.body,
                exchange=topology.own_exchange(self.broker),
                routing_key=topology.retry_key(source, delay),
                headers=policy.retry_headers(delivery, attempt.retries, attempt.first_attempt, outcome.counted),
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
    """Acks of skipped messages, sent as one ``multiple`` ack with a later ack or when the queue is quiet.

    Most of what hg.mozilla.org announces is skipped, and an ack frame per
    skipped message costs more than the skipping. A skipped message has no
    effects, so a late ack loses nothing: if the worker dies first, the
    message comes back and is skipped again.

    A ``multiple`` ack settles every delivery of the channel up to its tag, so
    it is only used while this worker has seen every tag (they count up by
    one per delivery: ``delivered`` is told of each, in order) and none below
    it is still unsettled: deliveries handed to the handler threads
    (``worker.lanes``) finish in any order. A delivery the AMQP client could
    not decode leaves a gap: from then on the channel's acks are one by one,
    and that delivery stays unsettled until the connection is dropped and the
    broker counts it.
    """

    def __init__(self, enabled, limit):
        self.enabled = enabled
        self.limit = limit
        self.new_channel()

    def new_channel(self):
        self.last_tag, self.every_tag_seen, self.waiting, self.unsettled = 0, True, [], set()

    def delivered(self, message):
        """Called for every delivery, in the order the channel delivers them."""
        tag = message.delivery_tag
        if not isinstance(tag, int) or tag != self.last_tag + 1:
            self.every_tag_seen = False
        self.last_tag = tag
        self.unsettled.add(tag)

    def _multiple_settles_only_ours(self, tag):
        return self.enabled and self.every_tag_seen and all(other >= tag for other in self.unsettled)

    def ack(self, message, defer=False):
        tag = message.delivery_tag
        self.unsettled.discard(tag)
        multiple = self._multiple_settles_only_ours(tag)
        if defer and multiple and len(self.waiting) < self.limit:
            self.waiting.append(message)
            return
        if multiple:
            message.ack(multiple=True)
            self.waiting = [waiting for waiting in self.waiting if waiting.delivery_tag > tag]
        else:
            message.ack()

    def returned(self, message):
        """``message`` went back to the queue (requeued): nothing of ours waits on it."""
        self.unsettled.discard(message.delivery_tag)

    def flush(self):
        if not self.waiting:
            return
        if self._multiple_settles_only_ours(self.waiting[-1].delivery_tag):
            self.waiting[-1].ack(multiple=True)
        else:
            for waiting in self.waiting:
                waiting.ack()
        self.waiting = []

    def forget(self):
        """The channel is gone, and with it what it delivered: those come back."""
        self.new_channel()
