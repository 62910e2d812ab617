"""End-to-end push ingestion through the worker, next to plain `hg pull`s of the same pushes.

20 repositories in the simulated hg.mozilla.org, already cloned and
imported; then 1,000 one-changeset pushes spread over them, announced on the
local RabbitMQ in hg.mozilla.org's format. Measured in the same run:

- baseline: one `hg pull -r NODE` per push into clones of the same
  repositories (the unavoidable work: fetching each push);
- worker: draining the 1,000 messages (json-pushes, pull, store, ack).

Usage: [DATABASE_URL=…] .venv/bin/python bench/push_rate.py [--pushes N] [--repositories N]
"""

import argparse
import subprocess
import time
from pathlib import Path

from kombu import Connection

from common import hg_world, report
from life.hg.clone import hg_environment, hg_executable
from life.hg.ingest import ingest_pushes
from life.models import Push, Repository
from simulated import pulse
from simulated.harness import declare_queues, run_worker


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=20)
    args = parser.parse_args()
    names = [f"l10n-central/x{i:02d}" for i in range(args.repositories)]

    with hg_world("worker.log") as (tmp, hgmo, url, vendor):
        hg = hg_executable()
        baseline_clones = Path(tmp) / "baseline"
        for name in names:
            hgmo.create_repo(name)
            hgmo.commit_and_push(name, {"README": name.encode()})
            ingest_pushes(Repository.objects.create(name=name, url=hgmo.repo_url(name)))
            subprocess.run([hg, "clone", "-U", "-q", hgmo.repo_url(name), str(baseline_clones / name)],
                           check=True, env=hg_environment())

        pushes = []  # (repository, push id, node), in publishing order
        for i in range(args.pushes):
            name = names[i % len(names)]
            node, push_id = hgmo.commit_and_push(name, {f"strings/{i}.ftl": f"key{i} = {i}\n".encode()})
            pushes.append((name, push_id, node))

        started = time.perf_counter()
        for name, _, node in pushes:
            subprocess.run([hg, "pull", "-q", "-r", node, "-R", str(baseline_clones / name), hgmo.repo_url(name)],
                           check=True, env=hg_environment())
        pulls_seconds = time.perf_counter() - started

        declare_queues()
        with Connection(url) as conn:
            for name, push_id, _ in pushes:
                pulse.publish_hgpush(conn, name, pulse.changegroup(name, hgmo.repo_url(name), [push_id]))
        started = time.perf_counter()
        run_worker(max_messages=args.pushes)
        worker_seconds = time.perf_counter() - started
        stored = Push.objects.count() - len(names)
        assert stored == args.pushes, stored

    report(
        {
            "database": vendor,
            "pushes": args.pushes,
            "repositories": args.repositories,
            "pulls_seconds": pulls_seconds,
            "worker_seconds": worker_seconds,
            "worker_pushes_per_second": args.pushes / worker_seconds,
            "pulls_per_second": args.pushes / pulls_seconds,
            "ratio": worker_seconds / pulls_seconds,
        }
    )


if __name__ == "__main__":
    main()
