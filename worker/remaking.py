"""Declaring a worker queue whose arguments changed, without losing what it holds.

RabbitMQ refuses to declare an existing queue with other arguments
(PRECONDITION_FAILED), and a queue's arguments cannot be changed in place:
queues deployed before PULSE_QUEUE_MAX_LENGTH (or with another
PULSE_DELIVERY_LIMIT or PULSE_QUEUE_EXPIRES) must be made again. Re-making
one, under a lock only one worker process holds at a time (an exclusive
queue: the broker drops it with the connection that holds it, so a killed
worker never leaves it behind):

1. a holding queue ``<queue>/held`` takes the queue's bindings, then the
   queue gives them up: what is published meanwhile waits in the holding
   queue, never in no queue;
2. the queue's messages move to the holding queue, a batch per AMQP
   transaction (the publishes and the acks of a batch commit together);
3. the old queue is deleted (it is empty and bound to nothing) and declared
   as configured, with its bindings;
4. the holding queue gives up its bindings, its messages move back the same
   way (through the worker's exchange, under the key the queue is bound
   with), and it is deleted.

A worker killed at any step leaves the messages in the old queue or the
holding queue (an uncommitted batch stays where it was); the next start
finds the holding queue and finishes the job. A message published while the
bindings change hands (a few milliseconds) may reach both queues: handling
is idempotent, so a copy costs a skip. Messages are kept as they were (body,
properties, headers); one that came from an upstream exchange says so in the
headers a retry copy carries, since moving it twice makes the worker's
exchange its last one. A queue holding more than the new bound keeps only
that many: the oldest give way the usual way (dead-lettered where the queue
dead-letters; see ``topology``).
"""

import contextlib
import functools
import logging
import time

from amqp.exceptions import NotFound, PreconditionFailed, ResourceLocked

from .policy import ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER

log = logging.getLogger("worker")

BATCH = 500  # messages per transaction: one round trip each
LOCK_WAIT = 300  # seconds to wait for another worker's re-making before giving up (the worker retries)


def holding_name(name):
    return f"{name}/held"


def declare(connection, broker, queue, home_key):
    """Declare the kombu ``queue`` on the py-amqp ``connection`` as configured, re-making it if it exists
    with other arguments (or a re-making of it was left unfinished). ``home_key`` is a routing key that
    reaches this queue alone on the worker's exchange.

    Returns whether the queue existed before (a re-making in progress counts: its messages were kept).
    """
    existed = _exists(connection, queue.name)
    held = _exists(connection, holding_name(queue.name))
    if not held and _declared(connection, queue):
        return existed
    with lock(connection, broker):
        remake(connection, broker, queue, home_key)
    return True


def remake(connection, broker, queue, home_key):
    """Make ``queue`` as configured, keeping its messages; returns how many moved back into it. Safe to
    run again after any interruption; the caller holds the lock."""
    holding = holding_name(queue.name)
    if not _exists(connection, holding) and _declared(connection, queue):
        return 0  # another worker finished it while this one waited for the lock
    started = time.monotonic()
    channel = connection.channel()
    channel.queue_declare(holding, durable=True, auto_delete=False)
    moved_out = 0
    if not _declared(connection, queue):
        log.warning("re-making %s: it exists with other arguments than the configuration's (max length %d)",
                    queue.name, broker.max_length)
        for exchange, key in _bindings(queue):
            channel.queue_bind(holding, exchange, key)
        for exchange, key in _bindings(queue):
            channel.queue_unbind(queue.name, exchange, key)
        moved_out = _move(connection, broker, queue.name, "", holding)
        channel.queue_delete(queue.name)  # empty and unbound (if-empty: quorum queues refuse it)
        if not _declared(connection, queue):
            raise PreconditionFailed(f"{queue.name} cannot be declared as configured after re-making it")
    for exchange, key in _bindings(queue):
        channel.queue_unbind(holding, exchange, key)
    moved_back = _move(connection, broker, holding, broker.own_exchange, home_key)
    channel.queue_delete(holding)
    channel.close()
    log.warning("re-made %s in %.1fs: %d messages moved out, %d moved back", queue.name,
                time.monotonic() - started, moved_out, moved_back)
    return moved_back


@contextlib.contextmanager
def lock(connection, broker, wait=LOCK_WAIT):
    """Held by one connection of one worker process at a time: an exclusive queue."""
    name = broker.queue_name("worker/remaking-lock")
    deadline = time.monotonic() + wait
    while True:
        channel = connection.channel()
        try:
            channel.queue_declare(name, exclusive=True, auto_delete=True)
            break
        except ResourceLocked:
            channel.close()  # py-amqp reopened the channel the broker closed to say so
            if time.monotonic() >= deadline:
                raise
            log.info("another worker is re-making queues; waiting for it")
            time.sleep(1)
    try:
        yield
    finally:
        channel.queue_delete(name)
        channel.close()


def _move(connection, broker, source, exchange, routing_key):
    """Move every message of the queue ``source`` (bound to nothing) to ``exchange``/``routing_key``, a
    transaction per batch; returns how many moved.

    One basic.get a message: a round trip each, but the broker's "empty" is then the truth (a consumer's
    deliveries arrive in rounds, and a queue's message count leaves out what is delivered and unacked).
    """
    channel = connection.channel()
    channel.tx_select()
    # The worker's connection turns on publisher confirms for each channel's first publish, which a
    # transactional channel refuses: the class's own publish is the plain one (the commit confirms).
    publish = functools.partial(type(channel).basic_publish, channel)
    moved = 0
    while True:
        batch = 0
        while batch < BATCH and (message := channel.basic_get(source)) is not None:
            _keep_origin(message, broker)
            publish(message, exchange=exchange, routing_key=routing_key)
            last, batch = message.delivery_tag, batch + 1
        if not batch:
            break
        channel.basic_ack(last, multiple=True)
        channel.tx_commit()
        moved += batch
    channel.close()
    return moved


def _keep_origin(message, broker):
    """A message moved twice arrives from the worker's exchange: the headers a retry copy carries say where it
    first came from (the consumer trusts them on that exchange only)."""
    exchange = message.delivery_info.get("exchange")
    if exchange in ("", broker.own_exchange):
        return  # moved already (a re-making resumed), or ours: its headers say it, or it is what it seems
    headers = message.properties.setdefault("application_headers", {})
    headers.setdefault(ORIGINAL_EXCHANGE_HEADER, exchange)
    headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, message.delivery_info.get("routing_key"))


def _bindings(queue):
    if queue.bindings:
        return [(binding.exchange.name, binding.routing_key) for binding in queue.bindings]
    return [(queue.exchange.name, queue.routing_key)]


def _exists(connection, name):
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
    except NotFound:
        channel.close()  # py-amqp reopened the channel the broker closed to say so
        return False
    channel.close()
    return True


def _declared(connection, queue):
    """Declare ``queue`` (and its bindings) on a channel of its own; False if it exists with other arguments."""
    channel = connection.channel()
    try:
        queue(channel).declare()
    except PreconditionFailed:
        channel.close()  # py-amqp reopened the channel the broker closed to say so
        return False
    channel.close()
    return True
