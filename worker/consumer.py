"""The Pulse consumer: wires each source's queue to its handler and settles every delivery.

Settling is the delivery guarantee of DESIGN §6: a message is acked only
after its effects are committed; a transient failure is republished to a
delay queue (with publisher confirms) before the original is acked; a
permanent one is stored as a DeadLetter before it is acked.

Containment is the other half: nothing a delivery or the broker does stops
this loop. Every delivery ends as stored, skipped, retried or a dead letter
(``policy`` decides, over plain data); a frame the AMQP client cannot even
decode costs the connection, which is abandoned and made again (the
queue's delivery limit parks such a message after PULSE_DELIVERY_LIMIT
tries); a broker that is away or refuses the credentials is waited out
with back-off, one log line a try.
"""

import functools
import logging
import socket
import threading
import time
from pathlib import Path

from amqp.exceptions import AccessRefused, PreconditionFailed
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from kombu import Producer
from kombu.mixins import ConsumerMixin

from life.backfill import backfill
from plumbing.text import printable

from . import metrics, policy, topology, transport
from .dispatch import Delivery, Outcome, Status, process
from .hgmo import KnownRepositories
from .keepalive import KeepAlive
from .models import DeadLetter
from .sources import sources

log = logging.getLogger("worker")

HEARTBEAT_EVERY = 5
# A quiet queue gets the acks of the skipped messages it delivered after this long.
DEFERRED_ACK_DELAY = 0.5
# After a frame the client could not decode, one delivery at a time for this long: the broker
# counts a return against every unsettled delivery, and only the bad one should reach its limit.
ONE_AT_A_TIME_SECONDS = 60
RECONNECT_BACKOFF = (1, 2, 5, 10, 30, 60)
DATABASE_BACKOFF = (1, 2, 5, 10, 30)


def connect(broker):
    return transport.connection(
        broker.url,
        heartbeat=broker.heartbeat or None,
        transport_options={"confirm_publish": True},
        connect_timeout=10,
    )


