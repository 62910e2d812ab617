"""Import a repository's whole history from scratch, next to the unavoidable work; then re-run it.

Two repositories in the simulated hg.mozilla.org, one per profile:

- bulk: 10,000 changesets in 100 pushes, a merge every 1,000;
- reference: shaped like Firefox's en-US strings repository, 15,000
  changesets in 9,000 pushes (most of one or two changesets, about one in a
  hundred of a few dozen), a merge every 12 changesets.

Several files per changeset, over a few hundred paths. For each profile, in
the same run:

- baseline: ``hg clone -U`` of it from the same server plus one
  ``hg log -T json -v`` over all revisions;
- import: ``reprocess-repo`` with an empty database and no clone;
- noop: ``reprocess-repo`` again, with nothing new upstream.

Figures are prefixed with the profile's name; ``ratio`` is the import against
the baseline (target <= 1.3), ``noop_ratio`` the second run against the import
(target <= 0.3). The unprefixed ``ratio`` and ``noop_ratio`` are the worst
of the profiles.

Usage: [DATABASE_URL=…] .venv/bin/python bench/history_import.py [--profile bulk|reference] [--rounds N (3)]
(PostgreSQL by default; a scratch copy of the named database is created and dropped, once per round;
figures are the rounds' medians.)
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import report, scratch_database
from life.hg.clone import hg_environment, hg_executable
from life.hg.ingest import reprocess_repository
from life.models import Changeset, Push, Repository
from plumbing.collector import freeze_startup_objects
from simulated.hgmo import SimulatedHgmo, reference_push_sizes


@dataclass(frozen=True)
class Profile:
    name: str
    changesets: int
    pushes: int
    merges_every: int
    real_push_sizes: bool

    def push_sizes(self):
        return reference_push_sizes(self.changesets, self.pushes) if self.real_push_sizes else self.pushes


PROFILES = {
    "bulk": Profile("bulk", 10_000, 100, merges_every=1000, real_push_sizes=False),
    "reference": Profile("reference", 15_000, 9_000, merges_every=12, real_push_sizes=True),
}


def timed(command):
    started = time.perf_counter()
    subprocess.run(command, check=True, env=hg_environment(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(profile, hgmo, tmp, rounds):
    """The profile's figures: medians of ``rounds`` rounds, each a baseline, then an import into a database and
    clone storage of its own, then the import again."""
    name = f"bench/{profile.name}"
    hgmo.create_repo(name)
    started = time.perf_counter()
    hgmo.build_linear_history(name, profile.changesets, files_per_changeset=3, merges_every=profile.merges_every,
                              pushes=profile.push_sizes())
    print(f"# {profile.name}: built {profile.changesets} changesets in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)
    samples = []
    for _ in range(rounds):
        sample = measure_once(profile, name, hgmo, tmp)
        print(f"# {profile.name}: baseline {sample['baseline_seconds']:.2f}s, import {sample['import_seconds']:.2f}s",
              file=sys.stderr)
        samples.append(sample)
    figures = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        figures[key] = statistics.median(values) if isinstance(values[0], float) else statistics.median_low(values)
    figures["ratio"] = statistics.median(sample["import_seconds"] / sample["baseline_seconds"] for sample in samples)
    figures["noop_ratio"] = statistics.median(sample["noop_seconds"] / sample["import_seconds"] for sample in samples)
    figures["changesets_per_query"] = profile.changesets // max(1, figures["sql_queries"])
    return {f"{profile.name}_{key}": value for key, value in figures.items()}


def measure_once(profile, name, hgmo, tmp):
    hg = hg_executable()
    baseline_clone = tmp / f"baseline-{profile.name}"
    shutil.rmtree(baseline_clone, ignore_errors=True)
    clone_seconds = timed([hg, "clone", "--noupdate", "--quiet", hgmo.repo_url(name), str(baseline_clone)])
    log_seconds = timed([hg, "log", "-R", str(baseline_clone), "-T", "json", "--verbose", "-r", "all()"])

    settings.REPOSITORY_BASE = tmp / "clones"
    shutil.rmtree(settings.REPOSITORY_BASE, ignore_errors=True)
    with scratch_database():
        repository = Repository.objects.create(name=name, url=hgmo.repo_url(name))
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = reprocess_repository(repository)
            import_seconds = time.perf_counter() - started
        stored = Changeset.objects.filter(repositories=repository).count()
        pushes = Push.objects.filter(repository=repository).count()
        assert stored == profile.changesets and pushes == profile.pushes, (stored, pushes)

        with CaptureQueriesContext(connection) as noop_queries:
            started = time.perf_counter()
            again = reprocess_repository(repository)
            noop_seconds = time.perf_counter() - started
        assert (again.pushes, again.changesets, again.placeholders_filled) == (0, 0, 0), again

    return {
        "changesets": result.changesets,
        "pushes": result.pushes,
        "hg_clone_seconds": clone_seconds,
        "hg_log_seconds": log_seconds,
        "baseline_seconds": clone_seconds + log_seconds,
        "import_seconds": import_seconds,
        "import_hg_seconds": result.vcs_seconds,
        "sql_queries": len(queries),
        "noop_seconds": noop_seconds,
        "noop_sql_queries": len(noop_queries),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append",
                        help="only this profile (repeatable); default: all")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and import alternate; medians reported (one round is one noisy sample)")
    args = parser.parse_args()

    figures = {"database": connection.vendor}
    freeze_startup_objects()  # as ./manage.py reprocess-repo does before its work
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp, SimulatedHgmo(Path(tmp) / "upstream") as hgmo:
        names = args.profile or list(PROFILES)
        for name in names:
            figures.update(measure(PROFILES[name], hgmo, Path(tmp), args.rounds))
    figures["ratio"] = max(figures[f"{name}_ratio"] for name in names)
    figures["noop_ratio"] = max(figures[f"{name}_noop_ratio"] for name in names)
    report(figures)


if __name__ == "__main__":
    main()
