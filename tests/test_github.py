"""GitHub repositories as first-class repositories: tracked, backfilled, and fed by both Pulse formats.

The real git client fetches from the simulated GitHub (git's own http-backend over smart HTTP); the
notifications are shaped exactly as GitHub and Taskcluster send them and go through the real
RabbitMQ and the real worker.
"""

import json
import shutil
import threading
from datetime import datetime, timezone

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kombu import Connection

from l10n.elmo import parse_elmo
from l10n.ingest import ingest_task
from l10n.models import Run
from l10n.store import config_repository
from life import storage
from life.backfill import backfill
from life.git import clone as git_clone
from life.git.remote import parse_advertisement
from life.kinds import for_repository
from life.models import NULL_REVISION, Changeset, Forest, Push, Repository, SyncState, Tree
from plumbing.errors import PermanentError
from simulated import compare
from simulated.github import (
    NULL,
    SimulatedGitHub,
    publish_taskcluster_github,
    publish_webhook,
    push_payload,
    taskcluster_github_message,
    webhook_message,
)
from simulated.harness import WorkerProcess, declare_queues, queue_depth, run_worker
from simulated.taskcluster import SimulatedQueue
from worker import github as source
from worker.dispatch import Delivery
from worker.models import DeadLetter

L10N = "mozilla-l10n/firefox-l10n"
SOURCE = "mozilla-l10n/firefox-l10n-source"


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


def track(github, full_name, *args):
    call_command("track", github.repo_url(full_name), *args)
    return Repository.objects.get(name=full_name)


def pushes(repository):
    """[(push id, user, {revisions})] of ``repository``."""
    return [(p.push_id, p.user, {c.revision for c in p.changesets.all()})
            for p in Push.objects.filter(repository=repository).order_by("push_id")]


def stored_revision(repository):
    return SyncState.objects.get(repository=repository).stored_revision


def publish_both(connection, github, full_name, before, after, **options):
    """What GitHub and Taskcluster publish for one push (Taskcluster nothing for [ci skip])."""
    payload = push_payload(github, full_name, before, after, **options)
    publish_webhook(connection, *webhook_message(payload))
    message = taskcluster_github_message(payload)
    if message is not None:
        publish_taskcluster_github(connection, *message)
    return payload


def publish(broker_url, *messages):
    """Publish (exchange kind, routing key, body) triples: kind "webhook" or "taskcluster".

    With publisher confirms: a message is in its queue when this returns (a large one could
    otherwise still be on its way when the connection closes).
    """
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        for kind, routing_key, body in messages:
            (publish_webhook if kind == "webhook" else publish_taskcluster_github)(conn, routing_key, body)


# --- tracking ---------------------------------------------------------------------


@pytest.mark.django_db
def test_track_imports_a_github_repository_with_its_commits_as_changesets(github, capsys):
    github.create_repo(L10N, default_branch="trunk")
    root = github.commit(L10N, {"de/browser/a.ftl": b"a = A\n", "fr/browser/a.ftl": b"a = A\n"},
                         message="First locales\n\nWith a body.\n", author="Zoë Ñ <zoe@example.com>", branch="trunk")
    ours = github.commit(L10N, {"de/browser/a.ftl": b"a = B\n"}, message="de: update", branch="trunk")
    theirs = github.commit(L10N, {"fr/browser/b.ftl": b"b = B\n", "sr-Latn/a file.ftl": b"x = y\n"},
                           message="fr: new file 🦊", branch="side", parents=[root])
    merge = github.commit(L10N, {"it/browser/a.ftl": b"a = A\n"}, message="Merge side", branch="trunk",
                          parents=[ours, theirs])
    empty = github.commit(L10N, {}, message="", branch="trunk")

    repository = track(github, L10N)

    assert (repository.kind, repository.branch, repository.url) == ("git", "trunk", github.repo_url(L10N))
    assert "tracking git repository mozilla-l10n/firefox-l10n" in capsys.readouterr().out
    commits = {c.revision: c for c in Changeset.objects.filter(repositories=repository)}
    assert set(commits) == {root, ours, theirs, merge, empty}
    first = commits[root]
    assert (first.user, first.description, first.branch, first.placeholder) == (
        "Zoë Ñ <zoe@example.com>", "First locales\n\nWith a body.", None, False)
    assert [p.revision for p in first.parents.all()] == [NULL_REVISION]
    assert sorted(f.path for f in first.files.all()) == ["de/browser/a.ftl", "fr/browser/a.ftl"]
    assert sorted(f.path for f in commits[theirs].files.all()) == ["fr/browser/b.ftl", "sr-Latn/a file.ftl"]
    assert commits[theirs].description == "fr: new file 🦊"
    # A merge lists what differs from its first parent, as Mercurial's files would.
    assert {p.revision for p in commits[merge].parents.all()} == {ours, theirs}
    assert sorted(f.path for f in commits[merge].files.all()) == [
        "fr/browser/b.ftl", "it/browser/a.ftl", "sr-Latn/a file.ftl"]
    assert (commits[empty].description, commits[empty].files.count()) == ("", 0)
    # What was there before tracking began is one push by nobody known.
    assert pushes(repository) == [(1, "", {root, ours, theirs, merge, empty})]
    assert stored_revision(repository) == empty
    state = SyncState.objects.get(repository=repository)
    assert (state.stored_push_id, state.failures, state.last_error) == (1, 0, "")


