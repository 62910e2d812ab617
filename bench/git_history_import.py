"""Import a 10,000-commit git repository from scratch, next to the unavoidable work.

Builds a repository in the simulated GitHub (three files per commit, a merge
every 1,000), then measures in the same run:

- baseline: ``git clone`` of it from the same server plus one ``git log``
  listing the files and parents of every commit;
- import: empty database and no clone -> every commit stored as a changeset,
  the history as one push (what ``./manage.py track`` does).

Usage: [DATABASE_URL=…] .venv/bin/python bench/git_history_import.py [--commits N] [--rounds N]
(PostgreSQL by default; a scratch copy of the named database is created and dropped.)
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import report, scratch_database
from life.git.ingest import import_history
from life.models import Changeset, Push, Repository
from simulated.github import SimulatedGitHub

NAME = "mozilla-l10n/firefox-l10n"


def timed(command):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def baseline(github, scratch):
    clone = scratch / "baseline"
    shutil.rmtree(clone, ignore_errors=True)
    clone_seconds = timed(["git", "clone", "--quiet", "--bare", github.repo_url(NAME), str(clone)])
    log_seconds = timed(["git", "--git-dir", str(clone), "log", "--format=%H %P", "--name-only",
                         "--diff-merges=first-parent", "main"])
    return clone_seconds, log_seconds


def import_once(github, scratch, commits):
    settings.REPOSITORY_BASE = scratch / "clones"
    shutil.rmtree(settings.REPOSITORY_BASE, ignore_errors=True)
    with scratch_database() as vendor:
        repository = Repository.objects.create(name=NAME, url=github.repo_url(NAME), kind=Repository.GIT,
                                               branch="main")
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = import_history(repository)
            seconds = time.perf_counter() - started
        stored = Changeset.objects.filter(repositories=repository).count()
        assert stored == commits and Push.objects.filter(repository=repository).count() == 1, stored
    return vendor, seconds, result.vcs_seconds, len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and import alternate; medians reported")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-git-history-") as tmp, \
            SimulatedGitHub(Path(tmp) / "github") as github:
        scratch = Path(tmp)
        github.create_repo(NAME)
        started = time.perf_counter()
        github.build_history(NAME, args.commits, files_per_commit=3, merges_every=1000,
                             locales=["de", "fr", "it", "ja-JP-mac", "sr-Latn"])
        print(f"# built {args.commits} commits in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        clones, logs, imports, fetches, queries = [], [], [], [], []
        for _ in range(args.rounds):
            clone_seconds, log_seconds = baseline(github, scratch)
            vendor, import_seconds, fetch_seconds, query_count = import_once(github, scratch, args.commits)
            clones.append(clone_seconds)
            logs.append(log_seconds)
            imports.append(import_seconds)
            fetches.append(fetch_seconds)
            queries.append(query_count)
            print(f"# round: baseline {clone_seconds + log_seconds:.2f}s, import {import_seconds:.2f}s",
                  file=sys.stderr)

    ratios = [i / (c + g) for i, c, g in zip(imports, clones, logs, strict=True)]
    report(
        {
            "database": vendor,
            "commits": args.commits,
            "rounds": args.rounds,
            "git_clone_seconds": statistics.median(clones),
            "git_log_seconds": statistics.median(logs),
            "baseline_seconds": statistics.median(c + g for c, g in zip(clones, logs, strict=True)),
            "import_seconds": statistics.median(imports),
            "import_fetch_seconds": statistics.median(fetches),
            "sql_queries": max(queries),
            "commits_per_query": args.commits // max(1, max(queries)),
            "ratio": statistics.median(ratios),
        }
    )


if __name__ == "__main__":
    main()
