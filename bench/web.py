"""The web head at Firefox scale (DESIGN §9): every page and its JSON, against the same at a tenth.

Builds, in bulk (COPY), 6 trees x 150 locales with two years of comparisons
(one run every few days per tree and locale: ~100,000 runs) and 200,000
pushes over 160 repositories; the tenth has the same trees, locales and
repositories with a tenth of the history (runs and pushes), so each page
shows the same rows and differs only by what lies behind it. Each page is
requested 50 times through the WSGI application (django.test.Client); its
SQL queries are counted once. Prints one line per page and, last, the worst
page's ratio of median times. A locale's page draws one point per stored run
of its newest 30 (web.queries.RUNS_PER_PAGE) and marks the pushes that moved
them: 30 runs and ~60 pushes at full scale against 11 and 22 at a tenth; every
other page shows the same rows at both sizes (a tree's 90-day trend lines:
~2,100 points against ~1,650, the tenth holding 73 days).

    .venv/bin/python bench/web.py   # DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/l10n_bench_web
"""

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/l10n_bench_web")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import warnings  # noqa: E402

from django.conf import settings  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from common import report, scratch_database  # noqa: E402
from l10n.models import COMPUTED, Active, Run, RunFile  # noqa: E402
from life.models import Changeset, File, Forest, Locale, Push, Repository, SyncState, Tree, path_digest  # noqa: E402
from worker.models import DeadLetter  # noqa: E402

TREES = ("fx-main", "fx-beta", "fx-release", "fx-esr128", "fx-esr140", "fx-hg")
LOCALES = 150
REPOSITORIES = 160  # 150 forest repositories, the reference, the monorepo and 8 more
PUSHES = 200_000
DAYS = 730
RUN_EVERY_DAYS = 6.5  # ~112 runs per tree and locale over two years: ~100,000 runs
FILES_PER_REPOSITORY = 20
REQUESTS = 50


def copy(model, columns, rows):
    """COPY ``rows`` (tuples in ``columns`` order; other fields take their defaults) into ``model``'s table."""
    fields = {field.attname: field for field in model._meta.concrete_fields}
    rest = [name for name in fields if name not in columns and name != "id"]  # without an id: its sequence
    defaults = tuple(fields[name].get_db_prep_save(fields[name].get_default(), connection) for name in rest)
    names = ", ".join(f'"{fields[name].column}"' for name in (*columns, *rest))
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as stream:
            for row in rows:
                stream.write_row((*row, *defaults))


