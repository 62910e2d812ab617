"""Import a git repository's whole history from scratch, next to the unavoidable work.

Two repositories in the simulated GitHub, one per profile, built with one ``git fast-import`` each:

- firefox: 10,000 commits, three files each in five locale folders, a merge every 1,000;
- monorepo: shaped like firefox-l10n, 100,000 commits in 150 locale folders, each commit touching
  one file of one folder (a Pontoon sync), a merge every 300.

For each profile and each database (PostgreSQL and MariaDB by default), in the same run:

- baseline: ``git clone --bare`` of it from the same server plus one ``git log --name-only``
  listing the files and parents of every commit;
- import: empty database and no clone -> every commit stored as a changeset, the history as one
  push (what ``./manage.py track`` does), in a process of its own, whose peak resident size
  (``VmHWM``: the import, not the building of the repository) is reported.

Figures are prefixed with ``<profile>_<database>_``; ``<profile>_ratio`` is that profile's worst
ratio over the databases (target <= 1.3), and the unprefixed ``ratio``, last, the worst of all.

The import's clone is partial (commits and trees, no blob: ``life.git.clone``); the baseline's is
whole. Per profile, the baseline again with ``git clone --filter=blob:none``, its share of the whole
baseline's time (``<profile>_partial_share``) and both clones' sizes.

Usage: .venv/bin/python bench/git_history_import.py [--profile firefox|monorepo]
       [--databases URL,URL] [--rounds N (3)] [--commits N (overrides the profiles' sizes)]
(A scratch copy of each named database is created and dropped.)
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NAME = "mozilla-l10n/firefox-l10n"
DATABASES = "postgres://postgres@127.0.0.1:5432/l10n_bench,mysql://root@127.0.0.1:3306/l10n_bench"
PROFILES = {
    "firefox": {"commits": 10_000, "files_per_commit": 3, "merges_every": 1000,
                "locales": ["de", "fr", "it", "ja-JP-mac", "sr-Latn"]},
    "monorepo": {"commits": 100_000, "files_per_commit": 1, "merges_every": 300,
                 "locales": [f"l{n:03d}" for n in range(150)]},
}


def timed(command):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def baseline(url, scratch, *clone_options):
    """Seconds of ``git clone --bare`` plus one ``git log --name-only``, and the clone's size in MB."""
    clone = scratch / "baseline"
    shutil.rmtree(clone, ignore_errors=True)
    seconds = timed(["git", "clone", "--quiet", "--bare", *clone_options, url, str(clone)])
    # --no-renames: rename detection would read blobs, which a clone without them fetches one by one.
    seconds += timed(["git", "--git-dir", str(clone), "log", "--format=%H %P", "--name-only", "--no-renames",
                      "--diff-merges=first-parent", "main"])
    size = sum(path.stat().st_size for path in clone.rglob("*") if path.is_file()) / 1e6
    shutil.rmtree(clone, ignore_errors=True)
    return seconds, size


def partial_clone(url, scratch):
    """The same baseline with a clone of commits and trees only (``--filter=blob:none``), as the
    worker's (the simulated GitHub serves partial clones, as GitHub does)."""
    full_seconds, full_mb = baseline(url, scratch)
    partial_seconds, partial_mb = baseline(url, scratch, "--filter=blob:none")
    return {"baseline_seconds": full_seconds, "clone_mb": full_mb, "partial_baseline_seconds": partial_seconds,
            "partial_clone_mb": partial_mb, "partial_share": partial_seconds / full_seconds}


def import_in_child(url, database_url, scratch, commits):
    """Run ``--child`` (one import, in a process of its own) and return its figures."""
    environment = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, __file__, "--child", url, str(scratch), str(commits)],
                            env=environment, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.splitlines()[-1])


class _QueryCounter:
    """Stands in for the log of queries of every connection (the import stores its batches on a thread's
    own): counts them, keeps nothing."""

    maxlen = None

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def append(self, query):
        with self._lock:
            self.count += 1

    def log(self, connection):
        connection.force_debug_cursor, connection.queries_log = True, self

    def clear(self):
        pass

    def __len__(self):
        return self.count


