"""Prometheus metrics of the worker, served on METRICS_PORT (off when unset or 0).

Pulse deletes a queue that grows past its limit; these make lag and stalls
visible before that: message rates by outcome, processing time, retries,
dead letters, hg and git time, and when the last message succeeded.
"""

import functools

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from .dispatch import Status

MESSAGES = Counter("l10n_worker_messages", "Messages handled", ["exchange", "outcome"])
PROCESSING_SECONDS = Histogram(
    "l10n_worker_processing_seconds", "Time from delivery to settled", ["exchange"],
    buckets=(0.005, 0.05, 0.25, 1, 5, 30, 120, 600),
)
RETRIES = Counter("l10n_worker_retries", "Messages sent to a delay queue after a transient failure", ["exchange"])
DEAD_LETTERS = Counter("l10n_worker_dead_letters", "Messages stored as dead letters", ["exchange"])
VCS_SECONDS = Histogram("l10n_worker_vcs_seconds", "Time spent in hg or git cloning, pulling or fetching", ["kind"],
                        buckets=(0.1, 0.5, 1, 5, 30, 120, 900))
QUEUE_LOST = Counter(
    "l10n_worker_queue_lost", "A source's queue deleted behind the worker's back (Pulse deletes one past its limit): "
    "its consumer cancelled by the broker, or the queue found missing when declared", ["source", "how"],
)
BROKER_FAILURES = Counter("l10n_worker_broker_failures", "Connections to the broker lost, refused or abandoned")
LAST_SUCCESS = Gauge("l10n_worker_last_success_timestamp_seconds", "When a message was last stored or skipped")
LAST_ALIVE = Gauge("l10n_worker_last_alive_timestamp_seconds", "When the consumer loop last ran")


@functools.lru_cache(maxsize=256)
def _per_message(exchange, outcome):
    # Looking labelled metrics up costs more than updating them, and this runs for every message.
    return MESSAGES.labels(exchange, str(outcome)), PROCESSING_SECONDS.labels(exchange)


def record(exchange, outcome, seconds):
    messages, processing_seconds = _per_message(exchange, outcome)
    messages.inc()
    processing_seconds.observe(seconds)
    if outcome is Status.RETRY:
        RETRIES.labels(exchange).inc()
    elif outcome is Status.DEAD:
        DEAD_LETTERS.labels(exchange).inc()
    else:
        LAST_SUCCESS.set_to_current_time()


def serve(port):
    """Start the /metrics endpoint in a background thread."""
    if port:
        REGISTRY.register(SyncStateCollector())
        start_http_server(port, addr="0.0.0.0")


class SyncStateCollector:
    """Per repository, read at scrape time: seconds since its last successful sync, and failures in a row."""

    def collect(self):
        from django.db import connection
        from django.utils import timezone
        from prometheus_client.core import GaugeMetricFamily

        from life.models import SyncState

        since = GaugeMetricFamily("l10n_repository_seconds_since_sync", "Seconds since the repository was last "
                                  "brought up to date", labels=["repository"])
        failures = GaugeMetricFamily("l10n_repository_sync_failures", "Consecutive failed ingestions",
                                     labels=["repository"])
        now = timezone.now()
        try:
            for name, synced, failed in SyncState.objects.values_list("repository__name", "last_synced", "failures"):
                if synced is not None:
                    since.add_metric([name], (now - synced).total_seconds())
                failures.add_metric([name], failed)
        finally:
            connection.close()  # the scrape thread must not keep a connection open
        yield since
        yield failures
