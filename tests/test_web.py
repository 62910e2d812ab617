"""The web head (DESIGN §5.5): every page and its JSON twin, what they show, escaped, in a fixed number of
queries, revalidated with 304s, read-only, and served for real by gunicorn."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlencode

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from simulated.harness import PROJECT
from tests.web_support import HOSTILE, LONG, build_world

pytestmark = pytest.mark.django_db


def pages(world):
    tree, locale, repository = world["trees"][0], world["locales"][0], world["failing"]
    hg_tree, hg_repository = world["trees"][1], world["repositories"][2]
    return [
        "/", f"/trees/{tree}/", f"/trees/{tree}/?sort=missing&order=desc", f"/trees/{tree}/{locale}/",
        f"/trees/{hg_tree}/{locale}/", "/pushes/", f"/pushes/{repository}/", f"/pushes/{hg_repository}/",
        f"/pushes/{repository}/?" + urlencode({"path": f"{locale}/", "user": world["user"]}), "/status/",
    ]


def every_url(world):
    html = pages(world)
    return html + ["/api/" + url.lstrip("/") if url != "/" else "/api/trees/" for url in html] + ["/api/"]


def test_every_page_and_its_json_answer(client):
    world = build_world()
    for url in every_url(world):
        response = client.get(url)
        assert response.status_code == 200, url
        if url.startswith("/api/"):
            assert response["Content-Type"] == "application/json"
            json.loads(response.content)
        else:
            assert response["Content-Type"].startswith("text/html")


def test_overview_shows_each_tree_at_a_glance(client):
    world = build_world(locales=3, runs=4)
    trees = {tree["code"]: tree for tree in client.get("/api/trees/").json()["trees"]}
    assert set(trees) == set(world["trees"])
    tree = trees["fx-main"]
    # Per locale, the active (newest) run: 10 * 4 + index translated of 4 * 10 + 3 + 5.
    completions = sorted(int((40 + index) * 100 / 48) for index in range(3))
    assert tree["locales"] == 3 and tree["median_completion"] == completions[1]
    assert tree["complete"] == 0 and tree["below_half"] == 0
    assert tree["reference_revision"]["url"].startswith(
        "https://github.com/mozilla-l10n/firefox-l10n-source/commit/")
    page = client.get("/").content.decode()
    assert "fx-main" in page and f"{completions[1]}&nbsp;%" in page


def test_a_tree_lists_each_locale_with_upstream_links_and_sorts_by_any_column(client):
    world = build_world(locales=4, runs=3)
    data = client.get("/api/trees/fx-main/?sort=missing&order=desc").json()
    missing = [row["missing"] for row in data["locales"]]
    assert missing == sorted(missing, reverse=True) and len(missing) == 4
    row = data["locales"][0]
    assert [rev["url"] for rev in row["compared"]] == [
        f"https://github.com/mozilla-l10n/firefox-l10n-source/commit/{row['compared'][0]['revision']}",
        f"https://github.com/mozilla-l10n/firefox-l10n/commit/{row['compared'][1]['revision']}"]
    assert len(row["trend"]) == 3  # three runs, a day apart: all in the last 90 days
    hg = client.get("/api/trees/fx-hg/").json()["locales"][0]["compared"][1]
    assert hg["url"] == f"https://hg.mozilla.org/l10n-central/{world['locales'][0]}/rev/{hg['revision']}"
    for column in ("locale", "completion", "translated", "missing", "errors", "total", "changed"):
        assert client.get(f"/trees/fx-main/?sort={column}").status_code == 200
    assert client.get("/trees/fx-main/?sort=nonsense").status_code == 400
    assert client.get("/trees/nope/").status_code == 404 and client.get("/api/trees/nope/").status_code == 404
    page = client.get("/trees/fx-main/?sort=missing&order=desc").content.decode()
    assert page.count('<svg class="trend"') == 4 and page.count('<svg class="bar"') == 4


def test_a_locale_shows_one_point_per_run_the_pushes_that_changed_it_and_what_is_missing(client):
    world = build_world(locales=2, runs=5, pushes=6)
    code = world["locales"][1]
    data = client.get(f"/api/trees/fx-main/{code}/").json()
    assert len(data["runs"]) == 5
    # Each run compared a newer reference and locale revision than the one before: 2 pushes each.
    assert len(data["pushes"]) == 10
    files = {item["path"]: item for item in data["files"]}
    assert files["browser/menu.ftl"]["missing"] == ["msg-0", "msg-1", "msg-2"]
    assert files["browser/menu.ftl"]["url"].startswith("https://github.com/mozilla-l10n/firefox-l10n/blob/")
    assert files["browser/menu.ftl"]["url"].endswith(f"/{code}/browser/menu.ftl")
    assert "/firefox-l10n-source/blob/" in files["toolkit/gone.ftl"]["url"]  # a missing file: the reference's
    page = client.get(f"/trees/fx-main/{code}/").content.decode()
    assert page.count('<circle class="run"') == 5 and page.count('<line class="push"') == 10
    assert client.get(f"/trees/fx-main/{code}x/").status_code == 404


def test_a_locale_chart_shows_its_newest_runs_and_pages_to_older_ones(client, monkeypatch):
    from web import queries

    monkeypatch.setattr(queries, "RUNS_PER_PAGE", 2)
    world = build_world(locales=2, runs=5, pushes=6)
    url = f"/api/trees/fx-main/{world['locales'][1]}/"
    everything = client.get(url).json()["runs"]  # the newest page
    assert len(everything) == 2
    pages, cursor = [], None
    while True:
        data = client.get(url, {"cursor": cursor} if cursor else {}).json()
        pages.append(data)
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert [len(page["runs"]) for page in pages] == [2, 2, 1]
    srctimes = [run["srctime"] for page in reversed(pages) for run in page["runs"]]
    assert srctimes == sorted(srctimes) and len(set(srctimes)) == 5  # every run once, oldest first on each page
    # Each page marks the pushes that moved its own runs (2 each: reference and locale), the first page's too.
    assert [len(page["pushes"]) for page in pages] == [4, 4, 2]
    assert all(page["files"] == pages[0]["files"] and page["active"] == pages[0]["active"] for page in pages)
    html = client.get(url.replace("/api", "")).content.decode()
    assert html.count('<circle class="run"') == 2 and f'?cursor={pages[0]["next_cursor"]}' in html
    older = client.get(url.replace("/api", ""), {"cursor": pages[1]["next_cursor"]}).content.decode()
    assert older.count('<circle class="run"') == 1 and 'class="newest"' in older and 'class="older"' not in older
    assert client.get(url, {"cursor": queries.encode_cursor(3)}).status_code == 400  # a push's cursor is no run's
    assert client.get(url, {"cursor": "nonsense"}).status_code == 400


def test_the_push_log_pages_with_cursors_and_filters_by_path_and_user(client, monkeypatch):
    from web import queries

    monkeypatch.setattr(queries, "PUSHES_PER_PAGE", 2)
    world = build_world(locales=2, pushes=5)
    url = f"/api/pushes/{world['failing']}/"
    seen, cursor = [], None
    while True:
        data = client.get(url, {"cursor": cursor} if cursor else {}).json()
        seen += [push["push_id"] for push in data["pushes"]]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert seen == [5, 4, 3, 2, 1]
    newest = client.get(url).json()["pushes"][0]
    assert [cs["placeholder"] for cs in newest["changesets"]] == [False, True]
    assert newest["changesets"][0]["url"] == f"https://github.com/mozilla-l10n/firefox-l10n/commit/{newest['changesets'][0]['revision']}"
    by_user = client.get(url, {"user": "pusher1@example.com"}).json()["pushes"]
    assert [push["push_id"] for push in by_user] == [5, 3]
    code = world["locales"][1]
    by_path = client.get(url, {"path": f"{code}/browser/"}).json()["pushes"]
    assert by_path and all(any(f.startswith(f"{code}/browser/") for cs in push["changesets"] for f in cs["files"])
                           for push in by_path)
    assert client.get(url, {"path": "nowhere/"}).json()["pushes"] == []
    # A path matching many files is read the other way (each push checked): the same pushes.
    monkeypatch.setattr(queries, "RARE_PATH_FILES", 0)
    assert client.get(url, {"path": f"{code}/browser/"}).json()["pushes"] == by_path
    assert client.get(url, {"path": "nowhere/"}).json()["pushes"] == []
    assert client.get(url, {"cursor": "forged!"}).status_code == 400
    hg = client.get(f"/pushes/{world['repositories'][2]}/").content.decode()
    assert f"https://hg.mozilla.org/{world['repositories'][2]}/rev/" in hg
    assert client.get("/pushes/no/such/repo/").status_code == 404


def test_status_flags_a_repository_in_back_off_and_counts_dead_letters_without_their_bodies(client, settings):
    settings.BACKFILL_INTERVAL = 900
    world = build_world()
    data = client.get("/api/status/").json()
    first = data["repositories"][0]
    assert first["name"] == world["failing"] and first["failures"] == 7 and first["backing_off_until"]
    assert all(repo["backing_off_until"] is None for repo in data["repositories"][1:])
    assert data["dead_letters"]["unresolved"] == 3 and len(data["dead_letters"]["newest"]) == 3
    assert data["consumer"]["alive"] is True
    assert data["sources"]["github"]["repository"] in world["repositories"]
    assert data["sources"]["hg.mozilla.org"]["push_id"] == 5
    page = client.get("/status/").content.decode()
    assert "backing off until" in page and "secret body" not in page and "secret body" not in str(data)


@pytest.mark.parametrize("url", ["/", "/trees/fx-main/", "/trees/fx-main/l000/", "/pushes/mozilla-l10n/firefox-l10n/",
                                 "/status/"])
def test_every_page_is_revalidated_with_a_304(client, url):
    build_world()
    for twin in (url, "/api/" + url.lstrip("/") if url != "/" else "/api/trees/"):
        first = client.get(twin)
        assert first["ETag"] and first["Last-Modified"], twin
        assert client.get(twin, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
        assert client.get(twin, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]).status_code == 304


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_upstream_text_is_inert_on_every_page_and_in_every_json(client):
    world = build_world(hostile=True)
    for url in every_url(world):
        body = client.get(url).content.decode()
        if url in ("/", "/api/", "/api/trees/", "/pushes/", "/api/pushes/"):  # codes, names and numbers only
            assert "<script>" not in body and "<img src=x" not in body, url
            continue
        assert "<script>" not in body and "<img src=x" not in body, url
        if url.startswith("/api/"):
            assert "\u202e" not in body and "<" not in body, url  # escaped: \u003c, \u202e
            assert any(HOSTILE in text for text in strings(json.loads(body))), url  # yet given back exactly
        else:
            assert "&lt;script&gt;" in body, url
            # A right-to-left override stays inside its own <bdi>: it cannot reorder the page around it.
            for match in re.finditer("\u202e", body):
                before = body[: match.start()]
                if before[before.rfind("<"):].startswith("<input"):  # an escaped value: the box's own text
                    continue
                assert before.rfind("<bdi>") > before.rfind("</bdi>"), (url, body[match.start() - 80: match.start()])
            assert LONG not in body, url  # 4,000-character texts are cut on pages
    full = client.get(f"/api/pushes/{world['failing']}/").json()["pushes"][0]["changesets"][0]["description"]
    assert full.endswith(LONG)


PAGES_OF_SIZE = ["/", "/trees/fx-main/", "/trees/fx-hg/?sort=missing", "/trees/fx-main/l001/", "/trees/fx-hg/l001/",
                 "/pushes/", "/pushes/mozilla-l10n/firefox-l10n/", "/pushes/l10n-central/l001/?path=l001/",
                 "/status/"]


def query_counts(client):
    counts = {}
    for url in PAGES_OF_SIZE + ["/api/" + url.lstrip("/") for url in PAGES_OF_SIZE if url != "/"]:
        reset_queries()  # each request starts by emptying the log the context counts in
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        counts[url] = len(queries)
    assert all(counts.values()), counts
    return counts


@pytest.mark.django_db(transaction=True)
def test_query_counts_do_not_grow_with_locales_runs_or_pushes(client):
    build_world(locales=2, runs=2, pushes=3)
    small = query_counts(client)
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False)
    build_world(locales=7, runs=6, pushes=9)
    assert query_counts(client) == small


def test_security_headers_and_the_admin_behind_its_login(client):
    build_world()
    response = client.get("/")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    admin = client.get("/admin/l10n/run/")
    assert admin.status_code == 302 and "/admin/login/" in admin["Location"]
    assert client.get("/healthz").content == b"ok\n"
    assert client.post("/").status_code == 405


@pytest.mark.skipif(connection.vendor != "postgresql", reason="roles are PostgreSQL's (DATABASE_URL=postgres://…)")
def test_every_page_works_as_a_role_granted_only_select(client):
    world = build_world()
    role = f"{connection.settings_dict['NAME']}_web_reader"[:63]
    with connection.cursor() as cursor:
        # Inside the test's transaction: the role disappears with its rollback.
        cursor.execute(f'CREATE ROLE "{role}" NOLOGIN')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        cursor.execute(f'SET ROLE "{role}"')
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role
            with pytest.raises(Exception, match="permission denied"), connection.cursor() as inner:
                inner.execute("SAVEPOINT probe; UPDATE life_locale SET name = 'x'")
            cursor.execute("ROLLBACK TO SAVEPOINT probe")
        for url in every_url(world) + ["/healthz"]:
            assert client.get(url).status_code == 200, url
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_env(tmp_path, **extra):
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}", "VAR_DIR": str(tmp_path)}, **extra)
    return env


def test_a_web_head_without_its_secret_key_or_hosts_stops_with_one_line(tmp_path):
    for missing, present in (("SECRET_KEY", {"ALLOWED_HOSTS": "example.org"}), ("ALLOWED_HOSTS", {"SECRET_KEY": "k" * 40})):
        result = subprocess.run([sys.executable, "-m", "web.serve"], cwd=PROJECT, env=web_env(tmp_path, **present),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            f"configuration: {missing} is required for a web head outside DEBUG "
            + ("(it signs the admin's sessions)" if missing == "SECRET_KEY" else "(the host names it answers to)")]


def test_gunicorn_serves_the_pages_static_files_and_health(tmp_path):
    port = free_port()
    env = web_env(tmp_path, SECRET_KEY="s" * 40, ALLOWED_HOSTS="127.0.0.1")
    server = subprocess.Popen([sys.executable, "-m", "web.serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                              cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read1().decode()
                time.sleep(0.2)
        assert health.status == 200 and health.read() == b"ok\n"
        assert "gunicorn" in health.headers["Server"]
        css = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/web/style.css", timeout=5)
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
        assert css.headers["X-Content-Type-Options"] == "nosniff"
        # The container's health check of a web head: it asks under a host the web head answers to.
        assert health_check_of(port, env).returncode == 0
        assert health_check_of(port, {**env, "ALLOWED_HOSTS": "example.org"}).returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def health_check_of(port, env):
    return subprocess.run([sys.executable, "-m", "web.health", str(port)], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=60)
