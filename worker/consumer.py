"""The Pulse consumer: kombu's ConsumerMixin, its hooks filled in.

Each source's queue is wired to its handler (``get_consumers``); each
delivery is read once into plain data, handled (``dispatch``, ``policy``)
and settled (``settling``: acks, retry copies, dead letters). Between
deliveries the loop keeps house (``housekeeping``: the liveness file, the
backfill timer).

Work that touches upstream runs in a bounded pool of handler threads, one
job per repository at a time (``lanes``: why, and what it keeps), so one
slow upstream costs the other repositories nothing. This thread alone uses
the AMQP connection: it polls it (servicing heartbeats), hands work to the
lanes, and settles each finished job by its delivery tag. Retry copies are
published on a connection of their own, which never delivers anything, so
settling can never hand this loop another delivery.

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

from amqp.exceptions import AccessRefused, ConsumerCancelled, PreconditionFailed
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db import connection as db_connection
from kombu import Producer
from kombu.mixins import ConsumerMixin

from plumbing.errors import PermanentError
from plumbing.text import field_text, printable

from . import metrics, policy, topology, transport
from .dispatch import Delivery, Outcome, Status, run
from .hgmo import KnownRepositories
from .housekeeping import Housekeeping
from .keepalive import KeepAlive
from .lanes import Lanes
from .outcome_log import SKIPPED_UNREAD, SkipSummary, log_outcome
from .settling import DEFERRED_ACK_DELAY, DeferredAcks, Settler
from .sources import sources

log = logging.getLogger("worker")

# After a frame the client could not decode, one delivery at a time for this long: the broker
# counts a return against every unsettled delivery, and only the bad one should reach its limit.
ONE_AT_A_TIME_SECONDS = 60
RECONNECT_BACKOFF = (1, 2, 5, 10, 30, 60)
# Lanes whose messages are never sent round a delay queue for being busy: a GitHub push names its pusher,
# and one handled after a later push of its repository would be stored as the unknown pusher's.
# (An hg message only says "read the pushlog": any order stores the same pushes.)
ORDER_MATTERS = ("git:",)


def connect(broker):
    return transport.connection(
        broker.url,
        heartbeat=broker.heartbeat or None,
        transport_options={"confirm_publish": True},
        connect_timeout=10,
    )


class PulseWorker(ConsumerMixin):
    def __init__(self, connection, broker, max_messages=None, idle_exit=None, threads=None):
        self.connection = connection
        self.broker = broker
        self.max_messages = max_messages
        self.idle_exit = idle_exit
        self.sources = sources(broker, KnownRepositories(settings.KNOWN_REPOSITORIES_TTL))
        self.handled = 0
        self.skip_summary = SkipSummary()
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
        self.settler = Settler(broker, self.acks, self.sleep, stopping=lambda: self.stop_requested)
        # A lane may keep a quarter of the prefetch waiting behind its running job; past that its
        # messages wait in a delay queue, so one hanging repository never holds the whole window.
        if threads is None:
            # The embedded broker (memory://) serves the demo and local runs in one process: its stream
            # is handled in order, on this thread, so what it shows is the same every time.
            threads = 0 if broker.embedded else settings.WORKER_THREADS
            if db_connection.vendor == "sqlite":
                threads = min(threads, 1)  # one writer at a time: parallel handlers would only retry locks
        # A thread stands in for each slow job (worker/lanes.py), except on SQLite (one writer at a time).
        self.lanes = Lanes(threads, backlog_limit=max(1, broker.prefetch // 4),
                           extra_threads=0 if db_connection.vendor == "sqlite" else None)
        self.generation = 0  # of the channel: a job handed out on an earlier one is not settled on this one
        self.stop_requested = False
        self.cancelled = set()  # queues whose consumer the broker cancelled (counted lost already)

    @property
    def should_stop(self):
        """Stopping waits for the jobs in hand (their deliveries are settled), then leaves the loop."""
        return self.stop_requested and self.lanes.in_flight == 0

    @should_stop.setter
    def should_stop(self, value):
        self.stop_requested = value

    @property
    def connection_lost(self):
        return self.connection.connection_errors + self.connection.channel_errors + (OSError,)

    @property
    def poll_interval(self):
        # Short: finished jobs are settled between polls (and heartbeats are checked between frames).
        return 0.05

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
        self.lanes.close()

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
        self.generation += 1  # the jobs in hand finish, but their deliveries come back on the next channel
        self.acks.forget()  # they belonged to the lost channel, whose messages are redelivered
        self.last_activity = time.monotonic()  # reconnecting is not being idle
        self.failures += 1
        if isinstance(error, ConsumerCancelled):
            # Not a broker failure: the queue is gone (Pulse deletes one past its limit). Declaring it
            # again, on the next connection, subscribes again.
            self.queue_lost(self.cancelled_queue(error), "cancelled")
            self.sleep(1)
            return
        if isinstance(error, AccessRefused):
            delay = RECONNECT_BACKOFF[min(self.failures, len(RECONNECT_BACKOFF)) - 1]
            log.error("broker %s refused the credentials of %s (%s); retrying in %ds", self.broker.safe_url,
                      self.broker.user, printable(error, 200), delay)
        elif isinstance(error, PreconditionFailed):
            delay = RECONNECT_BACKOFF[-1]
            log.error("broker %s refused to declare the worker's exchanges or queues as configured (%s): one "
                      "exists with other arguments the worker could not re-make; retrying in %ds",
                      self.broker.safe_url, printable(error, 300), delay)
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

    def cancelled_queue(self, error):
        """The name of the queue whose consumer ``error`` (the broker's basic.cancel) names."""
        tag = error.reply_text
        for consumer in self.consumers:
            for queue, consumer_tag in getattr(consumer, "_active_tags", {}).items():
                if consumer_tag == tag:
                    return queue
        return f"the queue of consumer {tag}"

    def queue_lost(self, name, how):
        """A queue deleted behind the worker's back took its messages with it: count it, and backfill."""
        source = next((s.name for s in self.sources if topology.queue_name(self.broker, s) == name), "unknown")
        metrics.QUEUE_LOST.labels(source, how).inc()
        if how == "cancelled":
            self.cancelled.add(name)
        backfill = self.housekeeping.backfills
        log.error("queue %s was deleted behind the worker's back (%s; Pulse deletes a queue past its size limit): "
                  "its messages are lost; declaring it again%s", name,
                  "the broker cancelled its consumer" if how == "cancelled" else "missing when declared",
                  " and backfilling every repository now" if backfill else "")
        self.housekeeping.backfill_now()

    def on_queue_missing(self, source, name):
        """``topology.declare`` made ``name`` anew: lost, unless its cancelled consumer said so already."""
        if name in self.cancelled:
            self.cancelled.discard(name)
            return
        self.queue_lost(name, "missing")

    def on_connection_error(self, exc, interval):
        log.warning("broker %s unreachable (%s); retrying in %.0fs", self.broker.safe_url, printable(exc, 200),
                    interval)

    def get_consumers(self, Consumer, channel):
        # py-amqp hands out deliveries while it waits for the broker to confirm each consumer, before
        # on_consume_ready: whatever a delivery needs is made ready here.
        prefetch = 1 if time.monotonic() < self.one_at_a_time_until else self.broker.prefetch
        self.generation += 1
        self.acks.new_channel()
        self.acks.limit = prefetch // 2
        if self.broker.embedded:
            self.amqp, self.settler.retry_producer = None, Producer(channel)
        else:
            # Retries are published on a connection of their own, which consumes nothing: waiting for a
            # publisher confirm there can never read, let alone dispatch, a delivery of this connection
            # (a second channel of the same connection could: py-amqp reads every channel's frames).
            self.amqp = channel.connection
            self.settler.publishing_connection(self.connection)
        consumed = topology.available(channel.connection, self.broker, self.sources)
        queues = topology.declare(channel, self.broker, consumed, on_lost=self.on_queue_missing)
        self.cancelled.clear()  # declared again, whether missing or already made again by another worker
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
        self.skip_summary.flush()
        self.settler.close()

    def on_decode_error(self, message, exc):
        """kombu could not make a Message of a delivery: a dead letter, never a silent ack."""
        outcome = Outcome(Status.DEAD, f"the delivery could not be decoded: {type(exc).__name__}: {exc}")
        delivery = self.delivery(message)
        self.acks.delivered(message)
        self.settler.settle(message, None, delivery, policy.attempt(delivery.headers, time.time()), outcome)

    def on_iteration(self):
        self.settle_finished_jobs()
        self.housekeeping.tick()
        self.skip_summary.flush_if_due()
        if self.one_at_a_time_until and time.monotonic() >= self.one_at_a_time_until:
            self.one_at_a_time_until = 0.0
            for consumer in self.consumers:
                consumer.qos(prefetch_count=self.broker.prefetch)
            self.acks.limit = self.broker.prefetch // 2
        idle = time.monotonic() - self.last_activity
        if self.lanes.in_flight:
            idle = 0.0  # work in hand is not idleness
        if idle >= DEFERRED_ACK_DELAY:
            self.acks.flush()
        if self.idle_exit is not None and idle >= self.idle_exit:
            log.info("queues idle for %.0fs, stopping", idle)
            self.should_stop = True

    def stop(self, *_signal_args):
        """Finish the messages in hand, then leave (used as the SIGTERM/SIGINT handler)."""
        self.should_stop = True

    def sleep(self, seconds):
        """Wait, but not past a stop."""
        deadline = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))

    # --- one message --------------------------------------------------------------

    def on_message(self, source, message):
        started = time.monotonic()
        self.acks.delivered(message)
        if self.stop_requested:
            return  # not taken: it goes back to the queue when the connection closes
        if source.skips_unread is not None and self.skip_unread(source, message, started):
            return
        delivery = self.delivery(message)
        attempt = policy.attempt(delivery.headers, time.time())
        refused = policy.refusal(delivery, self.broker.delivery_limit)
        if refused is not None:
            self.finish(source, message, delivery, attempt, Outcome(Status.DEAD, refused), started)
            return
        try:
            parsed = source.parse(delivery)
        except PermanentError as error:
            self.finish(source, message, delivery, attempt, Outcome(Status.DEAD, str(error)), started)
            return
        try:
            lane = source.lane(parsed)
        except DatabaseError:
            # The known repositories could not be read (the database is away): handled here, where the
            # handler meets the same error and it becomes a retry with back-off, like any other.
            close_old_connections()
            lane = None
        if lane is None:  # settled without upstream (most of what arrives): no thread needed
            self.finish(source, message, delivery, attempt, self.outcome(source, parsed, delivery, attempt),
                        started)
        elif not lane.startswith(ORDER_MATTERS) and self.lanes.full(lane):
            busy = Outcome(Status.RETRY, f"{parsed.subject[:200]} is busy with earlier messages; not fetched now",
                           kind=parsed.kind, subject=parsed.subject, counted=False, soon=True)
            self.finish(source, message, delivery, attempt, busy, started)
        else:
            token = (self.generation, source, message, delivery, attempt, started, parsed)
            self.lanes.submit(lane, token, functools.partial(self.outcome, source, parsed, delivery, attempt))

    def settle_finished_jobs(self):
        """Settle, on this thread, every job the lanes finished since the last look."""
        for token, outcome, error in self.lanes.collect():
            generation, source, message, delivery, attempt, started, parsed = token
            if generation != self.generation:
                continue  # its channel is gone: the broker delivers it again (handling is idempotent)
            if error is not None:
                outcome = Outcome(Status.RETRY, f"unexpected error: {type(error).__name__}: {error}",
                                  kind=parsed.kind, subject=parsed.subject)
            self.finish(source, message, delivery, attempt, outcome, started)

    def skip_unread(self, source, message, started):
        """Skip a delivery for a repository this worker does not track, known by its routing key alone
        (no body decoded: a malformed one is skipped too, as nothing of ours is at stake), its line
        DEBUG and summed up once a minute (``SkipSummary``). Returns False, touching nothing, when the
        delivery must be read (a retry copy, a repository we track or may add, a routing key refused
        with its reason, a database that cannot say)."""
        info = message.delivery_info
        routing_key = info.get("routing_key")
        if info.get("exchange") != source.exchange:
            return False
        try:
            if not source.skips_unread(routing_key):
                return False
        except DatabaseError:
            close_old_connections()
            return False  # read, where the database's absence becomes a retry with back-off
        self.acks.ack(message, defer=True)
        duration = self.counted(source.exchange, Status.SKIPPED, started)
        if log.isEnabledFor(logging.DEBUG):
            log_outcome(source.exchange, routing_key, Outcome(Status.SKIPPED, SKIPPED_UNREAD, subject=routing_key),
                        duration, level=logging.DEBUG)
        self.skip_summary.add()
        return True

    def counted(self, exchange, status, started):
        """A delivery settled: counted in the metrics and towards ``max_messages``."""
        self.handled += 1
        self.last_activity = time.monotonic()
        duration = self.last_activity - started
        metrics.record(exchange, status, duration)
        if self.max_messages is not None and self.handled >= self.max_messages:
            self.should_stop = True
        return duration

    def finish(self, source, message, delivery, attempt, outcome, started):
        """Settle one delivery (on this thread, the only one using the channel) and log its line."""
        try:
            with self.keepalive.busy(self.amqp):
                settled = self.settler.settle(message, source, delivery, attempt, outcome)
        except self.connection_lost:
            raise  # the broker returns the message; the run loop reconnects
        except Exception:
            # Settling itself failed in a way nobody foresaw: the message goes back, and the queue's
            # delivery limit bounds how often that can happen.
            log.exception("could not settle %s %s; returning it to the queue", delivery.exchange,
                          printable(delivery.routing_key, 200))
            self.acks.returned(message)
            message.requeue()
            return
        if settled is None:
            self.acks.returned(message)
        outcome = settled or outcome
        duration = self.counted(delivery.exchange, outcome.status, started)
        log_outcome(delivery.exchange, delivery.routing_key, outcome, duration,
                    str(outcome.status) if settled else "requeued")

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

    def outcome(self, source, parsed, delivery, attempt):
        """Handle ``parsed`` (on a lane's thread, or this one for what needs no upstream)."""
        return policy.final(
            run(source, parsed, delivery),
            retries=attempt.retries,
            first_attempt=attempt.first_attempt,
            now=time.time(),
            max_retries=self.broker.max_retries,
        )