@pytest.mark.django_db
def test_an_import_in_many_batches_links_each_commit_to_its_files_once_each(github, monkeypatch):
    """Batches of two commits: a path met in an early batch is found again in a later one (each batch
    asks the database only for paths it has not met) and is one File row, whatever batch touches it."""
    from life.git import ingest as git_ingest
    from life.models import File

    monkeypatch.setattr(git_ingest, "CHUNK", 2)
    github.create_repo(L10N)
    touched = [{"de/a.ftl": b"1"}, {"fr/a.ftl": b"1"}, {"de/a.ftl": b"2", "de/b.ftl": b"1"}, {"it/a.ftl": b"1"},
               {"de/b.ftl": b"2", "fr/a.ftl": b"2"}, {"de/a.ftl": b"3", "it/b.ftl": b"1"}, {"fr/a.ftl": b"3"}]
    commits = [github.commit(L10N, files, message=f"sync {n}") for n, files in enumerate(touched)]

    repository = track(github, L10N)

    stored = {c.revision: sorted(f.path for f in c.files.all()) for c in Changeset.objects.filter(repositories=repository)}
    assert stored == {commit: sorted(files) for commit, files in zip(commits, touched, strict=True)}
    paths = sorted({path for files in touched for path in files})
    assert sorted(File.objects.values_list("path", flat=True)) == paths
    assert pushes(repository) == [(1, "", set(commits))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failing", ["a batch", "the links"])
def test_an_import_that_fails_half_way_links_nothing_and_the_next_one_completes_it(github, monkeypatch, failing):
    """Batches are committed as they go; the links to the repository and the push come in the push's
    transaction, or not at all. On PostgreSQL and MariaDB a first import stores its batches in a thread,
    on a connection of its own, while this one links them: a failure on either side stops both."""
    from life import store as life_store
    from life.git import ingest as git_ingest

    monkeypatch.setattr(git_ingest, "CHUNK", 3)
    github.create_repo(L10N)
    github.build_history(L10N, 20, locales=["de", "fr"])
    repository = Repository.objects.create(name=L10N, url=github.repo_url(L10N), kind="git", branch="main")
    store_changesets, link_to_repository, stored = life_store.store_changesets, git_ingest._link_to_repository, []

    def storing(records, known_files=None):
        if failing == "a batch" and len(stored) == 3:
            raise RuntimeError("a batch failed")
        stored.append(records)
        return store_changesets(records, known_files)

    def linking(*args):
        if failing == "the links" and len(stored) >= 3:
            raise RuntimeError("the links failed")
        return link_to_repository(*args)

    monkeypatch.setattr(life_store, "store_changesets", storing)
    monkeypatch.setattr(git_ingest, "_link_to_repository", linking)
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        for_repository(repository).reprocess(repository)

    assert not Push.objects.filter(repository=repository).exists()
    assert not Changeset.objects.filter(repositories=repository).exists()
    state = SyncState.objects.get(repository=repository)
    assert (state.failures, state.last_error) == (1, f"RuntimeError: {failing} failed")
    assert not any(thread.name.startswith(("git-store", "git-log")) for thread in threading.enumerate())

    monkeypatch.setattr(life_store, "store_changesets", store_changesets)
    monkeypatch.setattr(git_ingest, "_link_to_repository", link_to_repository)
    for_repository(repository).reprocess(repository)

    upstream = set(git_clone.run_git(github.git_dir(L10N), ["rev-list", "main"], "git rev-list").decode().split())
    assert len(upstream) == 20 and pushes(repository) == [(1, "", upstream)]
    assert Changeset.objects.exclude(revision=NULL_REVISION).count() == 20  # each once
    assert Push.changesets.through.objects.count() == Repository.changesets.through.objects.count() == 20
    assert stored_revision(repository) == github.tip(L10N)


def _missing_blobs(repository):
    """Blobs the clone's tracked branch reaches that the clone does not hold (asked without fetching them)."""
    out = git_clone.run_git(git_clone.git_dir(repository), ["rev-list", "--objects", "--missing=print", "main"],
                            "git rev-list")
    return {line[1:41].decode() for line in out.splitlines() if line.startswith(b"?")}


@pytest.mark.django_db
def test_a_clone_holds_the_history_without_its_blobs_and_a_reader_gets_what_it_wants_in_one_fetch(github):
    github.create_repo(L10N)
    versions = [{f"{locale}/browser/{name}.ftl": f"{name} = {locale} {n}\n".encode()
                 for locale in ("de", "fr", "it") for name in ("a", "b")} for n in range(4)]
    commits = [github.commit(L10N, files, message=f"sync {n}") for n, files in enumerate(versions)]

    repository = track(github, L10N)

    # Storing the history read no blob: the clone has none of the 24 versions.
    assert len(_missing_blobs(repository)) == 24
    kind = for_repository(repository)
    for revision, files in ((commits[-1], versions[-1]), (commits[0], versions[0])):
        requests = github.requests_for(L10N)
        listing = kind.list_files(repository, revision)
        read = {path: data for path, _, data in kind.read_files(repository, listing, 1 << 20)}
        assert read == files
        # Six missing blobs, one fetch (the advertisement and one upload-pack request), not one per blob.
        assert github.requests_for(L10N) - requests == 2
        requests = github.requests_for(L10N)
        assert {path: data for path, _, data in kind.read_files(repository, listing, 1 << 20)} == files
        assert github.requests_for(L10N) == requests  # held now: nothing asked upstream
    assert len(_missing_blobs(repository)) == 12

    # A push brings its own blobs: what it changed is read without asking upstream.
    pushed = github.commit(L10N, {"de/browser/a.ftl": b"a = new\n"})
    requests = github.requests_for(L10N)
    for_repository(repository).reprocess(repository)
    # One fetch (protocol v2: the advertisement, ls-refs, fetch), none for the blobs the clone lacks.
    assert github.requests_for(L10N) - requests <= 3
    requests = github.requests_for(L10N)
    changed = [entry for entry in kind.list_files(repository, pushed) if entry[0] == "de/browser/a.ftl"]
    assert [data for _, _, data in kind.read_files(repository, changed, 1 << 20)] == [b"a = new\n"]
    assert github.requests_for(L10N) == requests


@pytest.mark.django_db
def test_a_server_that_cannot_filter_gives_a_whole_clone_that_reads_without_fetching(github):
    github.create_repo(L10N, filters=False)
    first = github.commit(L10N, {"de/a.ftl": b"a = 1\n"})
    github.commit(L10N, {"de/a.ftl": b"a = 2\n"})

    repository = track(github, L10N)

    assert _missing_blobs(repository) == set()
    kind = for_repository(repository)
    requests = github.requests_for(L10N)
    assert [data for _, _, data in kind.read_files(repository, kind.list_files(repository, first), 1 << 20)] == [
        b"a = 1\n"]
    assert github.requests_for(L10N) == requests


@pytest.mark.django_db
def test_track_names_kinds_branches_and_forests(github, hgmo, capsys):
    github.create_repo(SOURCE)
    github.commit(SOURCE, {"_configs/browser.toml": compare.CONFIG})
    github.commit(SOURCE, {"x": b"1"}, branch="release", parents=[])
    hgmo.create_repo("l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a.ftl": b"a = 1\n"})

    call_command("track", github.html_url(SOURCE) + ".git", "--name", "en-US/release", "--branch", "release")
    call_command("track", hgmo.repo_url("l10n-central/de").rstrip("/"), "--forest", "l10n-central")

    source_repo = Repository.objects.get(name="en-US/release")
    assert (source_repo.kind, source_repo.branch, source_repo.url) == ("git", "release", github.repo_url(SOURCE))
    assert Push.objects.get(repository=source_repo).changesets.count() == 1
    de = Repository.objects.get(name="l10n-central/de")
    assert (de.kind, de.branch, de.url, de.locale.code) == ("hg", "", hgmo.repo_url("l10n-central/de"), "de")
    assert de.forest == Forest.objects.get(name="l10n-central") and de.forest.url == hgmo.url + "l10n-central/"
    assert Push.objects.filter(repository=de).count() == 1

    # Again: nothing new; differently: refused.
    call_command("track", github.repo_url(SOURCE), "--name", "en-US/release", "--branch", "release")
    assert "0 new pushes, 0 new changesets" in capsys.readouterr().out.splitlines()[-1]
    with pytest.raises(CommandError, match="already tracked as git"):
        call_command("track", github.repo_url(SOURCE), "--name", "en-US/release")
    with pytest.raises(CommandError, match="--branch is for git repositories"):
        call_command("track", hgmo.repo_url("l10n-central/de"), "--branch", "main", "--name", "other")
    with pytest.raises(CommandError, match="not a valid git branch name"):
        call_command("track", github.repo_url(SOURCE), "--name", "x/y", "--branch", "a..b")
    with pytest.raises(CommandError, match="does not answer as a git repository"):
        call_command("track", hgmo.repo_url("l10n-central/de"), "--kind", "git", "--name", "z/z")
    assert Repository.objects.count() == 2


