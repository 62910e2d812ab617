"""The simulated hg.mozilla.org, checked with the real hg client and plain HTTP (no Django)."""

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulated.hgmo import NULL, SimulatedHgmo

HG = Path(sys.executable).with_name("hg")


# conftest's autouse fixtures need Django, which nothing here uses: these keep the module runnable
# with -p no:django (and quick).
@pytest.fixture
def repository_base():
    pass


@pytest.fixture
def no_worker_left_behind():
    pass


@pytest.fixture
def upstream(tmp_path):
    with SimulatedHgmo(tmp_path / "upstream") as server:
        yield server


def hg(*args):
    env = dict(os.environ, HGPLAIN="1", HGRCPATH="")
    return subprocess.run([str(HG), *args], env=env, capture_output=True, text=True, timeout=60)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            body = error.read()
        return error.code, json.loads(body) if error.headers.get("Content-Type") == "application/json" else body


def clone(url, path):
    result = hg("clone", "--noupdate", "--quiet", url, str(path))
    assert result.returncode == 0, result.stderr
    return path


def log(path, template="{node}\\n", rev="all()"):
    return hg("log", "-R", str(path), "-r", rev, "-T", template).stdout.splitlines()


def files(path, rev):
    return hg("manifest", "-R", str(path), "-r", rev).stdout.splitlines()


def test_hg_clone_and_pull_get_the_committed_changesets(upstream, tmp_path):
    upstream.create_repo("l10n-central/de")
    first, _ = upstream.commit_and_push("l10n-central/de", {"browser/a.ftl": b"a = A\n"})
    second, _ = upstream.commit_and_push("l10n-central/de", {"browser/b.ftl": b"b = B\n"})

    local = clone(upstream.repo_url("l10n-central/de"), tmp_path / "de")
    assert log(local) == [first, second]
    assert log(local, "{phase}\n", "tip") == ["public"]

    third = upstream.commit("l10n-central/de", {"browser/a.ftl": None})
    assert hg("pull", "-R", str(local), upstream.repo_url("l10n-central/de")).returncode == 0
    assert log(local) == [first, second, third]
    assert files(local, third) == ["browser/b.ftl"]


def test_repositories_created_while_serving_are_served(upstream, tmp_path):
    upstream.create_repo("l10n-central/de")
    clone(upstream.repo_url("l10n-central/de"), tmp_path / "de")  # hgwebdir has scanned by now
    upstream.create_repo("releases/l10n/mozilla-beta/fr")
    node, _ = upstream.commit_and_push("releases/l10n/mozilla-beta/fr", {"a": b"1"})

    local = clone(upstream.repo_url("releases/l10n/mozilla-beta/fr"), tmp_path / "fr")
    assert log(local) == [node]


def test_json_pushes_bounds(upstream):
    upstream.create_repo("l10n-central/fr")
    url = upstream.repo_url("l10n-central/fr") + "json-pushes?version=2"
    assert get(url) == (200, {"lastpushid": 0, "pushes": {}})

    one = upstream.commit("l10n-central/fr", {"a": b"1"})
    two = upstream.commit("l10n-central/fr", {"b": b"2"})
    assert upstream.push("l10n-central/fr", user="one@example.com", date=1227196396) == 1
    three, _ = upstream.commit_and_push("l10n-central/fr", {"c": b"3"})
    four, _ = upstream.commit_and_push("l10n-central/fr", {"d": b"4"})

    status, answer = get(url + "&startID=0&endID=2")
    assert status == 200
    assert answer == {
        "lastpushid": 3,
        "pushes": {
            "1": {"changesets": [one, two], "date": 1227196396, "user": "one@example.com"},
            "2": {"changesets": [three], "date": answer["pushes"]["2"]["date"], "user": "pusher@example.com"},
        },
    }
    assert list(get(url + "&startID=1")[1]["pushes"]) == ["2", "3"]
    assert list(get(url + "&endID=1")[1]["pushes"]) == ["1"]
    assert get(url + "&startID=3&endID=3")[1] == {"lastpushid": 3, "pushes": {}}
    assert get(url + "&startID=2&endID=3")[1]["pushes"]["3"]["changesets"] == [four]
    with pytest.raises(ValueError, match="nothing new"):
        upstream.push("l10n-central/fr")


def test_json_pushes_full(upstream):
    upstream.create_repo("mozilla-central")
    root = upstream.commit("mozilla-central", {"a.ftl": b"a", "b.ftl": b"b"}, message="Root", user="R <r@example.com>")
    child, _ = upstream.commit_and_push("mozilla-central", {"b.ftl": None}, message="Drop b\n\nBug 1")

    status, answer = get(upstream.repo_url("mozilla-central") + "json-pushes?version=2&startID=0&endID=1&full=1")
    assert status == 200
    assert answer["pushes"]["1"]["changesets"] == [
        {"node": root, "author": "R <r@example.com>", "desc": "Root", "branch": "default", "tags": [],
         "files": ["a.ftl", "b.ftl"], "parents": [NULL]},
        {"node": child, "author": "Someone <someone@example.com>", "desc": "Drop b\n\nBug 1", "branch": "default",
         "tags": ["tip"], "files": ["b.ftl"], "parents": [root]},
    ]


