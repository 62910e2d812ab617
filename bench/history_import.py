"""Import a 10,000-changeset repository from scratch, next to the unavoidable work.

Builds a repository (several files per changeset, a merge every 1,000) in the
simulated hg.mozilla.org, then measures in the same run:

- baseline: ``hg clone`` of it from the same server plus one
  ``hg log -T json`` with files and parents over all revisions;
- import: empty database and no clone -> every changeset and push stored.

Usage: [DATABASE_URL=…] .venv/bin/python bench/history_import.py [--changesets N] [--pushes N]
(PostgreSQL by default; a scratch copy of the named database is created and dropped.)
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import report, scratch_database
from life.clones import hg_environment, hg_executable
from life.ingest import ingest_pushes
from life.models import Changeset, Push, Repository
from simulated.hgmo import SimulatedHgmo


def timed(command):
    started = time.perf_counter()
    subprocess.run(command, check=True, env=hg_environment(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changesets", type=int, default=10_000)
    parser.add_argument("--pushes", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp, SimulatedHgmo(Path(tmp) / "upstream") as hgmo:
        name = "mozilla-central"
        hgmo.create_repo(name)
        started = time.perf_counter()
        hgmo.build_linear_history(name, args.changesets, files_per_changeset=3, merges_every=1000, pushes=args.pushes)
        print(f"# built {args.changesets} changesets in {time.perf_counter() - started:.1f}s", file=sys.stderr)

        hg = hg_executable()
        baseline_clone = Path(tmp) / "baseline"
        clone_seconds = timed([hg, "clone", "--noupdate", "--quiet", hgmo.repo_url(name), str(baseline_clone)])
        log_seconds = timed([hg, "log", "-R", str(baseline_clone), "-T", "json", "--verbose", "-r", "all()"])

        settings.REPOSITORY_BASE = Path(tmp) / "clones"
        with scratch_database() as vendor:
            repository = Repository.objects.create(name=name, url=hgmo.repo_url(name))
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                result = ingest_pushes(repository)
                import_seconds = time.perf_counter() - started
            stored = Changeset.objects.filter(repositories=repository).count()
            pushes = Push.objects.filter(repository=repository).count()
            assert stored == args.changesets and pushes == args.pushes, (stored, pushes)

    baseline = clone_seconds + log_seconds
    report(
        {
            "database": vendor,
            "changesets": result.changesets,
            "pushes": result.pushes,
            "hg_clone_seconds": clone_seconds,
            "hg_log_seconds": log_seconds,
            "baseline_seconds": baseline,
            "import_seconds": import_seconds,
            "import_clone_seconds": result.hg_seconds,
            "sql_queries": len(queries),
            "changesets_per_query": args.changesets // max(1, len(queries)),
            "ratio_vs_log_only": import_seconds / log_seconds,
            "ratio": import_seconds / baseline,
        }
    )


if __name__ == "__main__":
    main()