@pytest.mark.django_db
def test_reprocess_and_reclone_a_git_repository(github):
    github.create_repo(L10N)
    github.build_history(L10N, 30, merges_every=10, locales=["de", "fr"])
    repository = track(github, L10N)
    tip = github.commit(L10N, {"de/new.ftl": b"n = N\n"})

    call_command("reprocess-repo", L10N)
    call_command("reprocess-repo", L10N, "--reclone")

    assert [(push_id, user, len(revisions)) for push_id, user, revisions in pushes(repository)] == [
        (1, "", 30), (2, "", 1)]
    assert pushes(repository)[1][2] == {tip}
    assert Changeset.objects.filter(repositories=repository).count() == 31


@pytest.mark.django_db
def test_an_imports_progress_counts_the_commits_to_store_first_all_then_what_is_new(github, caplog):
    github.create_repo(L10N)
    github.build_history(L10N, 2500, merges_every=500, locales=["de", "fr"])  # more than one batch
    caplog.set_level("INFO", logger="life.reprocess")
    track(github, L10N)
    for n in range(2):
        github.commit(L10N, {"de/new.ftl": f"n = {n}\n".encode()})
    call_command("reprocess-repo", L10N)

    assert [record.getMessage() for record in caplog.records if record.name == "life.reprocess"] == [
        f"{L10N}: 1000/2500 commits", f"{L10N}: 2500/2500 commits", f"{L10N}: 2/2 commits"]