def test_merge_has_two_parents_and_keeps_both_sides(upstream, tmp_path):
    upstream.create_repo("mozilla-central")
    base = upstream.commit("mozilla-central", {"base": b"0"})
    left = upstream.commit("mozilla-central", {"left": b"1"}, parents=[base])
    right = upstream.commit("mozilla-central", {"right": b"2"}, parents=[base], branch="GECKO_BRANCH")
    merge, _ = upstream.commit_and_push("mozilla-central", {"base": b"merged"}, parents=[left, right])

    answer = get(upstream.repo_url("mozilla-central") + "json-pushes?version=2&full=1")[1]
    described = {changeset["node"]: changeset for changeset in answer["pushes"]["1"]["changesets"]}
    assert described[merge]["parents"] == [left, right]
    assert described[merge]["branch"] == "default"
    assert described[right]["branch"] == "GECKO_BRANCH"
    assert upstream.commit("mozilla-central", {"next": b"3"}, branch="GECKO_BRANCH") != merge

    local = clone(upstream.repo_url("mozilla-central"), tmp_path / "mc")
    assert files(local, merge) == ["base", "left", "right"]
    assert hg("cat", "-R", str(local), "-r", merge, "path:base").stdout == "merged"
    assert log(local, "{p1node}\n", "branch(GECKO_BRANCH) and head()") == [right]


def test_odd_file_names_and_text_round_trip(upstream, tmp_path):
    upstream.create_repo("l10n-central/ca-valencia")
    odd = ["with space.ftl", "trailing space ", "naïve/ünïcødé.ftl", "emoji 🎉.txt"]
    node, _ = upstream.commit_and_push(
        "l10n-central/ca-valencia", {path: path.encode() for path in odd},
        message="Añadir 🎉 strings", user="Zoë 🦊 <zoe@example.com>",
    )

    answer = get(upstream.repo_url("l10n-central/ca-valencia") + "json-pushes?version=2&full=1")[1]
    [changeset] = answer["pushes"]["1"]["changesets"]
    assert sorted(changeset["files"]) == sorted(odd)
    assert (changeset["desc"], changeset["author"]) == ("Añadir 🎉 strings", "Zoë 🦊 <zoe@example.com>")

    local = clone(upstream.repo_url("l10n-central/ca-valencia"), tmp_path / "ca")
    assert files(local, node) == sorted(odd)
    assert log(local, "{desc}|{author}\n") == ["Añadir 🎉 strings|Zoë 🦊 <zoe@example.com>"]


def test_error_fault_answers_500_then_clears(upstream, tmp_path):
    for name in ("l10n-central/de", "l10n-central/fr"):
        upstream.create_repo(name)
        upstream.commit_and_push(name, {"a": b"1"})
    pushes = "json-pushes?version=2"

    upstream.set_fault("error", "l10n-central/de")
    assert get(upstream.repo_url("l10n-central/de") + pushes)[0] == 500
    assert get(upstream.repo_url("l10n-central/fr") + pushes)[0] == 200
    assert hg("clone", "-U", upstream.repo_url("l10n-central/de"), str(tmp_path / "de")).returncode != 0
    clone(upstream.repo_url("l10n-central/fr"), tmp_path / "fr")

    upstream.set_fault("error")
    assert get(upstream.repo_url("l10n-central/fr") + pushes)[0] == 500
    upstream.set_fault(None)
    clone(upstream.repo_url("l10n-central/de"), tmp_path / "de")


def test_lie_fault_names_a_changeset_that_does_not_exist(upstream):
    upstream.create_repo("l10n-central/de")
    node, _ = upstream.commit_and_push("l10n-central/de", {"a": b"1"})
    upstream.set_fault("lie")

    changesets = get(upstream.repo_url("l10n-central/de") + "json-pushes?version=2")[1]["pushes"]["1"]["changesets"]
    assert changesets[0] == node and len(changesets) == 2 and len(changesets[1]) == 40


def test_hang_ends_with_stop_and_restart_on_the_same_port(upstream):
    upstream.create_repo("l10n-central/de")
    url = upstream.repo_url("l10n-central/de") + "json-pushes?version=2"
    upstream.hang_seconds = 30
    upstream.set_fault("hang")
    answers = []
    request = threading.Thread(target=lambda: answers.append(get(url)[0]))
    request.start()
    while not upstream.requests_seen:
        threading.Event().wait(0.01)
    port = upstream.port

    upstream.stop()
    request.join(timeout=5)
    assert answers == [503]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)

    upstream.set_fault(None)
    upstream.start(port=port)
    assert get(url) == (200, {"lastpushid": 0, "pushes": {}})


def test_unknown_repository_and_bad_parameters(upstream):
    upstream.create_repo("l10n-central/de")
    status, answer = get(upstream.url + "l10n-central/xx/json-pushes?version=2")
    assert status == 404 and "error" in answer
    assert get(upstream.url + "l10n-central/xx/?cmd=capabilities")[0] == 404
    for query in ("version=1", "", "version=2&startID=x", "version=2&endID=-1", "version=2&fromchange=abc"):
        assert get(upstream.repo_url("l10n-central/de") + "json-pushes?" + query)[0] == 400, query
    for name in ("../evil", "/abs", "a/./b", "a//b", "l10n central/de", ".hg", ""):
        with pytest.raises(ValueError):
            upstream.create_repo(name)


def test_build_linear_history(upstream, tmp_path):
    upstream.create_repo("bench")
    nodes = upstream.build_linear_history("bench", 60, files_per_changeset=3, merges_every=20, pushes=4)

    assert len(nodes) == len(set(nodes)) == 60
    pushlog = upstream.pushlog("bench")
    assert [push["id"] for push in pushlog] == [1, 2, 3, 4]
    assert [node for push in pushlog for node in push["changesets"]] == nodes
    local = clone(upstream.repo_url("bench"), tmp_path / "bench")
    assert log(local) == nodes
    assert len(log(local, rev="merge()")) == 2
    assert hg("verify", "-q", "-R", str(local)).returncode == 0
