"""A storm of pushes while one repository's server hangs: what it costs the others (issue 19).

20 repositories in the simulated hg.mozilla.org, already cloned and
imported, plus one more whose server, in the faulty runs, accepts every
request and never answers (``hang``), then answers one byte a second
(``trickle``). 1,000 one-changeset pushes spread over the 20, with the
hanging repository's own pushes among them (one in 50), announced on the
local RabbitMQ in hg.mozilla.org's format and drained by the real
``consume-pulse`` (default WORKER_THREADS). The same storm runs three times:
no fault, hang, trickle. For each push to a good repository, when it was
stored is sampled from the database every 0.1 s.

Figures: the seconds to store every good push in each run; the throughput
ratio of each faulty run against the no-fault one (target >= 0.9); the
longest time any good push waited beyond the no-fault run's.

Usage: [DATABASE_URL=…] .venv/bin/python bench/storm.py [--pushes N] [--repositories N]
"""

import argparse
import os
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from kombu import Connection

from common import hg_world, report
from life.hg.ingest import ingest_pushes
from life.models import Push, Repository
from simulated import pulse
from simulated.harness import WorkerProcess, declare_queues

HANGING = "l10n-central/hanging"
HANGING_EVERY = 50


def storm(hgmo, url, names, count, tmp, fault):
    """Publish ``count`` pushes (the hanging repository's every HANGING_EVERY) and drain them with the worker;
    returns (seconds until each good push was stored, in publishing order; seconds until all were)."""
    pushes = []
    for i in range(count):
        if i % HANGING_EVERY == HANGING_EVERY - 1:
            _, push_id = hgmo.commit_and_push(HANGING, {f"s/{i}.ftl": f"k{i} = {i}\n".encode()})
            pushes.append((HANGING, push_id))
            continue
        name = names[i % len(names)]
        _, push_id = hgmo.commit_and_push(name, {f"strings/{i}.ftl": f"key{i} = {i}\n".encode()})
        pushes.append((name, push_id))
    hgmo.set_fault(fault, HANGING)
    declare_queues()
    with Connection(url) as conn:
        for name, push_id in pushes:
            pulse.publish_hgpush(conn, name, pulse.changegroup(name, hgmo.repo_url(name), [push_id]))
    good = {(name, push_id) for name, push_id in pushes if name != HANGING}
    stored_at = {}
    worker = WorkerProcess("--idle-exit", "3600", log_path=Path(tmp) / f"worker-{fault}.log")
    started = time.monotonic()
    try:
        while len(stored_at) < len(good):
            now = time.monotonic() - started
            for key in Push.objects.filter(repository__name__in=names).values_list("repository__name", "push_id"):
                if key in good:
                    stored_at.setdefault(key, now)
            if worker.process.poll() is not None:
                raise SystemExit(f"the worker stopped:\n{worker.output()[-3000:]}")
            time.sleep(0.1)
    finally:
        worker.kill()
    hgmo.set_fault(None)
    return [stored_at[key] for key in pushes if key in good], max(stored_at.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=20)
    args = parser.parse_args()
    names = [f"l10n-central/x{i:02d}" for i in range(args.repositories)]

    with hg_world("bench.log") as (tmp, hgmo, url, vendor):
        # For the worker processes (WorkerProcess passes the test database and clone storage itself).
        os.environ.update({"PULSE_URL": url, "BACKFILL_INTERVAL": "0", "LOG_LEVEL": "INFO"})
        hgmo.hang_seconds = 3600
        for name in [*names, HANGING]:
            hgmo.create_repo(name)
            hgmo.commit_and_push(name, {"README": name.encode()})
            ingest_pushes(Repository.objects.create(name=name, url=hgmo.repo_url(name)))
        connection.close()  # the worker processes use the database; this process only samples it

        baseline, baseline_seconds = storm(hgmo, url, names, args.pushes, tmp, None)
        figures = {"database": vendor, "pushes": args.pushes, "repositories": args.repositories,
                   "threads": settings.WORKER_THREADS, "no_fault_seconds": baseline_seconds}
        for fault in ("hang", "trickle"):
            # The same storm again, on top of what is stored: the good pushes are new pushes.
            stored_at, seconds = storm(hgmo, url, names, args.pushes, tmp, fault)
            # The nth good push of each storm against the nth of the no-fault one.
            waits = [after - before for after, before in zip(stored_at, baseline, strict=True)]
            figures[f"{fault}_seconds"] = seconds
            figures[f"{fault}_throughput_ratio"] = baseline_seconds / seconds
            figures[f"{fault}_longest_extra_wait_seconds"] = max(0.0, *waits)
    report(figures)


if __name__ == "__main__":
    main()
