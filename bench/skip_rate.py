"""Drain rate of push notifications for unknown repositories, next to a bare consumer.

hg.mozilla.org announces every push of every repository; almost all of them
are for repositories this worker does not track, so skipping must be cheap.
Publishes N changegroup messages for unknown repositories to the local
RabbitMQ twice: once drained by a bare kombu consumer that only acks (the
baseline), once by the worker (parse, one database look-up, log line, ack).
Both use the same prefetch.

Usage: [DATABASE_URL=…] .venv/bin/python bench/skip_rate.py [--messages N]
"""

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from common import report, scratch_database
from kombu import Connection, Consumer, Producer

from simulated import pulse
from simulated.broker import scratch_vhost
from tests.worker_support import run_worker
from worker import topology
from worker.config import load_config


def publish_all(url, bodies):
    with Connection(url) as conn:
        producer = Producer(conn.default_channel)
        exchange = topology.upstream_exchange(load_config({"PULSE_URL": url}), pulse.HGPUSH_EXCHANGE)
        for name, body in bodies:
            producer.publish(body, exchange=exchange, routing_key=name, content_type="application/json",
                             content_encoding="utf-8", declare=[])


def bare_drain(url, config, count):
    """The unavoidable work: receive and ack, nothing else."""
    seen = 0

    def ack(message):
        nonlocal seen
        message.ack()
        seen += 1

    with Connection(url) as conn:
        queue = topology.main_queue(config, topology.sources(config)[0])
        with Consumer(conn.default_channel, queues=[queue], on_message=ack, prefetch_count=config.prefetch):
            started = time.perf_counter()
            while seen < count:
                conn.drain_events(timeout=10)
            return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    bodies = [
        (name, json.dumps(pulse.changegroup(name, f"https://hg.mozilla.org/{name}/", [i + 1])).encode())
        for i, name in enumerate(f"try-like/repo{i % 500}" for i in range(args.messages))
    ]
    with tempfile.TemporaryDirectory() as tmp, scratch_vhost("bench") as url, scratch_database() as vendor:
        # The worker logs a line per message, as in production; to a file here.
        logging.getLogger().handlers[:] = [logging.FileHandler(Path(tmp) / "worker.log")]
        os.environ.update({"PULSE_URL": url, "PULSE_PREFETCH": "20"})
        config = load_config(os.environ)
        with Connection(url) as conn:
            topology.declare(conn.default_channel, config)

        publish_all(url, bodies)
        bare_seconds = bare_drain(url, config, args.messages)

        publish_all(url, bodies)
        started = time.perf_counter()
        worker = run_worker(max_messages=args.messages)
        worker_seconds = time.perf_counter() - started
        assert worker.handled == args.messages

    bare_rate, worker_rate = args.messages / bare_seconds, args.messages / worker_seconds
    report(
        {
            "database": vendor,
            "messages": args.messages,
            "bare_seconds": bare_seconds,
            "worker_seconds": worker_seconds,
            "bare_messages_per_second": bare_rate,
            "worker_messages_per_second": worker_rate,
            "ratio": worker_rate / bare_rate,
        }
    )


if __name__ == "__main__":
    main()
