"""A backfill run over 200 repositories, 10 of them behind by a few pushes.

Every repository is known and synced once; then:
- a run where all are up to date (the cost of checking: one request each);
- 10 repositories get 3 pushes each, and a run catches them up.
Prints both runs' times and HTTP request counts (as the simulated
hg.mozilla.org counted them) and the share of the second run spent on the
repositories that needed work.

Usage: [DATABASE_URL=…] .venv/bin/python bench/backfill.py [--repositories N] [--behind N]
"""

import argparse
import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings

from common import report, scratch_database
from life.backfill import backfill
from life.models import Push, Repository
from simulated.hgmo import SimulatedHgmo


def timed_backfill(hgmo):
    requests_before = hgmo.requests_seen
    started = time.perf_counter()
    result = backfill()
    return result, time.perf_counter() - started, hgmo.requests_seen - requests_before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--behind", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.INFO)

    with tempfile.TemporaryDirectory() as tmp, SimulatedHgmo(Path(tmp) / "upstream") as hgmo, \
            scratch_database() as vendor:
        settings.REPOSITORY_BASE = Path(tmp) / "clones"
        names = [f"l10n-central/r{i:03d}" for i in range(args.repositories)]
        for name in names:
            hgmo.create_repo(name)
            hgmo.commit_and_push(name, {"a.ftl": b"a = 1\n"})
            Repository.objects.create(name=name, url=hgmo.repo_url(name))
        backfill()  # the first sync clones everything; not measured

        idle, idle_seconds, idle_requests = timed_backfill(hgmo)
        assert idle.count("up to date") == args.repositories, idle.summary()

        behind = names[:: args.repositories // args.behind][: args.behind]
        for name in behind:
            for i in range(3):
                hgmo.commit_and_push(name, {"a.ftl": f"a = {i + 2}\n".encode()})
        busy, busy_seconds, busy_requests = timed_backfill(hgmo)
        assert busy.count("caught up") == args.behind, busy.summary()
        assert Push.objects.count() == args.repositories + 3 * args.behind

    checking_seconds = idle_seconds * (args.repositories - args.behind) / args.repositories
    report(
        {
            "database": vendor,
            "repositories": args.repositories,
            "behind": args.behind,
            "up_to_date_run_seconds": idle_seconds,
            "up_to_date_run_requests": idle_requests,
            "requests_per_up_to_date_repository": idle_requests / args.repositories,
            "catch_up_run_seconds": busy_seconds,
            "catch_up_run_requests": busy_requests,
            "requests_per_behind_repository": (busy_requests - (args.repositories - args.behind)) / args.behind,
            "share_of_time_on_behind_repositories": (busy_seconds - checking_seconds) / busy_seconds,
        }
    )


if __name__ == "__main__":
    main()
