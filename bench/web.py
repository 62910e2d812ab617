"""The web head at Firefox scale (DESIGN §9): every page and its JSON, against the same at a tenth.

Builds, in bulk, 6 trees x 150 locales with two years of comparisons (one run
every few days per tree and locale: ~100,000 runs) and 200,000 pushes over 160
repositories; the tenth has the same trees, locales and repositories with a
tenth of the history (runs and pushes), so each page shows the same rows and
differs only by what lies behind it. PostgreSQL gets the rows by COPY, MariaDB
by multi-row INSERTs.

Both sizes are live at once (two database connections, a router picking one
per request), and each page is requested 50 times at each size, alternately,
through the WSGI application (django.test.Client): load from anything else on
the machine falls on both sizes alike, so their ratio measures the data, not
the moment. Its SQL queries are counted once per size. With --rounds N the
whole measurement is repeated and each page's ratio is the median of the
rounds'. Each database (PostgreSQL and MariaDB by default) is measured in a
process of its own; the figures are printed per database and page, and, last,
the worst page's ratio of median times over all databases.

A locale's page draws one point per stored run of its newest 30
(web.queries.RUNS_PER_PAGE) and marks the pushes that moved them: 30 runs and
~60 pushes at full scale against 11 and 22 at a tenth; every other page shows
the same rows at both sizes (a tree's 90-day trend lines: ~2,100 points against
~1,650, the tenth holding 73 days).

    .venv/bin/python bench/web.py [--databases postgresql,mariadb] [--rounds N]

--databases (or BENCH_DATABASES) names vendors (postgresql: postgres://postgres@127.0.0.1:5432/l10n_bench_web,
mariadb: mysql://root@127.0.0.1:3306/l10n_bench_web) or database URLs, comma-separated.
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

DATABASE_URLS = {
    "postgresql": "postgres://postgres@127.0.0.1:5432/l10n_bench_web",
    "mariadb": "mysql://root@127.0.0.1:3306/l10n_bench_web",
}
TREES = ("fx-main", "fx-beta", "fx-release", "fx-esr128", "fx-esr140", "fx-hg")
LOCALES = 150
REPOSITORIES = 160  # 150 forest repositories, the reference, the monorepo and 8 more
PUSHES = 200_000
DAYS = 730
RUN_EVERY_DAYS = 6.5  # ~112 runs per tree and locale over two years: ~100,000 runs
FILES_PER_REPOSITORY = 20
REQUESTS = 50
ROWS_PER_INSERT = 2000  # MariaDB: well under its max_allowed_packet with these rows


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--databases", default=os.environ.get("BENCH_DATABASES", "postgresql,mariadb"),
                        help="vendors or database URLs, comma-separated (default: BENCH_DATABASES or both)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of every page; ratios are their median")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="of each page at each size, per round")
    # One database's process, run by the others: its URL and the name its lines start with.
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    return parser.parse_args()


ARGS = arguments()
if ARGS.database:  # before Django reads it
    os.environ["DATABASE_URL"] = ARGS.database
sys.path.insert(0, str(Path(__file__).resolve().parent))

from django.conf import settings  # noqa: E402
from django.db import connections, reset_queries, router  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from common import report, scratch_database  # noqa: E402
from l10n.models import COMPUTED, Active, Run, RunFile  # noqa: E402
from life.models import Changeset, File, Forest, Locale, Push, Repository, SyncState, Tree, path_digest  # noqa: E402
from plumbing.bulk import chunked  # noqa: E402
from worker.models import DeadLetter  # noqa: E402


def insert(connection, table, columns, rows):
    """Add ``rows`` (tuples in ``columns`` order, database-ready) to ``table``: COPY on PostgreSQL,
    multi-row INSERTs elsewhere."""
    ops = connection.ops
    names = ", ".join(ops.quote_name(name) for name in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {ops.quote_name(table)} ({names}) FROM STDIN") as stream:
                for row in rows:
                    stream.write_row(row)
            return
        values = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for chunk in chunked(rows, ROWS_PER_INSERT):
            cursor.execute(f"INSERT INTO {ops.quote_name(table)} ({names}) VALUES {', '.join([values] * len(chunk))}",
                           [value for row in chunk for value in row])


def copy(connection, model, columns, rows):
    """``insert`` ``rows`` (tuples in ``columns`` order; other fields take their defaults) into ``model``'s
    table; datetimes as the database takes them."""
    fields = {field.attname: field for field in model._meta.concrete_fields}
    rest = [name for name in fields if name not in columns and name != "id"]  # without an id: its sequence
    defaults = tuple(fields[name].get_db_prep_save(fields[name].get_default(), connection) for name in rest)
    moments = [i for i, name in enumerate(columns) if fields[name].get_internal_type() == "DateTimeField"]
    adapt = connection.ops.adapt_datetimefield_value

    def ready(row):
        if moments and connection.vendor != "postgresql":
            row = list(row)
            for i in moments:
                row[i] = adapt(row[i])
        return (*row, *defaults)

    insert(connection, model._meta.db_table, [fields[name].column for name in (*columns, *rest)], map(ready, rows))


def build(alias, scale, now):
    """The database of ``alias`` at ``scale`` (1 or 0.1) of its history. Returns what the pages are asked about."""
    started = time.monotonic()
    connection = connections[alias]
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:  # every row refers to rows written before it: checks cost only
            cursor.execute("SET foreign_key_checks = 0")
    days = DAYS * scale
    pushes_per_repository = int(PUSHES * scale / REPOSITORIES)
    codes = [f"l{index:03d}" for index in range(LOCALES - 3)] + ["de", "fr", "ja-JP-mac"]
    copy(connection, Locale, ("id", "code", "name"), ((i + 1, code, f"Locale {code}") for i, code in enumerate(codes)))
    forest = Forest.objects.using(alias).create(name="l10n-central", url="https://hg.mozilla.org/l10n-central/")
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
    copy(connection, Repository, ("id", "name", "url", "kind", "forest_id", "locale_id"), repositories)
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
    copy(connection, File, ("id", "path", "path_hash"), files)
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

    copy(connection, Changeset, ("id", "revision", "user", "description", "placeholder"), changeset_rows())
    insert(connection, Changeset.files.through._meta.db_table, ("changeset_id", "file_id"),
                 ((changeset_of[r, n], file_ids[r, n % FILES_PER_REPOSITORY]) for r, *_ in repositories
                  for n in range(1, pushes_per_repository + 1)))
    copy(connection, Push, ("id", "repository_id", "push_id", "user", "push_date"),
         ((changeset_of[r, n], r, n, f"pusher{n % 2}@example.com", now - step * (pushes_per_repository - n))
          for r, *_ in repositories for n in range(1, pushes_per_repository + 1)))
    insert(connection, Push.changesets.through._meta.db_table, ("push_id", "changeset_id"),
                 ((changeset_of[r, n], changeset_of[r, n]) for r, *_ in repositories
                  for n in range(1, pushes_per_repository + 1)))
    changesets.clear()
    # Trees: five on the monorepo, one on the forest; runs every few days per locale, the newest active.
    trees = []
    for code in TREES:
        trees.append(Tree.objects.using(alias).create(
            code=code, config_repository_id=source, config_path=f"_data/{code}.json", computed=True,
            locales_repository_id=None if code == "fx-hg" else mono, l10n=forest if code == "fx-hg" else None))
    runs_per_locale = max(1, int(days / RUN_EVERY_DAYS))
    runs = []
    for tree in trees:
        for locale_index in range(LOCALES):
            locale_repository = locale_index + 1 if tree.code == "fx-hg" else mono
            for number in range(runs_per_locale):
                at = now - timedelta(days=RUN_EVERY_DAYS) * (runs_per_locale - 1 - number) \
                    - timedelta(minutes=locale_index)
                push = max(1, int(pushes_per_repository * (number + 1) / runs_per_locale) - locale_index % 3)
                translated = min(1000, 400 + number * 5 + locale_index)
                runs.append((tree.pk, locale_index + 1, COMPUTED, "moz.l10n 0.15.0", translated,
                             1000 - translated, locale_index % 3, 1000, int(translated * 100 / 1000), at,
                             changeset_of[source, push], changeset_of[locale_repository, push], at))
    # Stored as they were computed, every tree's and locale's interleaved: ids and the table's order follow
    # time, as in production (the planner's choice of index depends on it).
    runs.sort(key=lambda run: run[9])
    run_rows = [(run_id, *run) for run_id, run in enumerate(runs, 1)]
    newest = {(row[1], row[2]): row for row in run_rows}  # the last one of each tree and locale
    actives = [(number, tree_id, locale_id, row[0], now, row[11], row[12])
               for number, ((tree_id, locale_id), row) in enumerate(sorted(newest.items()), 1)]
    copy(connection, Run, ("id", "tree_id", "locale_id", "origin", "computed_by", "changed", "missing", "errors",
                           "total", "completion", "srctime", "reference_revision_id", "locale_revision_id", "created"),
         run_rows)
    copy(connection, Active, ("id", "tree_id", "locale_id", "run_id", "checked", "checked_reference_id",
                              "checked_locale_id"), actives)
    copy(connection, RunFile, ("run_id", "path", "missing", "missing_file", "error"),
         ((active[3], f"browser/file{number}.ftl", connection.ops.adapt_json_value(
             [f"message-{number}-{i}" for i in range(5)], None), number == 19, "")
          for active in actives for number in range(20)))
    copy(connection, SyncState, ("repository_id", "last_synced", "last_attempt", "failures", "next_attempt",
                                 "last_error", "upstream_push_id", "stored_push_id"),
         ((r, now - timedelta(minutes=5), now - timedelta(minutes=1), 6 if r % 40 == 0 else 0,
           now + timedelta(hours=1) if r % 40 == 0 else None, "HTTP 503" if r % 40 == 0 else "",
           pushes_per_repository, pushes_per_repository) for r, *_ in repositories))
    DeadLetter.objects.using(alias).bulk_create([DeadLetter(body=b"{}", exchange="exchange/hgpushes/v2", routing_key=f"x/{i}",
                                               error=f"not JSON {i}", source="hgmo") for i in range(50)])
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("SET foreign_key_checks = 1")
            cursor.execute("ANALYZE TABLE " + ", ".join(map(connection.ops.quote_name,
                                                          connection.introspection.table_names(cursor))))
            cursor.fetchall()
        else:
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


class ScaleRouter:
    """Sends every query to the size being requested (``alias``): both sizes are live at once."""

    alias = "default"

    def db_for_read(self, model, **hints):
        return self.alias

    db_for_write = db_for_read


def measure(urls, rounds):
    """{page: (queries at full, at a tenth, times at full, times at a tenth, ratio)} of ``urls`` ({page: {alias:
    url}}), requests alternating between the sizes: the median of ``rounds`` ratios of median times."""
    client = Client()
    counts, times, ratios = {}, {}, {name: [] for name in urls}

    def get(alias, url):
        ScaleRouter.alias = alias
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (alias, url, response.status_code)
        return elapsed

    for name, by_size in urls.items():
        for alias, url in by_size.items():
            for _ in range(3):  # warm: connection, templates, the database's cache
                get(alias, url)
            reset_queries()  # each request starts by emptying the log the context counts in
            with CaptureQueriesContext(connections[alias]) as queries:
                get(alias, url)
            counts[name, alias] = len(queries)  # now: later requests empty the log it reads
            times[name, alias] = []
    for _ in range(rounds):
        for name, by_size in urls.items():
            full, tenth = [], []
            for number in range(ARGS.requests):
                # Alternate which size goes first, so neither always follows the other.
                if number % 2:
                    tenth.append(get("tenth", by_size["tenth"]))
                    full.append(get("default", by_size["default"]))
                else:
                    full.append(get("default", by_size["default"]))
                    tenth.append(get("tenth", by_size["tenth"]))
            ratios[name].append(statistics.median(full) / statistics.median(tenth))
            times[name, "default"] += full
            times[name, "tenth"] += tenth
    figures = {}
    for name in urls:
        full, tenth = sorted(times[name, "default"]), sorted(times[name, "tenth"])
        figures[name] = (counts[name, "default"], counts[name, "tenth"], full, tenth, statistics.median(ratios[name]))
    return figures


def p95(times):
    return times[int(len(times) * 0.95) - 1]


def one_database(rounds):
    """Both sizes on DATABASE_URL's server, measured together; prints a line per page, the worst ratio last."""
    warnings.filterwarnings("ignore", "No directory at")  # whitenoise: nothing collected, as in a checkout
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    # The tenth: a second connection to a database of its own on the same server.
    tenth = dict(connections.settings["default"], TEST=dict(connections.settings["default"]["TEST"]))
    tenth["TEST"]["NAME"] = "test_" + tenth["NAME"] + "_tenth"
    connections.settings["tenth"] = tenth
    now = timezone.now()
    vendor = ARGS.label or connections["default"].vendor
    router.routers = [ScaleRouter()]
    with contextlib.ExitStack() as databases:
        for alias in ("tenth", "default"):
            ScaleRouter.alias = alias  # the migrations' data (null changeset) goes where the router says
            databases.enter_context(scratch_database(alias))
        worlds = {}
        for label, alias, scale in (("tenth", "tenth", 0.1), ("full", "default", 1.0)):
            ScaleRouter.alias = alias
            world = build(alias, scale, now)
            print(f"{vendor} {label}: built {world['runs']} runs, {world['pushes']} pushes "
                  f"in {world['built_seconds']:.1f} s", flush=True)
            worlds[alias] = pages(world)
        figures = measure({name: {alias: worlds[alias][name] for alias in worlds} for name in worlds["default"]},
                          rounds)
    worst_name, worst = None, 0.0
    for name, (q_full, q_tenth, full, tenth, ratio) in figures.items():
        print(f"{vendor} {name}: queries {q_full} (tenth {q_tenth}), "
              f"median {statistics.median(full) * 1000:.1f} ms (tenth {statistics.median(tenth) * 1000:.1f}), "
              f"p95 {p95(full) * 1000:.1f} ms (tenth {p95(tenth) * 1000:.1f}), ratio {ratio:.2f}", flush=True)
        if ratio > worst:
            worst_name, worst = name, ratio
    flat = all(q_full == q_tenth for q_full, q_tenth, *_ in figures.values())
    report({"queries_flat": "yes" if flat else "no", "worst_page": worst_name, "ratio": worst})