def through_copy(through, columns, rows):
    names = ", ".join(f'"{name}"' for name in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{through._meta.db_table}" ({names}) FROM STDIN') as stream:
            for row in rows:
                stream.write_row(row)


def build(scale, now):
    """The database at ``scale`` (1 or 0.1) of its history. Returns what the pages are asked about."""
    started = time.monotonic()
    days = DAYS * scale
    pushes_per_repository = int(PUSHES * scale / REPOSITORIES)
    codes = [f"l{index:03d}" for index in range(LOCALES - 3)] + ["de", "fr", "ja-JP-mac"]
    copy(Locale, ("id", "code", "name"), ((i + 1, code, f"Locale {code}") for i, code in enumerate(codes)))
    forest = Forest.objects.create(name="l10n-central", url="https://hg.mozilla.org/l10n-central/")
    repositories = [(i + 1, f"l10n-central/{code}", f"https://hg.mozilla.org/l10n-central/{code}/", "hg", forest.pk, i + 1)
                    for i, code in enumerate(codes)]
    repositories.append((len(repositories) + 1, "mozilla-l10n/firefox-l10n-source",
                         "https://github.com/mozilla-l10n/firefox-l10n-source/", "git", None, None))
    repositories.append((len(repositories) + 1, "mozilla-l10n/firefox-l10n",
                         "https://github.com/mozilla-l10n/firefox-l10n/", "git", None, None))
    while len(repositories) < REPOSITORIES:
        number = len(repositories) + 1
        repositories.append((number, f"releases/other-{number}", f"https://hg.mozilla.org/releases/other-{number}/",
                             "hg", None, None))
    copy(Repository, ("id", "name", "url", "kind", "forest_id", "locale_id"), repositories)
    source, mono = LOCALES + 1, LOCALES + 2
    # Files: per repository 20 paths (the monorepo's under each locale's folder).
    files, file_ids = [], {}
    for repository_id, *_ in repositories:
        for number in range(FILES_PER_REPOSITORY):
            folder = "browser" if number % 2 else "toolkit"  # half: a path filter still fills a page at a tenth
            prefix = f"{codes[number * 7 % LOCALES]}/" if repository_id == mono else ""
            path = f"{prefix}{folder}/r{repository_id}/file{number}.ftl"
            file_ids[repository_id, number] = len(files) + 1
            files.append((len(files) + 1, path, path_digest(path)))
    copy(File, ("id", "path", "path_hash"), files)
    # Pushes: one changeset each, touching one file; spread evenly over the history, up to now.
    step = timedelta(days=days) / pushes_per_repository
    changesets, changeset_of = [], {}

    def changeset_rows():
        for repository_id, *_ in repositories:
            for number in range(1, pushes_per_repository + 1):
                # Above the null revision (the first migration's).
                changeset_id = 1000 + (repository_id - 1) * pushes_per_repository + number
                changeset_of[repository_id, number] = changeset_id
                yield (changeset_id, f"{repository_id:08x}{number:032x}", f"Some One {number % 13} <one@example.com>",
                       f"Bug {number}: change {number} of {repository_id}\n\nMore words.", False)

    copy(Changeset, ("id", "revision", "user", "description", "placeholder"), changeset_rows())
    through_copy(Changeset.files.through, ("changeset_id", "file_id"),
                 ((changeset_of[r, n], file_ids[r, n % FILES_PER_REPOSITORY]) for r, *_ in repositories
                  for n in range(1, pushes_per_repository + 1)))
    copy(Push, ("id", "repository_id", "push_id", "user", "push_date"),
         ((changeset_of[r, n], r, n, f"pusher{n % 2}@example.com", now - step * (pushes_per_repository - n))
          for r, *_ in repositories for n in range(1, pushes_per_repository + 1)))
    through_copy(Push.changesets.through, ("push_id", "changeset_id"),
                 ((changeset_of[r, n], changeset_of[r, n]) for r, *_ in repositories
                  for n in range(1, pushes_per_repository + 1)))
    changesets.clear()
    # Trees: five on the monorepo, one on the forest; runs every few days per locale, the newest active.
    trees = []
    for code in TREES:
        trees.append(Tree.objects.create(
            code=code, config_repository_id=source, config_path=f"_data/{code}.json", computed=True,
            locales_repository_id=None if code == "fx-hg" else mono, l10n=forest if code == "fx-hg" else None))
    runs_per_locale = max(1, int(days / RUN_EVERY_DAYS))
    run_rows, actives = [], []
    run_id = 0
    for tree in trees:
        for locale_index in range(LOCALES):
            locale_repository = locale_index + 1 if tree.code == "fx-hg" else mono
            for number in range(runs_per_locale):
                run_id += 1
                at = now - timedelta(days=RUN_EVERY_DAYS) * (runs_per_locale - 1 - number) \
                    - timedelta(minutes=locale_index)
                push = max(1, int(pushes_per_repository * (number + 1) / runs_per_locale) - locale_index % 3)
                translated = min(1000, 400 + number * 5 + locale_index)
                run_rows.append((run_id, tree.pk, locale_index + 1, COMPUTED, "moz.l10n 0.15.0", translated,
                                 1000 - translated, locale_index % 3, 1000, int(translated * 100 / 1000), at,
                                 changeset_of[source, push], changeset_of[locale_repository, push], at))
            actives.append((len(actives) + 1, tree.pk, locale_index + 1, run_id, now, run_rows[-1][11],
                            run_rows[-1][12]))
    copy(Run, ("id", "tree_id", "locale_id", "origin", "computed_by", "changed", "missing", "errors", "total",
               "completion", "srctime", "reference_revision_id", "locale_revision_id", "created"), run_rows)
    copy(Active, ("id", "tree_id", "locale_id", "run_id", "checked", "checked_reference_id", "checked_locale_id"),
         actives)
    copy(RunFile, ("run_id", "path", "missing", "missing_file", "error"),
         ((active[3], f"browser/file{number}.ftl", connection.ops.adapt_json_value(
             [f"message-{number}-{i}" for i in range(5)], None), number == 19, "")
          for active in actives for number in range(20)))
    copy(SyncState, ("repository_id", "last_synced", "last_attempt", "failures", "next_attempt", "last_error",
                     "upstream_push_id", "stored_push_id"),
         ((r, now - timedelta(minutes=5), now - timedelta(minutes=1), 6 if r % 40 == 0 else 0,
           now + timedelta(hours=1) if r % 40 == 0 else None, "HTTP 503" if r % 40 == 0 else "",
           pushes_per_repository, pushes_per_repository) for r, *_ in repositories))
    DeadLetter.objects.bulk_create([DeadLetter(body=b"{}", exchange="exchange/hgpushes/v2", routing_key=f"x/{i}",
                                               error=f"not JSON {i}", source="hgmo") for i in range(50)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"built_seconds": time.monotonic() - started, "runs": len(run_rows),
            "pushes": pushes_per_repository * len(repositories), "locale": "de", "tree": "fx-main",
            "forest_repository": "l10n-central/fr", "mono": "mozilla-l10n/firefox-l10n",
            "cursor_push": pushes_per_repository // 2}


def pages(world):
    from web.queries import encode_cursor

    tree, locale = world["tree"], world["locale"]
    html = {
        "overview": "/",
        "tree": f"/trees/{tree}/",
        "tree_by_missing": f"/trees/{tree}/?sort=missing&order=desc",
        "locale": f"/trees/{tree}/{locale}/",
        "locale_hg": f"/trees/fx-hg/{locale}/",
        "pushes": f"/pushes/{world['mono']}/",
        "pushes_older": f"/pushes/{world['forest_repository']}/?cursor={encode_cursor(world['cursor_push'])}",
        "pushes_by_user": f"/pushes/{world['forest_repository']}/?user=pusher1@example.com",
        "pushes_by_path": f"/pushes/{world['forest_repository']}/?path=browser/",
        "status": "/status/",
    }
    urls = dict(html)
    for name, url in html.items():
        urls[f"{name}.json"] = "/api/trees/" if url == "/" else "/api/" + url.lstrip("/")
    return urls


def measure(urls):
    client = Client()
    figures = {}
    for name, url in urls.items():
        for _ in range(3):  # warm: connection, templates, the database's cache
            assert client.get(url).status_code == 200, url
        reset_queries()  # each request starts by emptying the log the context counts in
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        count = len(queries)  # now: later requests empty the log it reads
        times = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, url
        times.sort()
        figures[name] = (count, statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000)
    return figures


def main():
    warnings.filterwarnings("ignore", "No directory at")  # whitenoise: nothing collected, as in a checkout
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    now = timezone.now()
    results = {}
    for label, scale in (("tenth", 0.1), ("full", 1.0)):
        with scratch_database():
            world = build(scale, now)
            print(f"{label}: built {world['runs']} runs, {world['pushes']} pushes in {world['built_seconds']:.1f} s",
                  flush=True)
            results[label] = measure(pages(world))
    worst_name, worst = None, 0.0
    for name in results["full"]:
        (q_full, median_full, p95_full), (q_tenth, median_tenth, p95_tenth) = results["full"][name], results["tenth"][name]
        ratio = median_full / median_tenth
        print(f"{name}: queries {q_full} (tenth {q_tenth}), median {median_full:.1f} ms (tenth {median_tenth:.1f}), "
              f"p95 {p95_full:.1f} ms (tenth {p95_tenth:.1f}), ratio {ratio:.2f}")
        if ratio > worst:
            worst_name, worst = name, ratio
    flat = all(results["full"][name][0] == results["tenth"][name][0] for name in results["full"])
    report({"queries_flat": "yes" if flat else "no", "worst_page": worst_name, "ratio": worst})


if __name__ == "__main__":
    main()
