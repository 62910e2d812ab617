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
from dataclasses import dataclass

from django.db import DatabaseError
from kombu import Exchange, Queue, binding

from .config import HGPUSH_EXCHANGE, TASK_COMPLETED_EXCHANGE
from .models import QueueBinding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One of the worker's queues: what feeds it, under which keys."""

    name: str  # the queue suffix, also the key of its retry routes
    exchange: str
    routing_keys: tuple[str, ...]


def sources(config):
    tasks = Source("tasks", TASK_COMPLETED_EXCHANGE, tuple(config.task_routes))
    return (Source("hgmo", HGPUSH_EXCHANGE, ("#",)), tasks) if config.consume_hgmo else (tasks,)


def source_for_exchange(config, exchange):
    return next((s for s in sources(config) if s.exchange == exchange), None)


def own_exchange(config):
    return Exchange(config.own_exchange, type="direct", durable=True)


def upstream_exchange(config, name):
    return Exchange(name, type="topic", durable=True, passive=not (config.declare_exchanges or config.embedded))


def retry_key(source, delay):
    return f"retry.{source.name}.{delay}s"


def redeliver_key(source):
    return f"redeliver.{source.name}"


def _queue_arguments(config):
    return {"x-expires": config.queue_expires_seconds * 1000}


def main_queue(config, source):
    return Queue(
        config.queue_name(source.name),
        bindings=[binding(upstream_exchange(config, source.exchange), routing_key=key) for key in source.routing_keys]
        + [binding(own_exchange(config), routing_key=redeliver_key(source))],
        durable=True,
        auto_delete=False,
        queue_arguments=_queue_arguments(config),
    )


def retry_queues(config, source):
    """One delay queue per back-off step; each returns its messages to the source's queue."""
    return [
        Queue(
            config.queue_name(f"{source.name}/retry-{delay}s"),
            exchange=own_exchange(config),
            routing_key=retry_key(source, delay),
            durable=True,
            auto_delete=False,
            queue_arguments={
                **_queue_arguments(config),
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": config.own_exchange,
                "x-dead-letter-routing-key": redeliver_key(source),
            },
        )
        for delay in config.retry_delays
    ]


def declare(channel, config):
    """Declare everything, drop bindings no longer configured; returns the queues to consume."""
    queues = [main_queue(config, source) for source in sources(config)]
    own_exchange(config)(channel).declare()
    for queue in queues:
        queue(channel).declare()
    for source in sources(config):
        for queue in retry_queues(config, source):
            queue(channel).declare()
    _prune_bindings(channel, config, queues)
    return queues


def _prune_bindings(channel, config, queues):
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
