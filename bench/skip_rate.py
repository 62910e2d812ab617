"""Drain rate of push notifications for unknown repositories, next to a bare consumer.

hg.mozilla.org announces every push of every repository; almost all of them
are for repositories this worker does not track, so skipping must be cheap.
Publishes N changegroup messages for unknown repositories to the local
RabbitMQ, drained by a bare kombu consumer that only acks each message (the
baseline), then again by the worker (the routing key checked against the
known repositories and forests, the body unread, metrics, the shared ack, a
summary log line a minute); both with the same prefetch. The pair is measured
--rounds times, alternating, because a shared machine's broker speed drifts;
the median of the per-round ratios is the figure.

Usage: [DATABASE_URL=…] .venv/bin/python bench/skip_rate.py [--messages N] [--rounds R]
"""

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from django.conf import settings
from kombu import Connection, Consumer, Producer

from common import report, scratch_database
from settings.pulse import user_of
from simulated import pulse
from simulated.broker import scratch_vhost
from simulated.harness import run_worker
from worker import topology
from worker.config import brokers
from worker.hgmo import KnownRepositories
from worker.sources import sources


def publish_all(url, bodies):
    with Connection(url) as conn:
        producer = Producer(conn.default_channel)
        exchange = topology.upstream_exchange(brokers(settings)[0], pulse.HGPUSH_EXCHANGE)
        for name, body in bodies:
            producer.publish(body, exchange=exchange, routing_key=name, content_type="application/json",
                             content_encoding="utf-8", declare=[])


def fill(url, broker, bodies):
    """The main queue holding exactly ``bodies``: what a stopped drain left prefetched is purged first."""
    with Connection(url) as conn:
        conn.default_channel.queue_purge(main_queue(broker).name)
    publish_all(url, bodies)


def main_queue(broker):
    return topology.main_queue(broker, sources(broker, KnownRepositories(ttl=0))[0])


def bare_drain(url, broker, count):
    """The unavoidable work: receive and ack, nothing else."""
    seen = 0

    def ack(message):
        nonlocal seen
        message.ack()
        seen += 1

    with Connection(url) as conn:
        with Consumer(conn.default_channel, queues=[main_queue(broker)], on_message=ack, prefetch_count=broker.prefetch):
            started = time.perf_counter()
            while seen < count:
                conn.drain_events(timeout=10)
            return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bodies = [
        (name, json.dumps(pulse.changegroup(name, f"https://hg.mozilla.org/{name}/", [i + 1])).encode())
        for i, name in enumerate(f"try-like/repo{i % 500}" for i in range(args.messages))
    ]
    with tempfile.TemporaryDirectory() as tmp, scratch_vhost("bench") as url, scratch_database() as vendor:
        # The worker logs a line per message, as in production; to a file here.
        logging.getLogger().handlers[:] = [logging.FileHandler(Path(tmp) / "worker.log")]
        settings.PULSE_URL, settings.PULSE_USER, settings.PULSE_PREFETCH = url, user_of(url), 20
        # Every message is published before the drain starts: the queue's bound (drop-head, for a
        # consumer that falls behind) must hold them all, or the oldest give way before being counted.
        # Twice as many: a quorum queue counts the last drain's acks it has not applied yet.
        settings.PULSE_QUEUE_MAX_LENGTH = max(settings.PULSE_QUEUE_MAX_LENGTH, 2 * args.messages)
        broker = brokers(settings)[0]
        with Connection(url) as conn:
            topology.declare(conn.default_channel, broker, sources(broker, KnownRepositories(ttl=0)))

        rounds = []
        for _ in range(args.rounds):
            fill(url, broker, bodies)
            bare_seconds = bare_drain(url, broker, args.messages)
            fill(url, broker, bodies)
            started = time.perf_counter()
            # A message lost on the way ends the run after a few idle seconds instead of hanging it.
            worker = run_worker(max_messages=args.messages, idle_exit=10)
            worker_seconds = time.perf_counter() - started
            assert worker.handled == args.messages, f"the worker saw {worker.handled} of {args.messages} messages"
            rounds.append((args.messages / bare_seconds, args.messages / worker_seconds))

    for number, (bare_rate, worker_rate) in enumerate(rounds, 1):
        print(f"round {number}: bare {bare_rate:.0f}/s, worker {worker_rate:.0f}/s, ratio {worker_rate / bare_rate:.2f}")
    report(
        {
            "database": vendor,
            "messages": args.messages,
            "rounds": args.rounds,
            "bare_messages_per_second": statistics.median(bare for bare, _ in rounds),
            "worker_messages_per_second": statistics.median(worker for _, worker in rounds),
            "ratio": statistics.median(worker / bare for bare, worker in rounds),
        }
    )


if __name__ == "__main__":
    main()