def _peak_resident_mb():
    """This process's peak resident size: VmHWM, of its own memory since exec (``ru_maxrss`` keeps
    the peak of the process that forked it, here the one that built the repository)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(url, scratch, commits):
    """One import into a scratch database; prints its figures as one JSON line."""
    sys.path.insert(0, str(BENCH))
    from django.conf import settings
    from django.db import connection
    from django.db.backends.signals import connection_created

    from common import scratch_database
    from life.git.ingest import import_history
    from life.models import Changeset, Push, Repository
    from plumbing.collector import freeze_startup_objects

    settings.REPOSITORY_BASE = Path(scratch) / "clones"
    shutil.rmtree(settings.REPOSITORY_BASE, ignore_errors=True)
    with scratch_database() as vendor:
        repository = Repository.objects.create(name=NAME, url=url, kind=Repository.GIT, branch="main")
        freeze_startup_objects()  # as ./manage.py track does before its work
        # Counted, not kept: the statements' text would weigh on the resident size measured.
        queries = _QueryCounter()
        queries.log(connection)
        connection_created.connect(lambda connection, **_: queries.log(connection), weak=False)
        started = time.perf_counter()
        result = import_history(repository)
        seconds = time.perf_counter() - started
        connection.force_debug_cursor = False
        stored = Changeset.objects.filter(repositories=repository).count()
        assert stored == commits and Push.objects.filter(repository=repository).count() == 1, stored
    shutil.rmtree(settings.REPOSITORY_BASE, ignore_errors=True)
    peak = _peak_resident_mb()
    print(json.dumps({"vendor": vendor, "seconds": seconds, "fetch_seconds": result.vcs_seconds,
                      "queries": len(queries), "peak_rss_mb": peak}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append")
    parser.add_argument("--databases", default=os.environ.get("BENCH_DATABASES", DATABASES),
                        help="comma-separated DATABASE_URLs, each measured in the same run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and import alternate; medians reported (one round is one noisy sample)")
    parser.add_argument("--commits", type=int, help="instead of each profile's size (quick runs)")
    args = parser.parse_args()

    sys.path.insert(0, str(BENCH))
    import common  # noqa: F401  (Django set up for the simulated GitHub)
    from simulated.github import SimulatedGitHub

    figures, ratios = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-git-history-") as tmp, \
            SimulatedGitHub(Path(tmp) / "github") as github:
        scratch = Path(tmp)
        for profile in args.profile or list(PROFILES):
            shape = dict(PROFILES[profile])
            commits = args.commits or shape.pop("commits")
            shape.pop("commits", None)
            name = f"mozilla-l10n/{profile}"
            github.create_repo(name)
            started = time.perf_counter()
            github.build_history(name, commits, **shape)
            print(f"# {profile}: built {commits} commits in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            url = github.repo_url(name)
            for database_url in args.databases.split(","):
                rounds = []
                for _ in range(args.rounds):
                    base, _ = baseline(url, scratch)
                    run = import_in_child(url, database_url, scratch, commits)
                    rounds.append((base, run))
                    print(f"# {profile} {run['vendor']}: baseline {base:.2f}s, import {run['seconds']:.2f}s",
                          file=sys.stderr)
                vendor = rounds[0][1]["vendor"]
                prefix = f"{profile}_{vendor}_"
                ratio = statistics.median(run["seconds"] / base for base, run in rounds)
                figures.update({
                    f"{prefix}commits": commits,
                    f"{prefix}baseline_seconds": statistics.median(base for base, _ in rounds),
                    f"{prefix}import_seconds": statistics.median(run["seconds"] for _, run in rounds),
                    f"{prefix}import_fetch_seconds": statistics.median(run["fetch_seconds"] for _, run in rounds),
                    f"{prefix}sql_queries": max(run["queries"] for _, run in rounds),
                    f"{prefix}peak_rss_mb": max(run["peak_rss_mb"] for _, run in rounds),
                    f"{prefix}ratio": ratio,
                })
                ratios[profile] = max(ratios.get(profile, 0.0), ratio)
            for figure, value in partial_clone(url, scratch).items():
                figures[f"{profile}_{figure}"] = value
            shutil.rmtree(github.git_dir(name), ignore_errors=True)
    for profile, ratio in ratios.items():
        figures[f"{profile}_ratio"] = ratio
    figures["ratio"] = max(ratios.values())
    for name, value in figures.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