def snapshot(directory):
    """Every file of a clone, with its bytes: what a reader of the shared storage sees."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


@pytest.mark.django_db
def test_a_failed_reclone_leaves_the_git_clone_in_place(github):
    github.create_repo(L10N)
    github.build_history(L10N, 5, locales=["de"])
    repository = track(github, L10N)
    clone = storage.clone_path(repository) / ".git"
    before = snapshot(clone)
    github.set_fault("error", L10N)

    with pytest.raises(CommandError, match="500"):
        call_command("reprocess-repo", L10N, "--reclone")

    assert snapshot(clone) == before
    assert not any((storage.base() / ".staging").iterdir())


@pytest.mark.django_db
def test_every_new_clone_keeps_gits_maintenance_in_the_foreground(github):
    """Background maintenance would outlive the timeout of the command that started it: a clone
    made by ``git clone`` and one made by init and fetch (a fork tracked before its owner) both say no."""
    github.create_repo(L10N)
    github.build_history(L10N, 3, locales=["de"])
    owner = Repository.objects.create(name=L10N, url=github.repo_url(L10N), kind="git", branch="main")
    fork = Repository.objects.create(name="someone/firefox-l10n", url=github.repo_url(L10N), kind="git",
                                     branch="main", fork_of=owner)
    for repository, made_by in ((fork, "init and fetch"), (owner, "git clone")):
        shutil.rmtree(storage.clone_path(owner), ignore_errors=True)
        for_repository(repository).reprocess(repository)
        directory = git_clone.git_dir(repository)
        settings = {key: git_clone.run_git(directory, ["config", "--local", key], "git config").decode().strip()
                    for key in ("gc.autoDetach", "maintenance.autoDetach")}
        assert settings == {"gc.autoDetach": "false", "maintenance.autoDetach": "false"}, made_by
        assert git_clone.resolve(directory, git_clone.tracking_ref(repository)) == github.tip(L10N), made_by


@pytest.mark.django_db
def test_git_follows_no_redirect_and_never_contacts_its_target(github, tmp_path):
    github.create_repo(L10N)
    github.build_history(L10N, 2, locales=["de"])
    with SimulatedGitHub(tmp_path / "elsewhere") as elsewhere:
        elsewhere.create_repo(L10N)
        repository = Repository.objects.create(name=L10N, url=github.repo_url(L10N), kind="git", branch="main")
        github.set_fault("redirect", L10N, redirect_to=elsewhere.url)

        with pytest.raises(PermanentError, match="redirect to .* refused"):
            for_repository(repository).catch_up(repository)  # the remote tip, asked over HTTP
        with pytest.raises(PermanentError, match="redirect"), storage.clone_lock(repository):
            git_clone.update_clone(repository)  # git itself

        assert elsewhere.requests_seen == 0


@pytest.mark.django_db
def test_any_failure_of_a_git_repository_is_recorded_in_its_sync_state(github, repository_base):
    github.create_repo(L10N)
    github.build_history(L10N, 3, locales=["de"])
    repository = Repository.objects.create(name=L10N, url=github.repo_url(L10N), kind="git", branch="main")
    repository_base.mkdir(parents=True, exist_ok=True)
    (repository_base / "mozilla-l10n").write_text("a file where the clone's directory must go, as a full disk")

    with pytest.raises(OSError):
        for_repository(repository).catch_up(repository)

    state = SyncState.objects.get(repository=repository)
    assert state.failures == 1 and state.last_error.startswith(("FileExistsError", "NotADirectoryError"))
    assert not Push.objects.filter(repository=repository).exists()


# --- notifications through the real broker and worker ---------------------------------


@pytest.mark.django_db
def test_pushes_arrive_in_both_formats_and_are_stored_once(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"de/a.ftl": b"a = 1\n"})
    repository = track(github, L10N)
    first = github.commit(L10N, {"de/a.ftl": b"a = 2\n"}, message="de: one")
    second = github.commit(L10N, {"fr/a.ftl": b"a = 1\n"}, message="fr: two")
    payload_a = push_payload(github, L10N, base, second, pusher=("mozilla-pontoon", "pontoon@example.com"))
    third = github.commit(L10N, {"it/a.ftl": b"a = 1\n"}, message="it: three")
    payload_b = push_payload(github, L10N, second, third, pusher=("flod", "flod@example.com"))
    declare_queues()
    publish(broker_url,
            ("webhook", *webhook_message(payload_a)), ("taskcluster", *taskcluster_github_message(payload_a)),
            ("webhook", *webhook_message(payload_b)), ("taskcluster", *taskcluster_github_message(payload_b)))

    worker = run_worker(max_messages=4)

    assert worker.handled == 4
    assert pushes(repository) == [(1, "", {base}), (2, "mozilla-pontoon", {first, second}), (3, "flod", {third})]
    dates = dict(Push.objects.filter(repository=repository).values_list("push_id", "push_date"))
    assert dates[2] == datetime.fromtimestamp(payload_a["repository"]["pushed_at"], timezone.utc)
    assert stored_revision(repository) == third
    assert not DeadLetter.objects.exists()
    assert queue_depth(broker_url, "github-webhooks") == queue_depth(broker_url, "taskcluster-github") == 0


@pytest.mark.django_db
def test_force_push_stores_what_it_added_and_a_reset_stores_nothing(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"de/a.ftl": b"a = 1\n"})
    repository = track(github, L10N)
    mistake = github.commit(L10N, {"de/a.ftl": b"a = oops\n"}, message="oops")
    with Connection(broker_url) as conn:
        declare_queues()
        publish_both(conn, github, L10N, base, mistake)
        run_worker(max_messages=2)
        fixed = github.commit(L10N, {"de/a.ftl": b"a = 2\n"}, parents=[base], message="fixed")  # moves main
        forced = publish_both(conn, github, L10N, mistake, fixed)
        run_worker(max_messages=2)
        github.force_push(L10N, "main", base)  # back to what was there first
        publish_both(conn, github, L10N, fixed, base)
        run_worker(max_messages=2)

    assert forced["forced"] is True
    assert pushes(repository) == [(1, "", {base}), (2, "octocat", {mistake}), (3, "octocat", {fixed})]
    assert stored_revision(repository) == fixed  # the reset was already stored: nothing fetched for it
    requests = github.requests_for(L10N)
    backfill()  # the branch moved back: a fetch finds nothing new
    assert pushes(repository)[-1][0] == 3 and stored_revision(repository) == base
    assert github.requests_for(L10N) - requests > 1
    requests = github.requests_for(L10N)
    backfill()  # and from then on one request says so
    assert github.requests_for(L10N) - requests == 1


@pytest.mark.django_db
def test_a_recreated_branch_takes_what_is_not_stored(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    github.delete_branch(L10N, "main")
    deletion = push_payload(github, L10N, base, NULL)
    new = github.commit(L10N, {"a": b"2"}, parents=[base], branch="main")
    created = push_payload(github, L10N, NULL, new)
    declare_queues()
    publish(broker_url, ("webhook", *webhook_message(deletion)), ("webhook", *webhook_message(created)))

    run_worker(max_messages=2)

    assert created["created"] is True and deletion["deleted"] is True
    assert pushes(repository) == [(1, "", {base}), (2, "octocat", {new})]


@pytest.mark.django_db
def test_other_branches_tags_deletions_and_events_are_skipped_without_fetching(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    feature = github.commit(L10N, {"b": b"1"}, branch="feature", parents=[base])
    github.delete_branch(L10N, "feature")
    messages = [push_payload(github, L10N, NULL, feature, ref="refs/heads/feature"),
                push_payload(github, L10N, NULL, base, ref="refs/tags/v1"),
                push_payload(github, L10N, base, NULL)]  # the tracked branch deleted
    declare_queues()
    requests = github.requests_for(L10N)
    issue = ("mozilla-l10n/firefox-l10n/issues", b"not even JSON: other events are not read")
    publish(broker_url, *(("webhook", *webhook_message(m)) for m in messages),
            *(("taskcluster", *taskcluster_github_message(m)) for m in messages[:2]), ("webhook", *issue))

    run_worker(max_messages=6)

    assert pushes(repository) == [(1, "", {base})]
    assert github.requests_for(L10N) == requests
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_duplicate_late_and_out_of_order_deliveries_store_nothing_twice(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    one = github.commit(L10N, {"a": b"2"}, message="one")
    push_one = push_payload(github, L10N, base, one, pusher=("first", "first@example.com"))
    two = github.commit(L10N, {"a": b"3"}, message="two")
    push_two = push_payload(github, L10N, one, two, pusher=("second", "second@example.com"))
    declare_queues()
    # The second push's notification arrives first: the first push becomes a push of its own, by
    # nobody known until its own notification arrives and names its pusher.
    publish(broker_url, ("webhook", *webhook_message(push_two)), ("webhook", *webhook_message(push_one)),
            ("webhook", *webhook_message(push_two)), ("taskcluster", *taskcluster_github_message(push_one)))
    run_worker(max_messages=4)

    assert pushes(repository) == [(1, "", {base}), (2, "first", {one}), (3, "second", {two})]

    # The backfill records a push before its notification arrives.
    three = github.commit(L10N, {"a": b"4"}, message="three")
    push_three = push_payload(github, L10N, two, three, pusher=("third", "third@example.com"))
    assert backfill().count("caught up") == 1
    requests = github.requests_for(L10N)
    publish(broker_url, ("webhook", *webhook_message(push_three)), ("taskcluster", *taskcluster_github_message(push_three)))
    run_worker(max_messages=2)

    # Its notification then names its pusher.
    assert pushes(repository)[3:] == [(4, "third", {three})]
    assert github.requests_for(L10N) == requests  # a stored push needs no fetch
    assert Changeset.objects.filter(repositories=repository).count() == 4


@pytest.mark.django_db
@pytest.mark.parametrize("early, late", [("taskcluster", "webhook"), ("webhook", "taskcluster")])
def test_out_of_order_the_earlier_push_keeps_its_pusher_and_time(github, broker_url, worker_env, early, late):
    """The two formats travel on two queues, which reorder pushes in production: the later push's
    message is handled first and stores both pushes; the earlier one's message, on the other queue,
    then gives that push its pusher and time (and a push it did not announce keeps nobody's)."""
    github.create_repo(L10N)
    base = github.commit(L10N, {"de/a.ftl": b"a = 1\n"})
    repository = track(github, L10N)
    one = github.commit(L10N, {"de/a.ftl": b"a = 2\n"}, message="de: one")
    push_one = push_payload(github, L10N, base, one, pusher=("mozilla-pontoon", "pontoon@example.com"))
    two = github.commit(L10N, {"fr/a.ftl": b"a = 1\n"}, message="fr: two")
    push_two = push_payload(github, L10N, one, two, pusher=("flod", "flod@example.com"))
    three = github.commit(L10N, {"it/a.ftl": b"a = 1\n"}, message="it: three")
    four = github.commit(L10N, {"it/a.ftl": b"a = 2\n"}, message="it: four")
    push_four = push_payload(github, L10N, three, four, pusher=("someone", "someone@example.com"))
    message = {"webhook": webhook_message, "taskcluster": taskcluster_github_message}
    declare_queues()
    publish(broker_url, (early, *message[early](push_two)))
    run_worker(max_messages=1)
    assert pushes(repository) == [(1, "", {base}), (2, "", {one}), (3, "flod", {two})]

    publish(broker_url, (late, *message[late](push_one)))
    run_worker(max_messages=1)

    assert pushes(repository) == [(1, "", {base}), (2, "mozilla-pontoon", {one}), (3, "flod", {two})]
    dates = dict(Push.objects.filter(repository=repository).values_list("push_id", "push_date"))
    assert dates[2] == datetime.fromtimestamp(push_one["repository"]["pushed_at"], timezone.utc)
    assert dates[3] == datetime.fromtimestamp(push_two["repository"]["pushed_at"], timezone.utc)

    # The backfill stores three and four as one push: a message announcing four alone is not that
    # push, which keeps nobody's name; a repeated message changes nothing.
    assert backfill().count("caught up") == 1
    publish(broker_url, (late, *message[late](push_four)), (early, *message[early](push_one)))
    run_worker(max_messages=2)

    assert pushes(repository)[1:] == [(2, "mozilla-pontoon", {one}), (3, "flod", {two}), (4, "", {three, four})]
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_ci_skip_push_has_no_taskcluster_message_and_the_backfill_records_it(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    quiet = github.commit(L10N, {"a": b"2"}, message="Fix a typo [ci skip]")
    payload = push_payload(github, L10N, base, quiet)
    assert taskcluster_github_message(payload) is None
    declare_queues()

    run_worker(idle_exit=1)  # the worker alone sees nothing

    assert pushes(repository) == [(1, "", {base})]
    report = backfill()
    assert [(o.name, o.status) for o in report.outcomes] == [(L10N, "caught up")]
    assert pushes(repository)[1] == (2, "", {quiet})


@pytest.mark.django_db
def test_placeholders_named_before_their_push_are_filled(github, broker_url, worker_env):
    github.create_repo(L10N)
    base = github.commit(L10N, {"de/a.ftl": b"a = 1\n"})
    repository = track(github, L10N)
    ahead = github.commit(L10N, {"de/a.ftl": b"a = 2\n"}, message="de: ahead of its notification",
                          author="Anna <anna@example.com>")
    from life import store
    store.ensure_placeholders([ahead])
    assert Changeset.objects.get(revision=ahead).placeholder
    declare_queues()
    publish(broker_url, ("webhook", *webhook_message(push_payload(github, L10N, base, ahead))))

    run_worker(max_messages=1)

    filled = Changeset.objects.get(revision=ahead)
    assert (filled.placeholder, filled.user, filled.description) == (False, "Anna <anna@example.com>",
                                                                     "de: ahead of its notification")
    assert [f.path for f in filled.files.all()] == ["de/a.ftl"]
    assert pushes(repository)[-1] == (2, "octocat", {ahead})


# --- compare-locales results naming GitHub repositories -----------------------------------


@pytest.fixture
def queue():
    with SimulatedQueue() as server:
        yield server


@pytest.mark.django_db
def test_elmo_json_names_github_revisions_and_a_configuration_in_a_github_repository(github, queue):
    kinds = {"de": "complete", "fr": "partial"}
    revisions, results = compare.publish_github_world(github, kinds)
    source_repo, l10n_repo = track(github, SOURCE), track(github, L10N)
    document = compare.elmo_document(results, revisions=revisions, drop_repository=True)
    reference = revisions["de"][f"/{SOURCE}/"]
    # Real tasks name their repository by the configuration file's URL, not the repository's.
    task_id = queue.add_task(source=compare.github_source_url(github, SOURCE, reference))
    queue.add_artifact(task_id, 0, "public/elmo.json", document)

    stored = ingest_task(queue.root_url, task_id, 0)

    assert stored.created == 2
    tree = Tree.objects.get()
    assert (tree.config_repository, tree.config_path) == (source_repo, compare.CONFIG_PATH)
    for code in kinds:
        run = Run.objects.get(locale__code=code)
        assert run.tree == tree and run.changed == results[code]["summary"]["changed"]
        compared = {c.revision: c for c in run.revisions.all()}
        assert set(compared) == {reference, revisions[code][f"/{L10N}/"]}
        assert not any(c.placeholder for c in compared.values())  # both pushes are already stored
        assert compared[revisions[code][f"/{L10N}/"]].repositories.get() == l10n_repo


@pytest.mark.django_db
def test_a_repository_is_found_from_the_url_of_a_file_in_it():
    made = {name: Repository.objects.create(name=name, url=url) for name, url in [
        ("l10n", "https://hg.mozilla.org/l10n/"),
        ("l10n/gecko-strings", "https://hg.mozilla.org/l10n/gecko-strings/"),
        ("releases/l10n/mozilla-beta/fr", "https://hg.mozilla.org/releases/l10n/mozilla-beta/fr/"),
        (SOURCE, "https://github.com/mozilla-l10n/firefox-l10n-source/"),
        (L10N, "https://github.com/mozilla-l10n/firefox-l10n"),  # an older row without the slash
    ]}
    sha = "a" * 40
    cases = {
        "https://hg.mozilla.org/l10n/gecko-strings/": "l10n/gecko-strings",
        f"https://hg.mozilla.org/l10n/gecko-strings/file/{sha}/_configs/browser.toml": "l10n/gecko-strings",
        f"https://hg.mozilla.org/l10n/gecko-strings/raw-file/{sha}/_configs/browser.toml": "l10n/gecko-strings",
        f"https://hg.mozilla.org/l10n/gecko-strings/rev/{sha}": "l10n/gecko-strings",
        f"https://hg.mozilla.org/l10n/file/{sha}/x.toml": "l10n",
        f"https://hg.mozilla.org/releases/l10n/mozilla-beta/fr/file/{sha}/browser/a.ftl":
            "releases/l10n/mozilla-beta/fr",
        f"https://github.com/mozilla-l10n/firefox-l10n-source/blob/{sha}/_configs/browser.toml": SOURCE,
        f"https://github.com/mozilla-l10n/firefox-l10n-source/tree/{sha}/_configs": SOURCE,
        f"https://github.com/mozilla-l10n/firefox-l10n-source/raw/{sha}/_configs/browser.toml?x=1#L2": SOURCE,
        "https://github.com/mozilla-l10n/firefox-l10n/": L10N,
        f"https://github.com/mozilla-l10n/firefox-l10n/blob/{sha}/de/browser/a.ftl": L10N,
    }
    for url, name in cases.items():
        assert config_repository(url) == made[name], url
    for unknown in ("https://hg.mozilla.org/mozilla-central/file/tip/a", "https://github.com/mozilla-l10n/other/",
                    "https://github.example/mozilla-l10n/firefox-l10n/blob/x/a", "not a url"):
        with pytest.raises(PermanentError, match="not a known repository"):
            config_repository(unknown)


# --- the backfill ------------------------------------------------------------------


@pytest.mark.django_db
def test_backfill_costs_one_request_per_git_repository_that_has_not_moved(github, hgmo):
    names = [f"mozilla-l10n/repo-{i}" for i in range(3)]
    for name in names:
        github.create_repo(name)
        github.commit(name, {"a": b"1"})
        track(github, name)
    hgmo.create_repo("l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    backfill()
    behind = github.commit(names[1], {"a": b"2"})
    before = {name: github.requests_for(name) for name in names}

    report = backfill()

    assert {o.name: o.status for o in report.outcomes} == {
        names[0]: "up to date", names[1]: "caught up", names[2]: "up to date", "l10n-central/de": "up to date"}
    assert [github.requests_for(name) - before[name] for name in (names[0], names[2])] == [1, 1]
    (repository,) = Repository.objects.filter(name=names[1])
    assert pushes(repository)[-1] == (2, "", {behind})
    assert stored_revision(repository) == behind


@pytest.mark.django_db
def test_backfill_records_git_failures_and_backs_off(github):
    github.create_repo(L10N)
    github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    github.set_fault("error", L10N)
    report = backfill()
    assert report.outcomes[0].status == "failed" and "HTTP 500" in report.outcomes[0].detail
    state = SyncState.objects.get(repository=repository)
    assert state.failures == 1 and "HTTP 500" in state.last_error

    github.set_fault(None)
    github.delete_branch(L10N, "main")
    report = backfill()
    assert "upstream has no branch 'main'" in report.outcomes[0].detail
    assert SyncState.objects.get(repository=repository).failures == 2

    github.commit(L10N, {"a": b"2"}, branch="main")
    backfill()
    state = SyncState.objects.get(repository=repository)
    assert (state.failures, state.last_error, state.stored_push_id) == (0, "", 2)


# --- what the worker refuses --------------------------------------------------------


@pytest.mark.django_db
def test_unknown_repositories_are_skipped_without_a_query_per_message(github):
    github.create_repo(L10N)
    github.commit(L10N, {"a": b"1"})
    track(github, L10N)
    github.create_repo("someone/else")
    tip = github.commit("someone/else", {"a": b"1"})
    payload = push_payload(github, "someone/else", NULL, tip)
    handler = source.GitHubPushHandler(source.KnownGitHubRepositories(ttl=60))
    webhook = Delivery(json.dumps(webhook_message(payload)[1]).encode(), source.WEBHOOKS_EXCHANGE,
                       "someone/else/push")
    routing_key, body = taskcluster_github_message(payload)
    taskcluster = Delivery(json.dumps(body).encode(), source.TASKCLUSTER_GITHUB_EXCHANGE, routing_key)
    handler(source.parse_webhook(webhook))  # the cache is read once

    with CaptureQueriesContext(connection) as queries:
        outcomes = [handler(source.parse_webhook(webhook)) for _ in range(50)]
        outcomes += [handler(source.parse_taskcluster_github(taskcluster)) for _ in range(50)]

    assert len(queries) == 0
    assert {(str(o.status), o.detail) for o in outcomes} == {("skipped", "unknown repository")}
    assert github.requests_for("someone/else") == 0


def encode(body, name):
    """A hostile case's body, marked with its name near the start (dead letters keep the first MiB)."""
    if isinstance(body, bytes):
        return body
    if "payload" in body:
        return json.dumps({"request_id": name, **body}).encode()
    return json.dumps({**body, "eventId": name}).encode()  # where Taskcluster's message has it: near the start


def hostile_messages(github, evil):
    """(name, kind, routing key, body, what the dead letter must say) for messages a worker must refuse."""
    base = github.tip(L10N)
    tip = github.commit(L10N, {"a": b"hostile"})
    good = push_payload(github, L10N, base, tip)
    key = "mozilla-l10n/firefox-l10n/push"

    def webhook(payload, **envelope):
        return {"event": "push", "payload": payload, "_meta": {}, **envelope}

    def changed(**fields):
        return {**good, **fields}

    evil_repository = dict(good["repository"], clone_url=evil.html_url(L10N) + ".git")
    taskcluster_key, taskcluster = taskcluster_github_message(good)
    return [
        ("not JSON", "webhook", key, b"{push", "not JSON"),
        ("payload not an object", "webhook", key, webhook([1, 2]), "payload"),
        ("after not a string", "webhook", key, webhook(changed(after=12345)), "at after"),
        ("short sha", "webhook", key, webhook(changed(after=tip[:12])), "at after"),
        ("upper-case sha", "webhook", key, webhook(changed(before=base.upper())), "at before"),
        ("ref not a string", "webhook", key, webhook(changed(ref=["refs/heads/main"])), "at ref"),
        ("pusher not an object", "webhook", key, webhook(changed(pusher="octocat")), "at pusher"),
        ("pushed_at a string", "webhook", key,
         webhook(changed(repository=dict(good["repository"], pushed_at="2024-01-01"))), "pushed_at"),
        ("full name a path", "webhook", "../../etc/push",
         webhook(changed(repository=dict(good["repository"], full_name="../../etc"))), "not a GitHub repository"),
        ("payload for another repository", "webhook", key,
         webhook(changed(repository=dict(good["repository"], full_name="someone/else"))), "the routing key about"),
        ("event mismatch", "webhook", key, webhook(good, event="issues"), "message says event 'issues'"),
        ("clone_url elsewhere", "webhook", key, webhook(changed(repository=evil_repository)),
         "is not the known URL of mozilla-l10n/firefox-l10n"),
        ("clone_url elsewhere, taskcluster", "taskcluster", taskcluster_key,
         {**taskcluster, "body": changed(repository=evil_repository)}, "is not the known URL"),
        ("wrong version", "taskcluster", taskcluster_key, {**taskcluster, "version": 2}, "at version"),
        ("organization mismatch", "taskcluster", taskcluster_key, {**taskcluster, "organization": "someone"},
         "its payload for mozilla-l10n/firefox-l10n"),
        ("body not an object", "taskcluster", taskcluster_key, {**taskcluster, "body": "push"}, "at body"),
        ("huge", "webhook", key, webhook(changed(commits=[{"message": "x" * 1_000_000}] * 30)), "larger than"),
    ]


@pytest.mark.django_db
def test_hostile_messages_become_dead_letters_and_change_nothing(github, tmp_path, broker_url, worker_env):
    github.create_repo(L10N)
    github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    with SimulatedGitHub(tmp_path / "evil") as evil:
        evil.create_repo(L10N)
        evil.commit(L10N, {"a": b"evil"})
        cases = hostile_messages(github, evil)
        declare_queues()
        requests = github.requests_for(L10N)
        publish(broker_url, *((kind, key, encode(body, name)) for name, kind, key, body, _ in cases))

        run_worker(max_messages=len(cases))

        assert evil.requests_seen == 0
    assert github.requests_for(L10N) == requests
    letters = list(DeadLetter.objects.all())
    assert len(letters) == len(cases)
    for name, _, routing_key, body, reason in cases:
        (letter,) = [letter for letter in letters if bytes(letter.body)[:200] == encode(body, name)[:200]]
        assert reason in letter.error, (name, letter.error[:300])
        assert letter.routing_key == routing_key
    assert [push_id for push_id, _, _ in pushes(repository)] == [1]
    assert Push.objects.count() == 1 and Changeset.objects.count() == 2  # the null revision and the first


# --- the worker as it runs in production ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_consume_pulse_stores_github_pushes_beside_a_backfill(github, broker_url, worker_env, tmp_path):
    """The real consume-pulse process, both formats, and (on databases with row locks) the backfill
    running at the same time: every commit once, push ids without gaps."""
    names = [L10N, SOURCE]
    repositories = {}
    for name in names:
        github.create_repo(name)
        github.commit(name, {"a": b"0"})
        repositories[name] = track(github, name)
    declare_queues()
    with Connection(broker_url) as conn:
        for round_ in range(8):
            for name in names:
                before = github.tip(name)
                github.commit(name, {"a": f"{round_ + 1}".encode()}, message=f"round {round_}")
                publish_both(conn, github, name, before, github.tip(name))
    worker = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "worker.log")

    parallel = connection.vendor != "sqlite"  # SQLite has no row locks: one writer only
    while parallel and worker.process.poll() is None:
        backfill()
    assert worker.wait() == 0, worker.output()[-3000:]

    for name, repository in repositories.items():
        stored = pushes(repository)
        assert [push_id for push_id, _, _ in stored] == list(range(1, len(stored) + 1))
        revisions = [revision for _, _, revisions in stored for revision in revisions]
        assert len(revisions) == len(set(revisions)) == 9
        assert stored_revision(repository) == github.tip(name)
        if not parallel:
            assert len(stored) == 9 and {user for _, user, _ in stored[1:]} == {"octocat"}
    assert not DeadLetter.objects.exists()
    log = worker.output()
    assert "exchange/github-webhooks/v1 mozilla-l10n/firefox-l10n/push type=push" in log
    assert "exchange/taskcluster-github/v1/push primary.mozilla-l10n.firefox-l10n-source type=push" in log


# --- parsing, pure ---------------------------------------------------------------------


def test_both_formats_parse_to_the_same_push(github):
    github.create_repo("mozilla-l10n/firefox.l10n")
    before = github.commit("mozilla-l10n/firefox.l10n", {"a": b"1"})
    after = github.commit("mozilla-l10n/firefox.l10n", {"a": b"2"})
    payload = push_payload(github, "mozilla-l10n/firefox.l10n", before, after, pusher=("flod", "flod@example.com"))
    routing_key, body = webhook_message(payload)
    from_webhook = source.parse_webhook(Delivery(json.dumps(body).encode(), source.WEBHOOKS_EXCHANGE, routing_key))
    routing_key, body = taskcluster_github_message(payload)
    from_taskcluster = source.parse_taskcluster_github(
        Delivery(json.dumps(body).encode(), source.TASKCLUSTER_GITHUB_EXCHANGE, routing_key))

    assert from_webhook == from_taskcluster == source.GitHubPush(
        full_name="mozilla-l10n/firefox.l10n", ref="refs/heads/main", before=before, after=after, deleted=False,
        forced=False, pusher="flod", pushed_at=payload["repository"]["pushed_at"],
        clone_url=github.html_url("mozilla-l10n/firefox.l10n") + ".git")
    assert (from_webhook.kind, from_webhook.subject) == ("push", "mozilla-l10n/firefox.l10n")


def test_other_events_are_recognised_by_their_routing_key_alone():
    event = source.parse_webhook(Delivery(b"\xff not even JSON", source.WEBHOOKS_EXCHANGE,
                                          "mozilla-l10n/firefox-l10n/pull_request"))
    assert (event.kind, event.subject) == ("pull_request", "mozilla-l10n/firefox-l10n")
    assert source.parse_webhook(Delivery(b"", source.WEBHOOKS_EXCHANGE, "mozilla-l10n//ping")).kind == "ping"
    for key in ("push", "mozilla-l10n/push", "a/b/c/push", "../x/push", "mozilla-l10n/firefox l10n/push"):
        with pytest.raises(PermanentError):
            source.parse_webhook(Delivery(b"{}", source.WEBHOOKS_EXCHANGE, key))


def test_deletions_need_no_after_commit_and_others_do(github):
    github.create_repo(L10N)
    tip = github.commit(L10N, {"a": b"1"})
    deletion = push_payload(github, L10N, tip, NULL, ref="refs/heads/gone")
    assert source.parse_push_payload(deletion).deleted
    with pytest.raises(PermanentError, match="not a deletion"):
        source.parse_push_payload({**deletion, "deleted": False})


@pytest.mark.django_db
def test_known_github_repositories_are_read_once_per_ttl():
    now = [0.0]
    known = source.KnownGitHubRepositories(ttl=5, clock=lambda: now[0])
    assert known.get(L10N) is None
    repository = Repository.objects.create(name="firefox", url="https://github.com/Mozilla-L10n/Firefox-L10n/",
                                           kind=Repository.GIT, branch="main")
    Repository.objects.create(name="l10n-central/de", url="https://hg.mozilla.org/l10n-central/de/")
    now[0] = 4.9
    assert known.get(L10N) is None
    now[0] = 5.0
    assert known.get(L10N) == repository.pk  # whatever its name, by its URL, as GitHub compares names
    assert known.get("l10n-central/de") is None  # Mercurial repositories are not GitHub's


# --- every parser: a value or a PermanentError, whatever comes in ------------------------

SHA = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=3), max_leaves=20)


