"""The Pulse consumer: wires the worker's queues to ``dispatch.process`` and settles each message.

Settling is the delivery guarantee of DESIGN §6: a message is acked only
after its effects are committed; a transient failure is republished to a
delay queue (with publisher confirms) before the original is acked; a
permanent one is stored as a DeadLetter before it is acked.
"""

import functools
import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from kombu import Connection
from kombu.mixins import ConsumerProducerMixin

from life.backfill import backfill

from . import metrics, topology
from .dispatch import Delivery, Status, process
from .hgmo import KnownRepositories
from .models import DeadLetter
from .sources import sources

log = logging.getLogger("worker")

RETRIES_HEADER = "x-retries"
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
HEARTBEAT_EVERY = 5
# A quiet queue gets the acks of the skipped messages it delivered after this long.
DEFERRED_ACK_DELAY = 0.5


def connect(broker):
    return Connection(
        broker.url,
        heartbeat=broker.heartbeat or None,
        transport_options={"confirm_publish": True},
        connect_timeout=10,
    )


class PulseWorker(ConsumerProducerMixin):
    def __init__(self, connection, broker, max_messages=None, idle_exit=None):
        self.connection = connection
        self.broker = broker
        self.max_messages = max_messages
        self.idle_exit = idle_exit
        self.handled = 0
        self.last_activity = time.monotonic()
        self.last_beat = 0.0
        self.last_backfill = time.monotonic()
        self.backfill_thread = None
        self.sources = sources(broker, KnownRepositories(settings.KNOWN_REPOSITORIES_TTL))
        self.acks = DeferredAcks(
            # kombu's virtual transports (memory://) ignore ``multiple``: ack each message there.
            enabled=connection.transport.driver_type == "amqp",
            limit=broker.prefetch // 2,  # below the prefetch, or the broker would wait for them
        )

    # kombu hooks

    def get_consumers(self, Consumer, channel):
        queues = topology.declare(channel, self.broker, self.sources)
        log.info("consuming %s", ", ".join(queue.name for queue in queues))
        # One consumer per source, so each message reaches its source's handler; the channel still
        # delivers (and we settle) in one order, which the deferred acks rely on.
        return [
            Consumer(queues=[queue], on_message=functools.partial(self.on_message, source),
                     prefetch_count=self.broker.prefetch)
            for source, queue in zip(self.sources, queues, strict=True)
        ]

    def on_connection_revived(self):
        self.acks.forget()  # they belonged to the lost channel, whose messages are redelivered

    def on_consume_end(self, connection, channel):
        self.acks.flush()

    def on_connection_error(self, exc, interval):
        log.warning("broker %s unreachable (%s); retrying in %.0fs", self.broker.safe_url, exc, interval)

    def on_iteration(self):
        self.beat()
        self.maybe_backfill()
        idle = time.monotonic() - self.last_activity
        if idle >= DEFERRED_ACK_DELAY:
            self.acks.flush()
        if self.idle_exit is not None and idle >= self.idle_exit:
            log.info("queues idle for %.0fs, stopping", idle)
            self.should_stop = True

    def beat(self):
        """Tell the health check this loop is alive (at most every few seconds)."""
        now = time.time()
        if now - self.last_beat >= HEARTBEAT_EVERY:
            self.last_beat = now
            metrics.LAST_ALIVE.set(now)
            heartbeat = Path(settings.HEARTBEAT_FILE)
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()

    def maybe_backfill(self):
        """Every BACKFILL_INTERVAL, backfill in a thread: messages keep flowing meanwhile.

        Backfill and message handlers take the same locks, so they never
        store a push twice.
        """
        interval = settings.BACKFILL_INTERVAL
        if not interval or not self.broker.main or time.monotonic() - self.last_backfill < interval:
            return
        if self.backfill_thread is not None and self.backfill_thread.is_alive():
            return
        self.last_backfill = time.monotonic()
        self.backfill_thread = threading.Thread(target=_backfill_in_thread, name="backfill", daemon=True)
        self.backfill_thread.start()

    def stop(self, *_signal_args):
        """Finish the message in hand, then leave (used as the SIGTERM/SIGINT handler)."""
        self.should_stop = True

    # one message

    def on_message(self, source, message):
        started = time.monotonic()
        delivery = self.delivery(message)
        outcome = process(source, delivery)
        retries = _retries(delivery.headers)
        if outcome.status is Status.RETRY and retries >= self.broker.max_retries:
            outcome.status = Status.DEAD
            outcome.detail = f"gave up after {retries} retries: {outcome.detail}"
        self.settle(message, source, delivery, outcome, retries)
        self.handled += 1
        self.last_activity = time.monotonic()
        duration = self.last_activity - started
        metrics.record(delivery.exchange, outcome.status, duration)
        event = {
            "exchange": delivery.exchange,
            "routing_key": delivery.routing_key[:200],
            "type": outcome.kind,
            "subject": outcome.subject[:200],
            "outcome": str(outcome.status),
            "duration": round(duration, 3),
            "detail": outcome.detail,
        }
        log.info(
            "%(exchange)s %(routing_key)s type=%(type)s subject=%(subject)s outcome=%(outcome)s "
            "duration=%(duration).3fs %(detail)s",
            event,
            extra={"event": event},
        )
        if self.max_messages is not None and self.handled >= self.max_messages:
            self.should_stop = True

    def delivery(self, message):
        info = message.delivery_info
        headers = dict(message.headers or {})
        exchange, routing_key = info.get("exchange") or "", info.get("routing_key") or ""
        # Only our own retry path may restate where a message first came from.
        if exchange == self.broker.own_exchange and ORIGINAL_EXCHANGE_HEADER in headers:
            exchange = str(headers[ORIGINAL_EXCHANGE_HEADER])
            routing_key = str(headers.get(ORIGINAL_ROUTING_KEY_HEADER, ""))
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8")
        return Delivery(body, exchange, routing_key, message.content_type, headers)

    def settle(self, message, source, delivery, outcome, retries):
        try:
            if outcome.status is Status.DEAD:
                DeadLetter.record(delivery, outcome.detail, source=source.name, retries=retries)
            elif outcome.status is Status.RETRY:
                self.publish_retry(source, delivery, retries)
        except DatabaseError as error:
            # Cannot even record the failure: give the message back and slow down.
            close_old_connections()
            log.error("cannot record %s outcome (%s); requeueing", outcome.status, error)
            self.acks.flush()
            message.requeue()
            time.sleep(1)
            return
        self.acks.ack(message, defer=outcome.status is Status.SKIPPED)

    def publish_retry(self, source, delivery, retries):
        delay = self.broker.retry_delays[min(retries, len(self.broker.retry_delays) - 1)]
        headers = {
            **delivery.headers,
            RETRIES_HEADER: retries + 1,
            ORIGINAL_EXCHANGE_HEADER: delivery.exchange,
            ORIGINAL_ROUTING_KEY_HEADER: delivery.routing_key,
        }
        self.producer.publish(
            delivery.body,
            exchange=topology.own_exchange(self.broker),
            routing_key=topology.retry_key(source, delay),
            headers=headers,
            content_type=delivery.content_type or "application/json",
            content_encoding="binary",
            delivery_mode=2,
            retry=True,
        )


