"""A backfill run over 200 repositories of both kinds, 10 of them behind by a few pushes.

Half are Mercurial repositories on the simulated hg.mozilla.org, half git
repositories on the simulated GitHub. Every repository is known and synced
once; then:
- a run where all are up to date (the cost of checking: one request each,
  json-pushes' lastpushid for Mercurial, the ref advertisement for git);
- 10 repositories (half of each kind) get 3 pushes each, and a run catches
  them up.
Prints both runs' times and HTTP request counts per kind (as the simulated
servers counted them) and the share of the second run spent on the
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
from life.backfill import Status, backfill
from life.models import Push, Repository
from simulated.github import SimulatedGitHub
from simulated.hgmo import SimulatedHgmo


def timed_backfill(hgmo, github):
    before = hgmo.requests_seen, github.requests_seen
    started = time.perf_counter()
    result = backfill()
    return result, time.perf_counter() - started, hgmo.requests_seen - before[0], github.requests_seen - before[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=200, help="in all, half of each kind")
    parser.add_argument("--behind", type=int, default=10, help="in all, half of each kind")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    per_kind, behind_per_kind = args.repositories // 2, args.behind // 2

    with tempfile.TemporaryDirectory() as tmp, SimulatedHgmo(Path(tmp) / "upstream") as hgmo, \
            SimulatedGitHub(Path(tmp) / "github") as github, scratch_database() as vendor:
        settings.REPOSITORY_BASE = Path(tmp) / "clones"
        hg_names = [f"l10n-central/r{i:03d}" for i in range(per_kind)]
        git_names = [f"mozilla-l10n/r{i:03d}" for i in range(per_kind)]
        for name in hg_names:
            hgmo.create_repo(name)
            hgmo.commit_and_push(name, {"a.ftl": b"a = 1\n"})
            Repository.objects.create(name=name, url=hgmo.repo_url(name))
        for name in git_names:
            github.create_repo(name)
            github.commit(name, {"a.ftl": b"a = 1\n"})
            Repository.objects.create(name=name, url=github.repo_url(name), kind=Repository.GIT, branch="main")
        backfill()  # the first sync clones everything; not measured

        idle, idle_seconds, idle_hg, idle_git = timed_backfill(hgmo, github)
        assert idle.count(Status.UP_TO_DATE) == args.repositories, idle.summary()

        step = per_kind // behind_per_kind
        for name in hg_names[::step][:behind_per_kind]:
            for i in range(3):
                hgmo.commit_and_push(name, {"a.ftl": f"a = {i + 2}\n".encode()})
        for name in git_names[::step][:behind_per_kind]:
            for i in range(3):
                github.commit(name, {"a.ftl": f"a = {i + 2}\n".encode()})
        busy, busy_seconds, busy_hg, busy_git = timed_backfill(hgmo, github)
        assert busy.count(Status.CAUGHT_UP) == 2 * behind_per_kind, busy.summary()
        # Mercurial keeps the three pushes; git has no pushlog: what the backfill finds is one push.
        assert Push.objects.count() == 2 * per_kind + 3 * behind_per_kind + behind_per_kind

    up_to_date = per_kind - behind_per_kind
    checking_seconds = idle_seconds * (args.repositories - 2 * behind_per_kind) / args.repositories
    report(
        {
            "database": vendor,
            "repositories": args.repositories,
            "behind": 2 * behind_per_kind,
            "up_to_date_run_seconds": idle_seconds,
            "up_to_date_run_requests_hg": idle_hg,
            "up_to_date_run_requests_git": idle_git,
            "requests_per_up_to_date_repository_hg": idle_hg / per_kind,
            "requests_per_up_to_date_repository_git": idle_git / per_kind,
            "catch_up_run_seconds": busy_seconds,
            "catch_up_run_requests_hg": busy_hg,
            "catch_up_run_requests_git": busy_git,
            "requests_per_behind_repository_hg": (busy_hg - up_to_date) / behind_per_kind,
            "requests_per_behind_repository_git": (busy_git - up_to_date) / behind_per_kind,
            "share_of_time_on_behind_repositories": (busy_seconds - checking_seconds) / busy_seconds,
        }
    )


if __name__ == "__main__":
    main()