def plausible_payload():
    repository = st.fixed_dictionaries({}, optional={
        "full_name": st.sampled_from([L10N, "a/b", "../x", "a/b/c"]) | SCALARS,
        "clone_url": st.sampled_from(["https://github.com/mozilla-l10n/firefox-l10n.git", "ext::sh"]) | SCALARS,
        "pushed_at": st.integers(-5, 2**41) | SCALARS,
    })
    return st.fixed_dictionaries({}, optional={
        "ref": st.sampled_from(["refs/heads/main", "refs/tags/v1", ""]) | SCALARS,
        "before": SHA | st.just(NULL) | SCALARS, "after": SHA | st.just(NULL) | SCALARS,
        "created": st.booleans() | SCALARS, "deleted": st.booleans() | SCALARS, "forced": st.booleans() | SCALARS,
        "pusher": st.fixed_dictionaries({"name": st.text(max_size=10) | SCALARS}) | SCALARS,
        "repository": repository | SCALARS, "commits": st.lists(JSON, max_size=2) | SCALARS,
    }) | JSON


def parses_or_refuses(parse, *args):
    try:
        parse(*args)
    except PermanentError as error:
        assert str(error)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=plausible_payload(), event=st.sampled_from(["push", "issues"]) | SCALARS,
       routing_key=st.sampled_from([f"{L10N}/push", f"{L10N}/issues", "push", "a/b/c/push"]) | st.text(max_size=30))
