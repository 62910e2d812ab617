"""The simulated github.com, checked with the real git client over HTTP, and the webhook payloads
and Pulse messages built from it. Plain pytest (no database); one test uses the real RabbitMQ."""

import json
import os
import socket
import subprocess
import time

import pytest
import requests
from kombu import Connection, Exchange, Queue

from simulated.github import (
    GITHUB_WEBHOOKS_EXCHANGE,
    NULL,
    TASKCLUSTER_GITHUB_EXCHANGE,
    SimulatedGitHub,
    publish_taskcluster_github,
    publish_webhook,
    push_payload,
    skips_ci,
    taskcluster_github_message,
    webhook_message,
)

REPO = "mozilla-l10n/firefox-l10n"


# conftest's autouse fixtures need Django, which nothing here uses: these keep the module runnable
# with -p no:django (and quick).
@pytest.fixture
def repository_base():
    pass


@pytest.fixture
def no_worker_left_behind():
    pass


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


@pytest.fixture
def git_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return dict(os.environ, HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")


@pytest.fixture
def git(git_env):
    def run(*args, check=True, env=None):
        result = subprocess.run(["git", *args], env=dict(git_env, **(env or {})), capture_output=True, text=True,
                                timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result
    return run


def protocol(version):
    return ["-c", f"protocol.version={version}"]


def log(git, clone, rev="--all"):
    return git("-C", str(clone), "log", "--format=%H", rev).stdout.split()


def remote_branches(git, url, version=2):
    out = git(*protocol(version), "ls-remote", "--heads", url).stdout
    return {ref.removeprefix("refs/heads/"): sha for sha, ref in (line.split("\t") for line in out.splitlines())}


# --- serving git -------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2])
def test_clone_and_fetch_over_http(github, git, tmp_path, version):
    github.create_repo(REPO)
    first = github.commit(REPO, {"de/browser/a.ftl": b"a = A\n"}, message="First")
    second = github.commit(REPO, {"fr/browser/b.ftl": b"b = B\n"}, message="Second")

    clone = tmp_path / "clone"
    git(*protocol(version), "clone", "--quiet", "--bare", github.repo_url(REPO), str(clone))
    assert log(git, clone) == [second, first]

    third = github.commit(REPO, {"de/browser/a.ftl": None}, message="Third")
    git(*protocol(version), "-C", str(clone), "fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*")
    assert log(git, clone) == [third, second, first]
    assert git("-C", str(clone), "ls-tree", "-r", "--name-only", third).stdout.split() == ["fr/browser/b.ftl"]


@pytest.mark.parametrize("version", [0, 2])
def test_ls_remote_sees_force_pushes_new_and_deleted_branches(github, git, version):
    github.create_repo(REPO)
    first = github.commit(REPO, {"a": b"1"})
    second = github.commit(REPO, {"a": b"2"})
    url = github.repo_url(REPO)
    assert remote_branches(git, url, version) == {"main": second}

    github.force_push(REPO, "main", first)
    side = github.commit(REPO, {"b": b"1"}, branch="feature", parents=[first])
    assert remote_branches(git, url, version) == {"main": first, "feature": side}

    github.delete_branch(REPO, "feature")
    assert remote_branches(git, url, version) == {"main": first}
    assert github.tip(REPO, "feature") is None


def test_repository_urls_as_github_writes_them(github, git):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    for url in (github.html_url(REPO), github.html_url(REPO) + ".git", github.repo_url(REPO),
                github.html_url(REPO) + ".git/"):
        assert remote_branches(git, url) == {"main": tip}, url
    missing = git("ls-remote", github.html_url("mozilla-l10n/nothing"), check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_merge_has_two_parents_and_both_sides(github, git, tmp_path):
    github.create_repo(REPO)
    base = github.commit(REPO, {"shared.ftl": b"s = S\n"})
    ours = github.commit(REPO, {"de/ours.ftl": b"o = O\n"})
    theirs = github.commit(REPO, {"fr/theirs.ftl": b"t = T\n"}, branch="side", parents=[base])
    merge = github.commit(REPO, {"it/merge.ftl": b"m = M\n"}, message="Merge side", parents=[ours, theirs])

    clone = tmp_path / "clone"
    git("clone", "--quiet", "--bare", github.repo_url(REPO), str(clone))
    assert git("-C", str(clone), "rev-list", "--parents", "-n1", merge).stdout.split() == [merge, ours, theirs]
    files = git("-C", str(clone), "ls-tree", "-r", "--name-only", merge).stdout.split()
    assert files == ["de/ours.ftl", "fr/theirs.ftl", "it/merge.ftl", "shared.ftl"]


def test_file_names_and_text_round_trip(github, git, tmp_path):
    github.create_repo(REPO)
    names = {"sr-Latn/a file with spaces.ftl": "x = y\n", 'quote"d/ünïcødé.ftl': "emoji = 🦊\n"}
    tip = github.commit(REPO, {name: text.encode() for name, text in names.items()}, message="Ünïcødé 🦊",
                        author="Zoë Ñ <zoe@example.com>")
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--bare", github.repo_url(REPO), str(clone))
    listed = git("-C", str(clone), "ls-tree", "-r", "-z", "--name-only", tip).stdout
    assert sorted(listed.split("\0")[:-1]) == sorted(names)
    for name, text in names.items():
        assert git("-C", str(clone), "show", f"{tip}:{name}").stdout == text
    assert git("-C", str(clone), "log", "-1", "--format=%an|%B", tip).stdout.strip() == "Zoë Ñ|Ünïcødé 🦊"


def test_build_history_of_ten_thousand_commits(github, git, tmp_path):
    github.create_repo(REPO)
    started = time.monotonic()
    shas = github.build_history(REPO, 10_000, merges_every=1000, locales=["de", "fr", "ja-JP-mac"])
    built = time.monotonic() - started
    print(f"build_history: 10,000 commits in {built:.2f} s")

    git_dir = str(github.git_dir(REPO))
    assert len(shas) == len(set(shas)) == 10_000
    assert github.tip(REPO) == shas[-1]
    assert git("--git-dir", git_dir, "rev-list", "--count", "main").stdout.strip() == "10000"
    merges = git("--git-dir", git_dir, "rev-list", "--merges", "--parents", "main").stdout.splitlines()
    assert len(merges) == 9
    for line in merges:
        merge, ours, theirs = line.split()
        # The side commit forks from the tip's parent, and the merge keeps what it changed.
        assert git("--git-dir", git_dir, "rev-parse", f"{theirs}^").stdout.strip() == \
            git("--git-dir", git_dir, "rev-parse", f"{ours}^").stdout.strip()
        side_files = git("--git-dir", git_dir, "diff-tree", "--no-commit-id", "-r", "--name-only", theirs).stdout
        assert git("--git-dir", git_dir, "diff", "--quiet", theirs, merge, "--", *side_files.split(),
                   check=False).returncode == 0
    assert git("--git-dir", git_dir, "ls-tree", "--name-only", "main").stdout.split() == ["de", "fr", "ja-JP-mac"]

    # Its speed is the benchmarks' business (bench/git_history_import.py prints it), not a test's.
    started = time.monotonic()
    git("clone", "--quiet", "--bare", github.repo_url(REPO), str(tmp_path / "clone"))
    print(f"git clone of it over HTTP: {time.monotonic() - started:.2f} s")
    assert git("--git-dir", str(tmp_path / "clone"), "rev-list", "--count", "main").stdout.strip() == "10000"


@pytest.mark.parametrize("version, post_buffer, encoding", [
    (0, None, "Content-Encoding: gzip"), (2, None, "Content-Encoding: gzip"),
    (0, 2048, "Transfer-Encoding: chunked"),
])
def test_fetch_negotiating_many_haves(github, git, tmp_path, version, post_buffer, encoding):
    """Big negotiation bodies come gzipped, or chunked when over http.postBuffer."""
    github.create_repo(REPO)
    tip = github.build_history(REPO, 20)[-1]
    github.create_repo("someone/unrelated")
    github.build_history("someone/unrelated", 2000, date=1)
    local = tmp_path / "local"
    git("clone", "--quiet", "--bare", str(github.git_dir("someone/unrelated")), str(local))

    trace = tmp_path / "trace"
    options = protocol(version) + (["-c", f"http.postBuffer={post_buffer}"] if post_buffer else [])
    git(*options, "-C", str(local), "fetch", "--quiet", github.repo_url(REPO), "main:theirs",
        env={"GIT_TRACE_CURL": str(trace), "GIT_TRACE_CURL_NO_DATA": "1"})
    assert git("-C", str(local), "rev-parse", "theirs").stdout.strip() == tip
    assert encoding in trace.read_text()


def test_info_refs_get_is_one_request_with_the_v0_advertisement(github):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    github.create_repo("mozilla-l10n/other")
    before = github.requests_seen

    response = requests.get(github.repo_url(REPO) + "info/refs?service=git-upload-pack", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert response.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert f"{tip} refs/heads/main\n".encode() in response.content
    assert response.content.endswith(b"0000")
    assert github.requests_seen == before + 1
    assert (github.requests_for(REPO), github.requests_for("mozilla-l10n/other")) == (1, 0)


def test_error_fault_fails_git_then_clears(github, git):
    github.create_repo(REPO)
    github.create_repo("mozilla-l10n/other")
    tip = github.commit(REPO, {"a": b"1"})
    github.commit("mozilla-l10n/other", {"a": b"2"})

    github.set_fault("error")
    failed = git("ls-remote", github.repo_url(REPO), check=False)
    assert failed.returncode != 0 and "500" in failed.stderr

    github.set_fault("error", REPO)
    assert git("ls-remote", github.repo_url(REPO), check=False).returncode != 0
    assert git("ls-remote", github.repo_url("mozilla-l10n/other"), check=False).returncode == 0

    github.set_fault(None)
    assert remote_branches(git, github.repo_url(REPO)) == {"main": tip}
    with pytest.raises(ValueError):
        github.set_fault("lie")


def test_hang_fault_delays_then_serves(github, git):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    github.hang_seconds = 0.5
    github.set_fault("hang", REPO)
    started = time.monotonic()
    assert remote_branches(git, github.repo_url(REPO), version=0) == {"main": tip}
    assert time.monotonic() - started >= 0.5


def test_stop_refuses_connections_until_restarted_on_the_same_port(github, git):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    url, port = github.repo_url(REPO), github.port
    github.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    refused = git("ls-remote", url, check=False)
    assert refused.returncode != 0 and "onnect" in refused.stderr
    github.start(port)
    assert remote_branches(git, url) == {"main": tip}


def test_push_over_http_is_refused(github, git, tmp_path):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    clone = tmp_path / "clone"
    git("clone", "--quiet", github.repo_url(REPO), str(clone))
    git("-C", str(clone), "-c", "user.name=X", "-c", "user.email=x@example.com", "commit", "--quiet",
        "--allow-empty", "-m", "mine")
    pushed = git("-C", str(clone), "push", "origin", "HEAD:main", check=False)
    assert pushed.returncode != 0 and "403" in pushed.stderr
    assert github.tip(REPO) == tip


# --- push webhook payloads ----------------------------------------------------


def test_push_payload_is_truthful_and_capped(github, git):
    github.create_repo(REPO)
    before = github.commit(REPO, {"de/a.ftl": b"a\n", "de/b.ftl": b"b\n"})
    shas = github.build_history(REPO, 24)
    after = github.commit(REPO, {"de/a.ftl": b"changed\n", "de/b.ftl": None, "fr/c.ftl": b"c\n"},
                          message="Update de, add fr\n\nMore words.", author="Pusher Person <pp@example.com>")
    payload = push_payload(github, REPO, before, after, pusher=("pusher", "pp@example.com"))

    assert (payload["ref"], payload["before"], payload["after"]) == ("refs/heads/main", before, after)
    flags = (payload["created"], payload["deleted"], payload["forced"], payload["base_ref"])
    assert flags == (False, False, False, None)
    assert [commit["id"] for commit in payload["commits"]] == (shas + [after])[-20:]
    head = payload["head_commit"]
    assert head == payload["commits"][-1]
    tree = git("--git-dir", str(github.git_dir(REPO)), "rev-parse", f"{after}^{{tree}}").stdout.strip()
    assert head["tree_id"] == tree
    assert head["message"] == "Update de, add fr\n\nMore words."
    assert (head["added"], head["removed"], head["modified"]) == (["fr/c.ftl"], ["de/b.ftl"], ["de/a.ftl"])
    assert head["author"] == {"name": "Pusher Person", "email": "pp@example.com", "username": "pp"}
    assert head["distinct"] is True
    assert head["url"] == f"{github.html_url(REPO)}/commit/{after}"
    assert payload["compare"] == f"{github.html_url(REPO)}/compare/{before[:12]}...{after[:12]}"
    assert payload["pusher"] == {"name": "pusher", "email": "pp@example.com"}
    assert payload["sender"]["login"] == "pusher"

    repository = payload["repository"]
    assert repository["full_name"] == REPO and repository["name"] == "firefox-l10n"
    assert repository["owner"]["login"] == repository["owner"]["name"] == "mozilla-l10n"
    assert repository["clone_url"] == github.html_url(REPO) + ".git"
    assert repository["html_url"] == repository["url"] == github.html_url(REPO)
    assert repository["default_branch"] == repository["master_branch"] == "main"
    assert isinstance(repository["created_at"], int) and isinstance(repository["pushed_at"], int)
    json.dumps(payload)  # it is what GitHub would send: JSON


def test_push_payload_of_a_merge_lists_the_side_files(github):
    github.create_repo(REPO)
    base = github.commit(REPO, {"shared": b"s"})
    ours = github.commit(REPO, {"ours": b"o"})
    theirs = github.commit(REPO, {"theirs": b"t"}, branch="side", parents=[base])
    merge = github.commit(REPO, {}, message="Merge", parents=[ours, theirs])
    payload = push_payload(github, REPO, ours, merge)
    # The side commit is already on branch "side": not distinct, as GitHub marks it.
    assert [(c["id"], c["distinct"]) for c in payload["commits"]] == [(theirs, False), (merge, True)]
    assert payload["head_commit"]["added"] == ["theirs"]


def test_new_branch_deleted_branch_and_force_push_payloads(github):
    github.create_repo(REPO)
    first = github.commit(REPO, {"a": b"1"})
    second = github.commit(REPO, {"a": b"2"})

    github.set_branch(REPO, "release", second)
    created = push_payload(github, REPO, NULL, second, ref="refs/heads/release")
    assert (created["before"], created["created"], created["deleted"], created["forced"]) == (NULL, True, False, False)
    assert created["base_ref"] == "refs/heads/main"
    assert created["commits"] == [] and created["head_commit"]["id"] == second
    assert created["head_commit"]["distinct"] is False
    assert created["compare"] == f"{github.html_url(REPO)}/compare/release"

    new = github.commit(REPO, {"b": b"1"}, branch="feature", parents=[second])
    feature = push_payload(github, REPO, NULL, new, ref="refs/heads/feature")
    assert [c["id"] for c in feature["commits"]] == [new] and feature["base_ref"] is None

    github.delete_branch(REPO, "release")
    deleted = push_payload(github, REPO, second, NULL, ref="refs/heads/release")
    assert (deleted["after"], deleted["deleted"], deleted["created"]) == (NULL, True, False)
    assert deleted["commits"] == [] and deleted["head_commit"] is None
    assert deleted["compare"].endswith(f"/compare/{second[:12]}...000000000000")

    github.force_push(REPO, "main", first)
    forced = push_payload(github, REPO, second, first)
    assert forced["forced"] is True and forced["commits"] == []
    rewritten = github.commit(REPO, {"a": b"3"})
    assert push_payload(github, REPO, second, rewritten)["forced"] is True
    assert push_payload(github, REPO, first, rewritten)["forced"] is False
    assert push_payload(github, REPO, first, rewritten, forced=True)["forced"] is True


# --- Pulse messages -----------------------------------------------------------


def drain(queue, expected, timeout=5):
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is None:
            time.sleep(0.05)
        else:
            messages.append(message)
    return messages


def test_webhook_message(github):
    github.create_repo(REPO)
    tip = github.commit(REPO, {"a": b"1"})
    payload = push_payload(github, REPO, NULL, tip)
    routing_key, body = webhook_message(payload)
    assert routing_key == "mozilla-l10n/firefox-l10n/push"
    assert body["event"] == "push" and body["payload"] == payload
    assert len(body["request_id"]) == 36
    assert body["_meta"] | {"sent": None} == {"exchange": GITHUB_WEBHOOKS_EXCHANGE, "routing_key": routing_key,
                                              "serializer": "json", "sent": None}


def test_taskcluster_github_message(github):
    name = "mozilla-l10n/firefox.l10n"
    github.create_repo(name)
    before = github.commit(name, {"a": b"1"})
    after = github.commit(name, {"a": b"2"})
    payload = push_payload(github, name, before, after, pusher=("someone", "someone@example.com"))
    routing_key, body = taskcluster_github_message(payload, installation_id=42)

    assert routing_key == "primary.mozilla-l10n.firefox%l10n"
    assert {key: body[key] for key in ("version", "organization", "repository", "installationId", "tasks_for",
                                       "branch")} == {
        "version": 1, "organization": "mozilla-l10n", "repository": "firefox%l10n", "installationId": 42,
        "tasks_for": "github-push", "branch": "main"}
    assert len(body["eventId"]) == 36
    assert body["body"] == dict(payload, installation=body["body"]["installation"])
    assert body["body"]["installation"]["id"] == 42
    clone_url = github.html_url(name) + ".git"
    assert body["details"] == {
        "event.base.ref": "refs/heads/main", "event.base.repo.branch": "main", "event.base.repo.name": "firefox.l10n",
        "event.base.repo.url": clone_url, "event.base.sha": before, "event.base.user.login": "someone",
        "event.head.ref": "refs/heads/main", "event.head.repo.branch": "main", "event.head.repo.name": "firefox.l10n",
        "event.head.repo.url": clone_url, "event.head.sha": after, "event.head.user.login": "someone",
        "event.head.user.id": payload["sender"]["id"], "event.head.user.email": "someone@users.noreply.github.com",
        "event.type": "push",
    }
    assert set(body) == {"version", "organization", "repository", "installationId", "eventId", "tasks_for", "branch",
                         "details", "body"}


def test_ci_skip_suppresses_only_the_taskcluster_format(github):
    github.create_repo(REPO)
    first = github.commit(REPO, {"a": b"1"})
    skipped = github.commit(REPO, {"a": b"2"}, message="Fix typo [ci skip]")
    also = github.commit(REPO, {"a": b"3"}, message="[SKIP CI] Fix another")
    normal = github.commit(REPO, {"a": b"4"}, message="Real change")

    for tip in (skipped, also):
        payload = push_payload(github, REPO, first, tip)
        assert skips_ci(payload) and taskcluster_github_message(payload) is None
        assert webhook_message(payload)[0] == "mozilla-l10n/firefox-l10n/push"
        assert publish_taskcluster_github(None, "primary.mozilla-l10n.firefox-l10n", {"body": payload}) is None
    # Only the head commit counts.
    assert taskcluster_github_message(push_payload(github, REPO, first, normal)) is not None


def test_both_formats_reach_rabbitmq(github, broker_url):
    github.create_repo(REPO)
    before = github.commit(REPO, {"a": b"1"})
    after = github.commit(REPO, {"a": b"2"})
    payload = push_payload(github, REPO, before, after)
    skip = push_payload(github, REPO, after, github.commit(REPO, {"a": b"3"}, message="[ci skip]"))

    with Connection(broker_url) as connection:
        channel = connection.default_channel
        queues = {}
        for exchange_name in (GITHUB_WEBHOOKS_EXCHANGE, TASKCLUSTER_GITHUB_EXCHANGE):
            exchange = Exchange(exchange_name, type="topic", durable=True)
            exchange(channel).declare()
            queues[exchange_name] = Queue(f"queue/test/{exchange_name.split('/')[1]}", exchange, routing_key="#",
                                          exclusive=True)(channel)
            queues[exchange_name].declare()

        webhook = webhook_message(payload)
        taskcluster = taskcluster_github_message(payload)
        assert publish_webhook(connection, *webhook) == "mozilla-l10n/firefox-l10n/push"
        assert publish_taskcluster_github(connection, *taskcluster) == "primary.mozilla-l10n.firefox-l10n"
        publish_webhook(connection, *webhook_message(skip))
        assert taskcluster_github_message(skip) is None

        received = {name: drain(queue, 2 if name == GITHUB_WEBHOOKS_EXCHANGE else 1) for name, queue in queues.items()}
        assert all(queue.get(no_ack=True) is None for queue in queues.values())  # the [ci skip] push is not there

    (first, second) = received[GITHUB_WEBHOOKS_EXCHANGE]
    assert first.delivery_info["routing_key"] == "mozilla-l10n/firefox-l10n/push"
    assert first.content_type == "application/json" and first.properties["delivery_mode"] == 2
    assert json.loads(first.body) == webhook[1]
    assert json.loads(second.body)["payload"]["after"] == skip["after"]
    (only,) = received[TASKCLUSTER_GITHUB_EXCHANGE]
    assert only.delivery_info["routing_key"] == "primary.mozilla-l10n.firefox-l10n"
    assert json.loads(only.body) == taskcluster[1]
