"""Scale-out: the same 1,000 pushes drained by 1, 2, then 3 ``consume-pulse`` processes on one queue.

20 repositories in the simulated hg.mozilla.org, 1,000 one-changeset pushes
spread over them, announced on the local RabbitMQ in hg.mozilla.org's
format. Each round starts from a fresh database and fresh clones holding
every repository's first push, publishes all announcements, starts N real
worker processes and times them until every push is stored. Prints pushes
per second for each N, the ratio of 2 workers to 1, and whether every
round left the same database contents (pushes and their changesets).

Usage: [DATABASE_URL=…] .venv/bin/python bench/scale_out.py [--pushes N] [--repositories N] [--workers 1,2,3]
"""

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from kombu import Connection

from common import report, scratch_database
from life.hg.ingest import ingest_pushes
from life.models import Push, Repository
from settings.pulse import user_of
from simulated import pulse
from simulated.broker import scratch_vhost
from simulated.harness import WorkerProcess, declare_queues
from simulated.hgmo import SimulatedHgmo


def contents():
    """What the workers stored: every push with its changesets, by natural keys."""
    links = Push.changesets.through.objects.values_list("push__repository__name", "push__push_id",
                                                         "changeset__revision")
    return sorted(links)


def drain(url, names, hgmo, announcements, workers, clones, log_dir):
    """One round: returns (seconds until every push was stored, the contents stored)."""
    shutil.rmtree(clones, ignore_errors=True)
    settings.REPOSITORY_BASE = clones
    for name in names:
        ingest_pushes(Repository.objects.create(name=name, url=hgmo.repo_url(name)), 1)
    declare_queues()
    with Connection(url) as conn:
        for name, push_id in announcements:
            pulse.publish_hgpush(conn, name, pulse.changegroup(name, hgmo.repo_url(name), [push_id]))
    expected = len(names) + len(announcements)
    connection.close()  # the workers must not wait for this process's transaction
    started = time.perf_counter()
    processes = [WorkerProcess("--idle-exit", "5", log_path=log_dir / f"{workers}-{n}.log") for n in range(workers)]
    while Push.objects.count() < expected:
        if all(process.process.poll() is not None for process in processes):
            raise RuntimeError(f"the workers stopped with {Push.objects.count()} of {expected} pushes stored")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    for process in processes:
        assert process.wait(timeout=120) == 0, process.output()[-2000:]
    return seconds, contents()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=20)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]
    names = [f"l10n-central/s{i:02d}" for i in range(args.repositories)]
    logging.disable(logging.INFO)

    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        SimulatedHgmo(Path(tmp) / "upstream") as hgmo,
        scratch_vhost("bench") as url,
    ):
        settings.PULSE_URL, settings.PULSE_USER = url, user_of(url)
        os.environ["PULSE_URL"] = url  # for the worker processes
        for name in names:
            hgmo.create_repo(name)
            hgmo.commit_and_push(name, {"README": name.encode()})
        announcements = []
        for i in range(args.pushes):
            name = names[i % len(names)]
            _, push_id = hgmo.commit_and_push(name, {f"strings/{i}.ftl": f"key{i} = {i}\n".encode()})
            announcements.append((name, push_id))

        rates, stored = {}, []
        for workers in counts:
            with scratch_database() as vendor:
                seconds, round_contents = drain(url, names, hgmo, announcements, workers, Path(tmp) / "clones",
                                                Path(tmp))
            rates[workers] = args.pushes / seconds
            stored.append(round_contents)
            print(f"# {workers} worker(s): {seconds:.1f}s, {rates[workers]:.2f} pushes/s")

    figures = {"database": vendor, "pushes": args.pushes, "repositories": args.repositories, "cores": os.cpu_count()}
    figures.update({f"pushes_per_second_{workers}_workers": rate for workers, rate in rates.items()})
    figures["same_database_contents"] = all(round_contents == stored[0] for round_contents in stored)
    if 1 in rates and 2 in rates:
        figures["ratio"] = rates[2] / rates[1]
    report(figures)


if __name__ == "__main__":
    main()
