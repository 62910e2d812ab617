"""Ingesting one elmo.json: wall time and SQL queries at 60 and at 600 comparisons.

200 locales times 3 configurations, 2 revisions each (one shared en-US
revision, one per locale, none of them known yet: all become placeholders),
served by the simulated Taskcluster Queue and ingested as the worker does
(task definition, artifact through the 303 redirect, validation, one
transaction). The query count must not grow with the number of comparisons.

Usage: [DATABASE_URL=…] .venv/bin/python bench/compare_ingest.py
"""

import hashlib
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import report, scratch_database
from l10n.ingest import ingest_task
from l10n.models import Run
from life.models import Repository
from simulated.taskcluster import SimulatedQueue

CONFIGS = ("_configs/browser.toml", "_configs/mobile.toml", "_configs/devtools.toml")
GECKO_STRINGS = "https://hg.mozilla.org/l10n/gecko-strings/"


def revision(text):
    return hashlib.sha1(text.encode()).hexdigest()


def elmo_json(locales, configs):
    summary = {"errors": 0, "warnings": 2, "missing": 12, "missing_w": 80, "report": 0, "obsolete": 1,
               "changed": 8493, "changed_w": 46266, "unchanged": 1093, "unchanged_w": 1419, "keys": 877}
    return {
        "version": "1.0",
        "compare-locales": "9.0.5",
        "repository": GECKO_STRINGS,
        "comparisons": [
            {
                "locale": locale,
                "config": config,
                "artifact": f"public/compares/{config.split('/')[-1][:-5]}.{locale}.json",
                "revisions": {"/l10n/gecko-strings/": revision("en-US"), f"/l10n-central/{locale}/": revision(locale)},
                "summary": summary,
            }
            for locale in locales
            for config in configs
        ],
    }


def locale_codes(count):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [f"{letters[i // 26 % 26]}{letters[i % 26]}" + ("" if i < 676 else "x") for i in range(count)]


def measure(queue, locales, configs):
    task_id = queue.add_task(source=GECKO_STRINGS)
    queue.add_artifact(task_id, 0, "public/elmo.json", elmo_json(locales, configs))
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        stored = ingest_task(queue.root_url, task_id, 0)
        seconds = time.perf_counter() - started
    assert stored.created == len(locales) * len(configs) == Run.objects.filter(task_id=task_id).count()
    return seconds, len(queries)


def main():
    with SimulatedQueue() as queue, scratch_database() as vendor:
        Repository.objects.create(name="l10n/gecko-strings", url=GECKO_STRINGS)
        measure(queue, ["en-GB"], CONFIGS)  # creates the three trees, once
        # Locales neither run shares: in both, every comparison makes a new active run.
        codes = locale_codes(220)
        small_seconds, small_queries = measure(queue, codes[:20], CONFIGS)
        large_seconds, large_queries = measure(queue, codes[20:], CONFIGS)
    report(
        {
            "database": vendor,
            "comparisons_small": 60,
            "seconds_60": small_seconds,
            "queries_60": small_queries,
            "comparisons_large": 600,
            "seconds_600": large_seconds,
            "queries_600": large_queries,
            "query_growth": large_queries - small_queries,
        }
    )


if __name__ == "__main__":
    main()