class DeferredAcks:
    """Acks of skipped messages, sent as one ``multiple`` ack with the next ack or when the queue is quiet.

    Most of what hg.mozilla.org announces is skipped, and an ack frame per
    skipped message costs more than the skipping. A skipped message has no
    effects, so a late ack loses nothing: if the worker dies first, the
    message comes back and is skipped again. Messages are settled in the
    order the channel delivered them, so a ``multiple`` ack covers only
    settled ones.
    """

    def __init__(self, enabled, limit):
        self.enabled = enabled
        self.limit = limit
        self.forget()

    def ack(self, message, defer=False):
        if defer and self.enabled and self.waiting < self.limit:
            self.last, self.waiting = message, self.waiting + 1
            return
        message.ack(multiple=self.enabled)
        self.forget()

    def flush(self):
        if self.last is not None:
            self.last.ack(multiple=True)
        self.forget()

    def forget(self):
        self.last, self.waiting = None, 0


def _retries(headers):
    """How often a message was retried: our own header, but any message may carry anything."""
    try:
        return max(0, int(headers.get(RETRIES_HEADER) or 0))
    except (TypeError, ValueError):
        return 0


def _backfill_in_thread():
    try:
        log.info(backfill(limit=settings.BACKFILL_LIMIT or None).summary())
    except Exception:
        log.exception("backfill failed")
    finally:
        connections.close_all()
