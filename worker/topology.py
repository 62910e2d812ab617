"""The worker's exchanges, queues and bindings on the broker.

Upstream exchanges belong to hg.mozilla.org and Taskcluster: they are only
checked (passive declare) unless the configuration says this is a local
broker. The worker owns its queues, ``queue/<user>/hgmo`` and
``queue/<user>/tasks``, and one exchange, ``exchange/<user>/worker``, through
which failed messages wait in delay queues (a TTL, then dead-lettered back
into the queue they came from). Queues are durable and expire when unused
for a while rather than being deleted when the worker disconnects.
"""

import logging

from django.db import DatabaseError
from kombu import Exchange, Queue, binding

from .models import QueueBinding

log = logging.getLogger(__name__)


def own_exchange(broker):
    return Exchange(broker.own_exchange, type="direct", durable=True)


def upstream_exchange(broker, name):
    return Exchange(name, type="topic", durable=True, passive=not (broker.declare_exchanges or broker.embedded))


def retry_key(source, delay):
    return f"retry.{source.queue}.{delay}s"


def redeliver_key(source):
    return f"redeliver.{source.queue}"


def _queue_arguments(broker):
    return {"x-expires": broker.queue_expires_seconds * 1000}


def main_queue(broker, source):
    return Queue(
        broker.queue_name(source.queue),
        bindings=[binding(upstream_exchange(broker, source.exchange), routing_key=key) for key in source.routing_keys]
        + [binding(own_exchange(broker), routing_key=redeliver_key(source))],
        durable=True,
        auto_delete=False,
        queue_arguments=_queue_arguments(broker),
    )


def retry_queues(broker, source):
    """One delay queue per back-off step; each returns its messages to the source's queue."""
    return [
        Queue(
            broker.queue_name(f"{source.queue}/retry-{delay}s"),
            exchange=own_exchange(broker),
            routing_key=retry_key(source, delay),
            durable=True,
            auto_delete=False,
            queue_arguments={
                **_queue_arguments(broker),
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": broker.own_exchange,
                "x-dead-letter-routing-key": redeliver_key(source),
            },
        )
        for delay in broker.retry_delays
    ]


def declare(channel, broker, sources):
    """Declare everything ``sources`` need, drop bindings no longer configured; returns their queues."""
    queues = [main_queue(broker, source) for source in sources]
    own_exchange(broker)(channel).declare()
    for queue in queues:
        queue(channel).declare()
    for source in sources:
        for queue in retry_queues(broker, source):
            queue(channel).declare()
    _prune_bindings(channel, broker, queues)
    return queues


def _prune_bindings(channel, broker, queues):
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