def test_webhook_parser_never_raises_anything_else(payload, event, routing_key):
    body = json.dumps({"event": event, "payload": payload}).encode()
    parses_or_refuses(source.parse_webhook, Delivery(body, source.WEBHOOKS_EXCHANGE, routing_key))


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=plausible_payload(), organization=st.sampled_from(["mozilla-l10n", "a"]) | SCALARS,
       repository=st.sampled_from(["firefox-l10n", "b"]) | SCALARS, version=st.sampled_from([1, 2]) | SCALARS)
def test_taskcluster_github_parser_never_raises_anything_else(payload, organization, repository, version):
    body = json.dumps({"version": version, "organization": organization, "repository": repository, "body": payload})
    parses_or_refuses(source.parse_taskcluster_github,
                      Delivery(body.encode(), source.TASKCLUSTER_GITHUB_EXCHANGE, "primary.a.b"))


@hypothesis_settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.binary(max_size=60) | st.sampled_from([
    b"# service=git-upload-pack\n", b"", b"0" * 40 + b" capabilities^{}\0symref=HEAD:refs/heads/main",
    b"a" * 40 + b" refs/heads/main\n", b"a" * 40 + b" HEAD\0symref=HEAD:refs/heads/main\n"]), max_size=5),
    junk=st.binary(max_size=10))
