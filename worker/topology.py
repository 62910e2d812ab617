"""The worker's exchanges, queues and bindings on the broker.

Upstream exchanges belong to hg.mozilla.org, Taskcluster and GitHub: they
are only checked (passive declare) unless the configuration says this is a
local broker. The worker owns one exchange, ``exchange/<user>/worker``, and
per source:

- ``queue/<user>/worker/<source>``: a durable quorum queue bound to the
  upstream exchange. Its delivery limit is the broker's poison-message
  handling: a delivery that is returned unsettled PULSE_DELIVERY_LIMIT times
  (one the AMQP client cannot even decode, or one the worker keeps dying
  on) is dead-lettered into the source's parking queue instead of being
  redelivered forever.
- ``…/<source>/retry-<N>s``: delay queues; a failed message waits there (a
  TTL), then is dead-lettered back into the source's queue.
- ``…/<source>/parked``: what the broker gave up delivering, kept for an
  operator (the broker's management UI or ``rabbitmqadmin`` read it).

Queues expire when unused for PULSE_QUEUE_EXPIRES rather than being deleted
when the worker disconnects. Queues of earlier versions (classic queues
named ``queue/<user>/<source>``) are drained into the new ones and deleted.

Pulse (PulseGuardian) deletes a queue that grows past its limit (8,000
messages), whatever it holds. Every queue here holds at most
PULSE_QUEUE_MAX_LENGTH; past that the oldest message gives way (drop-head)
and is dead-lettered where the queue dead-letters: a source's queue into its
parking queue, a delay queue back into the source's queue (early, not lost);
the parking queue, last in line, drops its oldest. A queue deployed with other
arguments is re-made with its messages (``remaking``). A source's queue that
had bindings recorded but is missing when declared was deleted (or expired)
behind the worker's back: ``declare`` says so (``on_lost``), and the worker
backfills.
"""

import logging

from amqp.exceptions import NotFound
from django.db import DatabaseError
from kombu import Exchange, Queue, binding

from . import remaking
from .models import QueueBinding
from .policy import ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER

log = logging.getLogger(__name__)


def own_exchange(broker):
    return Exchange(broker.own_exchange, type="direct", durable=True)


def upstream_exchange(broker, name):
    return Exchange(name, type="topic", durable=True, passive=not (broker.declare_exchanges or broker.embedded))


def queue_name(broker, source, suffix=""):
    return broker.queue_name(f"worker/{source.queue}{suffix}")


def legacy_queue_name(broker, source):
    return broker.queue_name(source.queue)


def retry_key(source, delay):
    return f"retry.{source.queue}.{delay}s"


def redeliver_key(source):
    return f"redeliver.{source.queue}"


def parked_key(source):
    return f"parked.{source.queue}"


def _expiring(broker):
    """Arguments of every queue the worker owns: unused for long, it goes; it never grows past Pulse's limit."""
    return {
        "x-expires": broker.queue_expires_seconds * 1000,
        "x-max-length": broker.max_length,
        "x-overflow": "drop-head",
    }


def main_queue(broker, source):
    arguments = _expiring(broker)
    if not broker.embedded:  # kombu's in-process broker has no quorum queues
        arguments.update({
            "x-queue-type": "quorum",
            "x-delivery-limit": broker.delivery_limit,
            "x-dead-letter-exchange": broker.own_exchange,
            "x-dead-letter-routing-key": parked_key(source),
        })
    return Queue(
        queue_name(broker, source),
        bindings=[binding(upstream_exchange(broker, source.exchange), routing_key=key) for key in source.routing_keys]
        + [binding(own_exchange(broker), routing_key=redeliver_key(source))],
        durable=True,
        auto_delete=False,
        queue_arguments=arguments,
    )


def retry_queues(broker, source):
    """One delay queue per back-off step; each returns its messages to the source's queue."""
    return [
        Queue(
            queue_name(broker, source, f"/retry-{delay}s"),
            exchange=own_exchange(broker),
            routing_key=retry_key(source, delay),
            durable=True,
            auto_delete=False,
            queue_arguments={
                **_expiring(broker),
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": broker.own_exchange,
                "x-dead-letter-routing-key": redeliver_key(source),
            },
        )
        for delay in broker.retry_delays
    ]


def parking_queue(broker, source):
    return Queue(
        queue_name(broker, source, "/parked"),
        exchange=own_exchange(broker),
        routing_key=parked_key(source),
        durable=True,
        auto_delete=False,
        queue_arguments=_expiring(broker),
    )