class PulseWorker(ConsumerMixin):
    def __init__(self, connection, broker, max_messages=None, idle_exit=None):
        self.connection = connection
        self.broker = broker
        self.max_messages = max_messages
        self.idle_exit = idle_exit
        self.sources = sources(broker, KnownRepositories(settings.KNOWN_REPOSITORIES_TTL))
        self.handled = 0
        self.last_activity = time.monotonic()
        self.last_beat = 0.0
        self.last_backfill = time.monotonic()
        self.backfill_thread = None
        self.failures = 0  # connections lost in a row
        self.failure = None  # what ended the current connection
        self.one_at_a_time_until = 0.0
        self.consumers = []
        self.amqp = None  # py-amqp's connection under the current consumers, for heartbeats
        self.keepalive = KeepAlive()
        self.retry_producer = None
        self.acks = DeferredAcks(
            # kombu's virtual transports (memory://) ignore ``multiple``: ack each message there.
            enabled=connection.transport.driver_type == "amqp",
            limit=broker.prefetch // 2,  # below the prefetch, or the broker would wait for them
        )

    @property
    def connection_lost(self):
        return self.connection.connection_errors + self.connection.channel_errors + (OSError,)

    @property
    def poll_interval(self):
        # Shorter than the broker's heartbeat interval, so heartbeats are checked between its frames.
        return min(1.0, self.broker.heartbeat / 4) if self.broker.heartbeat else 1.0

    # --- the connection's life --------------------------------------------------

    def run(self):
        """Consume until stopped; no failure of the broker, the connection or a frame ends it."""
        while not self.should_stop:
            try:
                for _ in self.consume():
                    pass
            except Exception as error:  # noqa: BLE001 - see connection_failed
                self.connection_failed(self.failure or error)
            self.failure = None

    def consume(self, *args, **kwargs):
        """kombu's consume loop, with this worker's poll interval; a failing connection is abandoned."""
        with self.consumer_context() as (connection, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                try:
                    connection.drain_events(timeout=self.poll_interval)
                except socket.timeout:
                    connection.heartbeat_check()
                except Exception as error:
                    # No goodbyes on a connection in an unknown state: its unsettled deliveries return.
                    self.failure = error
                    connection.collect()
                    raise
                yield

    def connection_failed(self, error):
        """One line, then wait: longer each time the broker fails again, a second after a bad frame."""
        self.acks.forget()  # they belonged to the lost channel, whose messages are redelivered
        self.last_activity = time.monotonic()  # reconnecting is not being idle
        self.failures += 1
        if isinstance(error, AccessRefused):
            delay = RECONNECT_BACKOFF[min(self.failures, len(RECONNECT_BACKOFF)) - 1]
            log.error("broker %s refused the credentials of %s (%s); retrying in %ds", self.broker.safe_url,
                      self.broker.user, printable(error, 200), delay)
        elif isinstance(error, PreconditionFailed):
            delay = RECONNECT_BACKOFF[-1]
            log.error("broker %s refused to declare the worker's queues as configured (%s): a queue exists with "
                      "other arguments (was PULSE_DELIVERY_LIMIT or PULSE_QUEUE_EXPIRES changed?); delete that queue "
                      "or restore the setting; retrying in %ds", self.broker.safe_url, printable(error, 300), delay)
        elif isinstance(error, self.connection_lost):
            delay = RECONNECT_BACKOFF[min(self.failures, len(RECONNECT_BACKOFF)) - 1]
            log.warning("connection to %s lost (%s: %s); reconnecting in %ds", self.broker.safe_url,
                        type(error).__name__, printable(error, 200), delay)
        else:
            delay = 1
            self.one_at_a_time_until = time.monotonic() + ONE_AT_A_TIME_SECONDS
            log.error("the broker sent a frame the AMQP client cannot handle (%s: %s); reconnecting to take "
                      "deliveries one at a time; the queue parks that message after %d deliveries",
                      type(error).__name__, printable(error, 200), self.broker.delivery_limit)
        metrics.BROKER_FAILURES.inc()
        self.sleep(delay)

    def on_connection_error(self, exc, interval):
        log.warning("broker %s unreachable (%s); retrying in %.0fs", self.broker.safe_url, printable(exc, 200),
                    interval)

    def get_consumers(self, Consumer, channel):
        # py-amqp hands out deliveries while it waits for the broker to confirm each consumer, before
        # on_consume_ready: whatever a delivery needs is made ready here.
        prefetch = 1 if time.monotonic() < self.one_at_a_time_until else self.broker.prefetch
        self.acks.new_channel()
        self.acks.limit = prefetch // 2
        if self.broker.embedded:
            self.amqp, self.retry_producer = None, Producer(channel)
        else:
            # Retries are published on a channel of their own: waiting for a publisher confirm on the
            # consuming channel would hand this loop its next delivery in the middle of the last one.
            self.amqp, self.retry_producer = channel.connection, Producer(channel.connection.channel())
        consumed = topology.available(channel.connection, self.broker, self.sources)
        queues = topology.declare(channel, self.broker, consumed)
        if not self.broker.embedded:
            self.take_over_earlier_queues(channel, consumed)
        log.info("consuming %s (prefetch %d)", ", ".join(queue.name for queue in queues), prefetch)
        # One consumer per source, so each message reaches its source's handler; the channel still
        # delivers (and this loop settles) in one order, which the deferred acks rely on.
        return [
            Consumer(queues=[queue], on_message=functools.partial(self.on_message, source), prefetch_count=prefetch)
            for source, queue in zip(consumed, queues, strict=True)
        ]

    def take_over_earlier_queues(self, channel, sources):
        for source in sources:
            topology.drain_legacy_queue(channel.connection, self.broker, source)
            parked = topology.parked_messages(channel, self.broker, source)
            if parked:
                log.warning("%d messages parked in %s: deliveries the worker could not take (inspect them with the "
                            "broker's management tools)", parked, topology.queue_name(self.broker, source, "/parked"))

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.consumers = consumers
        self.failures = 0

    def on_consume_end(self, connection, channel):
        self.acks.flush()

    def on_decode_error(self, message, exc):
        """kombu could not make a Message of a delivery: a dead letter, never a silent ack."""
        outcome = Outcome(Status.DEAD, f"the delivery could not be decoded: {type(exc).__name__}: {exc}")
        self.settle(message, None, self.delivery(message), outcome)

    def on_iteration(self):
        self.beat()
        self.maybe_backfill()
        if self.one_at_a_time_until and time.monotonic() >= self.one_at_a_time_until:
            self.one_at_a_time_until = 0.0
            for consumer in self.consumers:
                consumer.qos(prefetch_count=self.broker.prefetch)
            self.acks.limit = self.broker.prefetch // 2
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

    def sleep(self, seconds):
        """Wait, but not past a stop."""
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))

    # --- one message --------------------------------------------------------------

    def on_message(self, source, message):
        started = time.monotonic()
        delivery = self.delivery(message)
        try:
            with self.keepalive.busy(self.amqp):
                outcome = self.outcome(source, delivery)
                settled = self.settle(message, source, delivery, outcome)
        except self.connection_lost:
            raise  # the broker returns the message; the run loop reconnects
        except Exception:
            # Settling itself failed in a way nobody foresaw: the message goes back, and the queue's
            # delivery limit bounds how often that can happen.
            log.exception("could not settle %s %s; returning it to the queue", delivery.exchange,
                          printable(delivery.routing_key, 200))
            message.requeue()
            return
        self.handled += 1
        self.last_activity = time.monotonic()
        duration = self.last_activity - started
        metrics.record(delivery.exchange, outcome.status, duration)
        event = {
            "exchange": delivery.exchange,
            "routing_key": delivery.routing_key[:200],
            "type": outcome.kind,
            "subject": outcome.subject[:200],
            "outcome": str(outcome.status) if settled else "requeued",
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
        exchange, routing_key = _text(info.get("exchange")), _text(info.get("routing_key"))
        # Only our own retry path may restate where a message first came from.
        if exchange == self.broker.own_exchange and policy.ORIGINAL_EXCHANGE_HEADER in headers:
            exchange = _text(headers[policy.ORIGINAL_EXCHANGE_HEADER])
            routing_key = _text(headers.get(policy.ORIGINAL_ROUTING_KEY_HEADER))
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8", "surrogatepass")
        return Delivery(body, exchange, routing_key, message.content_type, headers, message.content_encoding)

    def outcome(self, source, delivery):
        refused = policy.refusal(delivery, self.broker.delivery_limit)
        if refused is not None:
            return Outcome(Status.DEAD, refused)
        now = time.time()
        return policy.final(
            process(source, delivery),
            retries=policy.retries(delivery.headers),
            first_attempt=policy.first_attempt(delivery.headers, now),
            now=now,
            max_retries=self.broker.max_retries,
        )

    def settle(self, message, source, delivery, outcome):
        """Record the outcome, then ack. Returns False if the worker stopped first (the message went back).

        While the database is away, a dead letter waits for it (with back-off, the
        connection kept alive): requeueing would only bring the message straight back.
        """
        waits = 0
        while True:
            try:
                if outcome.status is Status.DEAD:
                    DeadLetter.record(delivery, outcome.detail, source=source.name if source else "",
                                      retries=policy.retries(delivery.headers))
                elif outcome.status is Status.RETRY:
                    self.publish_retry(source, delivery, outcome)
                break
            except (OperationalError, InterfaceError) as error:
                close_old_connections()
                if self.should_stop:
                    message.requeue()
                    return False
                delay = DATABASE_BACKOFF[min(waits, len(DATABASE_BACKOFF) - 1)]
                waits += 1
                log.warning("cannot record a dead letter, the database is unavailable (%s); waiting %ds",
                            printable(error, 200), delay)
                self.sleep(delay)
        self.acks.ack(message, defer=outcome.status is Status.SKIPPED)
        return True

    def publish_retry(self, source, delivery, outcome):
        retries = policy.retries(delivery.headers)
        delay = policy.retry_delay(self.broker.retry_delays, retries)
        try:
            self.retry_producer.publish(
                delivery.body,
                exchange=topology.own_exchange(self.broker),
                routing_key=topology.retry_key(source, delay),
                headers=policy.retry_headers(delivery, retries, policy.first_attempt(delivery.headers, time.time())),
                content_type=delivery.content_type or "application/json",
                content_encoding=delivery.content_encoding or "binary",
                delivery_mode=2,
                declare=[],
            )
        except (TypeError, ValueError) as error:  # UnicodeError too: headers that cannot travel again
            outcome.status, outcome.detail = Status.DEAD, f"{outcome.detail} (no retry copy can be made: {error})"
            DeadLetter.record(delivery, outcome.detail, source=source.name, retries=retries)


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


def _text(value):
    """A delivery field as text (headers may carry bytes, or nothing)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _backfill_in_thread():
    try:
        log.info(backfill(limit=settings.BACKFILL_LIMIT or None).summary())
    except Exception:
        log.exception("backfill failed")
    finally:
        connections.close_all()