def test_ref_advertisement_parser_never_raises_anything_else(lines, junk):
    body = b"".join(b"0000" if not line else b"%04x" % (len(line) + 4) + line for line in lines) + junk
    parses_or_refuses(parse_advertisement, body)


@pytest.mark.django_db
def test_a_hanging_github_is_a_transient_failure_within_the_timeouts(github, settings):
    github.create_repo(L10N)
    github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)
    github.commit(L10N, {"a": b"2"})
    settings.HTTP_TIMEOUT, settings.VCS_TIMEOUT = 1, 2
    github.hang_seconds = 60
    github.set_fault("hang", L10N)

    report = backfill()  # the ref advertisement: HTTP_TIMEOUT
    with pytest.raises(CommandError, match="timed out after 2s"):
        call_command("reprocess-repo", L10N)  # git fetch: VCS_TIMEOUT

    assert report.outcomes[0].status == "failed"
    state = SyncState.objects.get(repository=repository)
    assert state.failures == 2 and "timed out" in state.last_error
    github.set_fault(None)
    assert backfill().count("caught up") == 1


@pytest.mark.django_db
def test_tracking_a_branch_upstream_does_not_have_fails_clearly(github):
    github.create_repo(L10N)
    github.commit(L10N, {"a": b"1"})

    with pytest.raises(CommandError, match="upstream has no branch 'release'"):
        call_command("track", github.repo_url(L10N), "--branch", "release")

    repository = Repository.objects.get(name=L10N)
    assert not Push.objects.exists() and "no branch 'release'" in SyncState.objects.get().last_error
    github.commit(L10N, {"a": b"2"}, branch="release")
    call_command("reprocess-repo", L10N)
    assert pushes(repository)[0][0] == 1 and stored_revision(repository) == github.tip(L10N, "release")