def available(connection, broker, sources):
    """Those of ``sources`` whose upstream exchange exists on the broker (all, where the worker declares them).

    A missing exchange (one the deployment does not publish) disables its
    source alone, with one error line; the others are consumed.
    """
    if broker.declare_exchanges or broker.embedded:
        return list(sources)
    found = []
    for source in sources:
        channel = connection.channel()
        try:
            channel.exchange_declare(source.exchange, "topic", passive=True)
        except NotFound:
            log.error("upstream exchange %s does not exist on %s: source %s is not consumed", source.exchange,
                      broker.safe_url, source.name)
            continue  # the broker closed that channel to say so
        channel.close()
        found.append(source)
    return found


def declare(channel, broker, sources, on_lost=None):
    """Declare everything ``sources`` need, drop bindings no longer configured; returns their queues.

    Queues are declared on channels of their own (one that exists with other arguments closes its
    channel, and is re-made). ``on_lost(source, name)`` is told of each source queue that had to be
    made although the worker had declared it before.
    """
    queues = [main_queue(broker, source) for source in sources]
    own_exchange(broker)(channel).declare()
    for source, queue in zip(sources, queues, strict=True):
        owned = (queue, *retry_queues(broker, source), parking_queue(broker, source))
        if broker.embedded:  # kombu's in-process broker, new with every process: nothing to keep or lose
            for each in owned:
                each(channel).declare()
            continue
        existed = remaking.declare(channel.connection, broker, queue, redeliver_key(source))
        if not existed and on_lost is not None and _declared_before(queue.name):
            on_lost(source, queue.name)
        for extra in owned[1:]:
            remaking.declare(channel.connection, broker, extra, extra.routing_key)
    _prune_bindings(channel, queues)
    return queues


def _declared_before(name):
    """Whether the worker bound ``name`` before (it records the bindings it makes)."""
    try:
        return QueueBinding.objects.filter(queue=name).exists()
    except DatabaseError as error:
        log.warning("could not check whether %s is new (database unavailable: %s)", name, error)
        return False


def parked_messages(channel, broker, source):
    return channel.queue_declare(queue_name(broker, source, "/parked"), passive=True).message_count


def drain_legacy_queue(connection, broker, source):
    """Move what a classic queue of an earlier version holds into the source's queue, then delete it.

    Returns how many messages moved (None when there is no such queue).
    """
    name = legacy_queue_name(broker, source)
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
    except Exception:  # noqa: BLE001 - the broker closes the channel to say the queue does not exist
        return None
    # No new copies while it drains, and none of what it drains may come back to it.
    for key in {*source.routing_keys, "#"}:
        channel.queue_unbind(name, source.exchange, key)
    channel.queue_unbind(name, broker.own_exchange, redeliver_key(source))
    moved = 0
    while (message := channel.basic_get(name)) is not None:
        # It reaches the new queue through our own exchange: say where it first came from, as a retry does.
        headers = message.properties.setdefault("application_headers", {})
        headers.setdefault(ORIGINAL_EXCHANGE_HEADER, message.delivery_info["exchange"])
        headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, message.delivery_info["routing_key"])
        channel.basic_publish(message, exchange=broker.own_exchange, routing_key=redeliver_key(source))
        channel.basic_ack(message.delivery_tag)
        moved += 1
    channel.queue_delete(name)
    channel.close()
    log.info("moved %d messages from %s (an earlier version's queue) and deleted it", moved, name)
    return moved


def _prune_bindings(channel, queues):
    try:
        _prune_recorded_bindings(channel, queues)
    except DatabaseError as error:
        # Best effort: consuming matters more; the next (re)connection tries again.
        log.warning("could not check for stale bindings (database unavailable: %s)", error)


def _prune_recorded_bindings(channel, queues):
    wanted = {(q.name, b.exchange.name, b.routing_key) for q in queues for b in q.bindings}
    for stale in QueueBinding.objects.filter(queue__in=[q.name for q in queues]):
        key = (stale.queue, stale.exchange, stale.routing_key)
        if key not in wanted:
            channel.queue_unbind(stale.queue, stale.exchange, stale.routing_key)
            log.info("removed binding no longer configured: %s <- %s [%s]", *key)
            stale.delete()
    QueueBinding.objects.bulk_create(
        [QueueBinding(queue=q, exchange=e, routing_key=k) for q, e, k in wanted], ignore_conflicts=True
    )
