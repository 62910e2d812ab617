"""The Pulse consumer: kombu's ConsumerMixin, its hooks filled in.

Each source's queue is wired to its handler (``get_consumers``); each
delivery is read once into plain data, handled (``dispatch``, ``policy``)
and settled (``settling``: acks, retry copies, dead letters). Between
deliveries the loop keeps house (``housekeeping``: the liveness file, the
backfill timer).

Containment is the other half: nothing a delivery or the broker does stops
this loop. Every delivery ends as stored, skipped, retried or a dead letter;
a frame the AMQP client cannot even decode costs the connection, which is
abandoned and made again (the queue's delivery limit parks such a message
after PULSE_DELIVERY_LIMIT tries), and the next connection takes deliveries
one at a time for a while; a broker that is away or refuses the credentials
is waited out with back-off, one log line a try.
"""

import contextlib
import functools
import logging
import time

from amqp.exceptions import AccessRefused, PreconditionFailed
from django.conf import settings
from kombu import Producer
from kombu.mixins import ConsumerMixin

from plumbing.text import field_text, printable

from . import metrics, policy, topology, transport
from .dispatch import Delivery, Outcome, Status, process
from .hgmo import KnownRepositories
from .housekeeping import Housekeeping
from .keepalive import KeepAlive
from .settling import DEFERRED_ACK_DELAY, DeferredAcks, Settler
from .sources import sources

log = logging.getLogger("worker")

# After a frame the client could not decode, one delivery at a time for this long: the broker
# counts a return against every unsettled delivery, and only the bad one should reach its limit.
ONE_AT_A_TIME_SECONDS = 60
RECONNECT_BACKOFF = (1, 2, 5, 10, 30, 60)


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
        self.failures = 0  # connections lost in a row
        self.failure = None  # what ended the current connection
        self.one_at_a_time_until = 0.0
        self.consumers = []
        self.amqp = None  # py-amqp's connection under the current consumers, for heartbeats
        self.keepalive = KeepAlive()
        self.housekeeping = Housekeeping(backfills=broker.main)
        self.acks = DeferredAcks(
            # kombu's virtual transports (memory://) ignore ``multiple``: ack each message there.
            enabled=connection.transport.driver_type == "amqp",
            limit=broker.prefetch // 2,  # below the prefetch, or the broker would wait for them
        )
        self.settler = Settler(broker, self.acks, self.sleep, stopping=lambda: self.should_stop)

    @property
    def connection_lost(self):
        return self.connection.connection_errors + self.connection.channel_errors + (OSError,)

    @property
    def poll_interval(self):
        # Shorter than the broker's heartbeat interval, so heartbeats are checked between its frames.
        return min(1.0, self.broker.heartbeat / 4) if self.broker.heartbeat else 1.0

    # --- the connection's life --------------------------------------------------

    def run(self):
        """Consume until stopped: kombu's consume loop, polling at this worker's interval. Unlike kombu's
        ``run``, which outlives only connection errors, no failure of the broker, the connection or a
        frame ends it."""
        while not self.should_stop:
            try:
                for _ in self.consume(safety_interval=self.poll_interval):
                    pass
            except Exception as error:  # noqa: BLE001 - see connection_failed
                self.connection_failed(self.failure or error)
            self.failure = None

    @contextlib.contextmanager
    def extra_context(self, connection, channel):
        """Around the consume loop of one connection: one that fails is abandoned."""
        try:
            yield
        except Exception as error:
            # No goodbyes on a connection in an unknown state: its unsettled deliveries return.
            self.failure = error
            connection.collect()
            raise

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
            self.amqp, self.settler.retry_producer = None, Producer(channel)
        else:
            # Retries are published on a channel of their own: waiting for a publisher confirm on the
            # consuming channel would hand this loop its next delivery in the middle of the last one.
            self.amqp, self.settler.retry_producer = channel.connection, Producer(channel.connection.channel())
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
        delivery = self.delivery(message)
        self.settler.settle(message, None, delivery, policy.attempt(delivery.headers, time.time()), outcome)

    def on_iteration(self):
        self.housekeeping.tick()
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
        attempt = policy.attempt(delivery.headers, time.time())
        try:
            with self.keepalive.busy(self.amqp):
                outcome = self.outcome(source, delivery, attempt)
                settled = self.settler.settle(message, source, delivery, attempt, outcome)
        except self.connection_lost:
            raise  # the broker returns the message; the run loop reconnects
        except Exception:
            # Settling itself failed in a way nobody foresaw: the message goes back, and the queue's
            # delivery limit bounds how often that can happen.
            log.exception("could not settle %s %s; returning it to the queue", delivery.exchange,
                          printable(delivery.routing_key, 200))
            message.requeue()
            return
        outcome = settled or outcome
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
        """The delivery's facts, read once: where it came from (a retry copy restates it), its body and headers."""
        info = message.delivery_info
        headers = dict(message.headers or {})
        exchange, routing_key = field_text(info.get("exchange")), field_text(info.get("routing_key"))
        # Only our own retry path may restate where a message first came from.
        if exchange == self.broker.own_exchange and policy.ORIGINAL_EXCHANGE_HEADER in headers:
            exchange = field_text(headers[policy.ORIGINAL_EXCHANGE_HEADER])
            routing_key = field_text(headers.get(policy.ORIGINAL_ROUTING_KEY_HEADER))
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8", "surrogatepass")
        return Delivery(body, exchange, routing_key, message.content_type, headers, message.content_encoding)

    def outcome(self, source, delivery, attempt):
        refused = policy.refusal(delivery, self.broker.delivery_limit)
        if refused is not None:
            return Outcome(Status.DEAD, refused)
        now = time.time()
        return policy.final(
            process(source, delivery),
            retries=attempt.retries,
            first_attempt=attempt.first_attempt,
            now=now,
            max_retries=self.broker.max_retries,
        )