def test_revision_keys_resolve_against_github():
    sha = "b" * 40
    report = parse_elmo({"version": "1.0", "comparisons": [{
        "locale": "de", "config": "_configs/browser.toml", "artifact": "public/compares/browser.de.json",
        "revisions": {"/mozilla-l10n/firefox-l10n/": sha, "/mozilla-l10n/firefox-l10n-source": sha},
        "summary": {"changed": 1}}]},
        fallback_repository=f"https://github.com/mozilla-l10n/firefox-l10n-source/blob/{sha}/_configs/browser.toml")
    assert report.comparisons[0].revisions == (
        ("https://github.com/mozilla-l10n/firefox-l10n-source/", sha),
        ("https://github.com/mozilla-l10n/firefox-l10n/", sha))


@pytest.mark.django_db
def test_the_admin_shows_git_repositories_and_their_sync_state(github, admin_client):
    from django.urls import reverse

    github.create_repo(L10N)
    tip = github.commit(L10N, {"a": b"1"})
    repository = track(github, L10N)

    page = admin_client.get(reverse("admin:life_repository_changelist") + "?kind__exact=git").content.decode()
    assert L10N in page and ">main<" in page
    page = admin_client.get(reverse("admin:life_syncstate_changelist")).content.decode()
    assert tip in page
    detail = admin_client.get(reverse("admin:life_repository_change", args=[repository.pk]))
    assert detail.status_code == 200


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("pusher", "oct\x00cat", "has a NUL character"),
    ("pusher", "oct\ud800cat", "is not valid Unicode"),
    ("ref", "refs/heads/ma\x00in", "has a NUL character"),
    ("ref", "refs/heads/\udfffmain", "is not valid Unicode"),
])
def test_text_no_database_stores_exactly_is_rejected_at_once_with_a_reason(github, field, value, reason):
    """The rule hg's pushlog applies (plumbing.text.text_problem): a dead letter naming why, never a
    retried 'database error' counted against the repository."""
    github.create_repo(L10N)
    tip = github.commit(L10N, {"a": b"1"})
    payload = push_payload(github, L10N, NULL, tip)
    if field == "pusher":
        payload["pusher"]["name"] = value
    else:
        payload[field] = value
    # json.dumps escapes a lone surrogate as \ud800, as a JSON message on the wire carries it.
    body = json.dumps(webhook_message(payload)[1]).encode()
    with pytest.raises(PermanentError, match=reason):
        source.parse_webhook(Delivery(body, source.WEBHOOKS_EXCHANGE, f"{L10N}/push"))
    routing_key, message = taskcluster_github_message(payload)
    with pytest.raises(PermanentError, match=reason):
        source.parse_taskcluster_github(Delivery(json.dumps(message).encode(), source.TASKCLUSTER_GITHUB_EXCHANGE,
                                                 routing_key))
