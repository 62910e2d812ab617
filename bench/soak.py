"""Soak: consume-pulse (the real command, in its own process) over a long mixed stream.

The mixed stream of simulated/stream.py (new repositories, pushes, compare
tasks, duplicates, obsolescence markers, unknown types, malformed
messages), padded with pushes for repositories nobody tracks to N messages,
is published at a steady rate while the worker consumes it. Prints the
worker's resident memory at 10% and at 100% of the run, its throughput, and
the largest backlog (messages waiting in its queues) seen; Pulse warns at
2,000.

Usage: [DATABASE_URL=…] .venv/bin/python bench/soak.py [--messages N] [--rate PER_SECOND]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings
from kombu import Connection

from common import report, scratch_database
from settings.pulse import user_of
from simulated import stream
from simulated.broker import scratch_vhost
from simulated.harness import PROJECT, database_url
from simulated.hgmo import SimulatedHgmo
from simulated.taskcluster import SimulatedQueue
from worker import topology
from worker.config import brokers
from worker.consumer import connect
from worker.hgmo import KnownRepositories
from worker.sources import sources


def resident_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def publish_steadily(url, messages, rate, done):
    with Connection(url) as conn:
        started = time.monotonic()
        for index in range(0, len(messages), 50):
            stream.publish(conn, messages[index : index + 50])
            ahead = started + (index + 50) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    done.set()


def backlog(conn, broker):
    channel = conn.default_channel
    return sum(channel.queue_declare(broker.queue_name(f"worker/{s}"), passive=True).message_count
               for s in ("hgmo", "tasks"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=400.0, help="messages published per second")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        SimulatedHgmo(Path(tmp) / "upstream") as hgmo,
        SimulatedQueue() as queue,
        scratch_vhost("soak") as url,
        scratch_database() as vendor,
    ):
        settings.REPOSITORY_BASE = Path(tmp) / "clones"
        base = stream.build(hgmo, queue, locales=10, rounds=20, unknown=0)
        messages = stream.pad(base, args.messages)
        stream.seed_database(hgmo)
        env = dict(os.environ, PULSE_URL=url, DATABASE_URL=database_url(), REPOSITORY_BASE=str(settings.REPOSITORY_BASE),
                   TASKCLUSTER_ROOT_URL=queue.root_url, PULSE_RETRY_DELAYS="1", BACKFILL_INTERVAL="0",
                   HEARTBEAT_FILE=str(Path(tmp) / "heartbeat"))
        settings.PULSE_URL, settings.PULSE_USER = url, user_of(url)
        broker = brokers(settings)[0]
        with connect(broker) as conn:
            topology.declare(conn.default_channel, broker, sources(broker, KnownRepositories(ttl=0)))
        log_path = Path(tmp) / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen([sys.executable, str(PROJECT / "manage.py"), "consume-pulse", "--idle-exit", "15"],
                                      cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
        published = threading.Event()
        threading.Thread(target=publish_steadily, args=(url, messages, args.rate, published), daemon=True).start()

        handled, offset, largest_backlog, rss_10, rss_100 = 0, 0, 0, None, None
        started = time.monotonic()
        with Connection(url) as conn:
            while worker.poll() is None:
                time.sleep(0.5)
                with open(log_path, "rb") as log:
                    log.seek(offset)
                    chunk = log.read()
                offset += len(chunk)
                handled += chunk.count(b" outcome=")
                largest_backlog = max(largest_backlog, backlog(conn, broker))
                if rss_10 is None and handled >= len(messages) // 10:
                    rss_10 = resident_kib(worker.pid)
                if published.is_set() and handled >= len(messages) and rss_100 is None:
                    rss_100 = resident_kib(worker.pid)
                    finished = time.monotonic()
        assert worker.returncode == 0, log_path.read_text()[-3000:]

    report(
        {
            "database": vendor,
            "messages": len(messages),
            "outcomes_logged": handled,
            "seconds": finished - started,
            "messages_per_second": len(messages) / (finished - started),
            "publish_rate": args.rate,
            "rss_kib_at_10_percent": rss_10,
            "rss_kib_at_100_percent": rss_100,
            "rss_growth_percent": (rss_100 - rss_10) * 100 / rss_10,
            "largest_backlog": largest_backlog,
        }
    )


if __name__ == "__main__":
    main()