def main():
    """Each database in a process of its own (Django knows one DATABASE_URL per process), then the worst."""
    worst, flat = (None, 0.0), True
    for database in filter(None, (name.strip() for name in ARGS.databases.split(","))):
        url = database if "://" in database else DATABASE_URLS[database]
        label = database if "://" not in database else "postgresql" if url.startswith("postgres") else "mariadb"
        with subprocess.Popen([sys.executable, __file__, "--database", url, "--rounds", str(ARGS.rounds),
                               "--requests", str(ARGS.requests), "--label", label],
                              stdout=subprocess.PIPE, text=True) as child:
            lines = []
            for line in child.stdout:  # as it goes: a database takes minutes
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
        if child.returncode:
            sys.exit(f"{label}: the benchmark failed (exit {child.returncode})")
        found = dict(line.split(": ", 1) for line in lines[-3:])
        flat = flat and found["queries_flat"] == "yes"
        if float(found["ratio"]) > worst[1]:
            worst = (f"{label} {found['worst_page']}", float(found["ratio"]))
        print(f"{label}: worst page {found['worst_page']}, ratio {float(found['ratio']):.2f}", flush=True)
    report({"queries_flat": "yes" if flat else "no", "worst_page": worst[0], "ratio": worst[1]})


if __name__ == "__main__":
    if ARGS.database:
        one_database(ARGS.rounds)
    else:
        main()
