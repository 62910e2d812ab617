"""Clones are never lost (issue 12 §5) and hg trusts only what the configuration names (§6).

Real hg processes against the simulated hg.mozilla.org; processes are found
in /proc, killed with SIGKILL, and the clone storage is compared byte for byte.
"""

import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from life import storage
from life.hg import clone as hg_clone
from life.models import Push, Repository
from plumbing.errors import PermanentError, TransientError
from simulated.harness import PROJECT, wait_until
from simulated.hgmo import SimulatedHgmo

pytestmark = pytest.mark.django_db


def make_repository(hgmo, name):
    hgmo.create_repo(name)
    return Repository.objects.create(name=name, url=hgmo.repo_url(name))


def files_under(path):
    """Every file below ``path`` with its bytes: what a web head reading the clone sees."""
    return {
        str(Path(directory, name).relative_to(path)): Path(directory, name).read_bytes()
        for directory, _, names in os.walk(path)
        for name in names
    }


def staging_dirs():
    area = storage.base() / storage.STAGING
    return sorted(area.iterdir()) if area.is_dir() else []


def revisions(path):
    return set(hg_clone.run_hg(["log", "--repository", str(path), "--template", "{node}\n"], "hg log").decode().split())


def processes_with(token):
    """Live processes (not zombies) whose command line contains ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


# A worker's clone in a process of its own, to be killed. Its arguments travel in the environment,
# so that only the hg it starts has the repository's URL on its command line.
CLONE_IN_CHILD = """
import json, os, signal, errno
import django
django.setup()
from life import storage
from life.hg import clone as hg_clone
from life.models import Repository
options = json.loads(os.environ["CLONE_OPTIONS"])
if options.get("die_between_renames"):
    def no_exchange(first, second):
        raise OSError(errno.EINVAL, "not on this filesystem")
    storage.exchange = no_exchange
    rename, renames = os.rename, []
    def dying_rename(source, destination):
        renames.append(source)
        if len(renames) == 2:  # the old clone moved aside, the new one not yet in place
            os.kill(os.getpid(), signal.SIGKILL)
        rename(source, destination)
    storage.os.rename = dying_rename
repository = Repository(name=options["name"], url=options["url"])
with storage.clone_lock(repository):  # as the worker does
    hg_clone.update_clone(repository, reclone=options.get("reclone", False))
"""


def clone_in_child(name, url, **options):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="settings",
        REPOSITORY_BASE=str(storage.base()),
        CLONE_OPTIONS=json.dumps({"name": name, "url": url, **options}),
    )
    return subprocess.Popen([sys.executable, "-c", CLONE_IN_CHILD], env=env, cwd=PROJECT)


# --- building beside, swapping on success -------------------------------------------------


def test_failed_reclone_leaves_the_old_clone_byte_identical(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    call_command("reprocess-repo", repo.name)
    path = storage.clone_path(repo)
    before = files_under(path)
    hgmo.set_fault("hg-error", repo.name)  # json-pushes answers, hg gets 500

    with pytest.raises(CommandError, match="500"):
        call_command("reprocess-repo", repo.name, "--reclone")

    assert files_under(path) == before
    assert hg_clone.is_usable_clone(path)
    assert staging_dirs() == []


def test_failed_reclone_of_every_request_leaves_the_old_clone(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    node, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    path, _ = hg_clone.update_clone(repo)
    before = files_under(path)
    hgmo.set_fault("error", repo.name)

    with pytest.raises(TransientError):
        hg_clone.update_clone(repo, reclone=True)

    assert files_under(path) == before
    assert revisions(path) == {node}
    assert staging_dirs() == []


def test_reclone_swaps_in_a_new_clone(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    first, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    call_command("reprocess-repo", repo.name)
    path = storage.clone_path(repo)
    old = (path / ".hg").stat().st_ino
    second, _ = hgmo.commit_and_push(repo.name, {"b.ftl": b"b = B\n"})

    call_command("reprocess-repo", repo.name, "--reclone")

    assert (path / ".hg").stat().st_ino != old
    assert revisions(path) == {first, second}
    assert Push.objects.filter(repository=repo).count() == 2
    assert staging_dirs() == []


def test_reclone_without_atomic_exchange_swaps_with_two_renames(hgmo, monkeypatch):
    """NFS answers EINVAL to RENAME_EXCHANGE."""
    repo = make_repository(hgmo, "l10n-central/de")
    first, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    path, _ = hg_clone.update_clone(repo)
    old = (path / ".hg").stat().st_ino
    second, _ = hgmo.commit_and_push(repo.name, {"b.ftl": b"b = B\n"})

    def no_exchange(first, second):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(storage, "exchange", no_exchange)
    hg_clone.update_clone(repo, reclone=True)

    assert (path / ".hg").stat().st_ino != old
    assert revisions(path) == {first, second}
    assert staging_dirs() == []


def test_worker_killed_between_the_two_renames_loses_no_clone(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    first, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    path, _ = hg_clone.update_clone(repo)
    second, _ = hgmo.commit_and_push(repo.name, {"b.ftl": b"b = B\n"})

    child = clone_in_child(repo.name, repo.url, reclone=True, die_between_renames=True)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert not (path / ".hg").exists()  # the window the two renames leave

    assert storage.remove_stale_staging() == 1
    assert hg_clone.is_usable_clone(path)
    assert revisions(path) == {first, second}  # the new clone was complete: the swap is finished
    assert staging_dirs() == []


def test_swap_failing_half_way_puts_a_clone_back(hgmo, monkeypatch):
    repo = make_repository(hgmo, "l10n-central/de")
    first, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    path, _ = hg_clone.update_clone(repo)

    def no_exchange(first, second):
        raise OSError(errno.EINVAL, "Invalid argument")

    rename, renames = os.rename, []

    def failing_rename(source, destination):
        renames.append(source)
        if len(renames) == 2:
            raise OSError(errno.EIO, "Input/output error")
        rename(source, destination)

    monkeypatch.setattr(storage, "exchange", no_exchange)
    monkeypatch.setattr(storage.os, "rename", failing_rename)
    with pytest.raises(OSError, match="Input/output"):
        hg_clone.update_clone(repo, reclone=True)
    monkeypatch.undo()

    assert hg_clone.is_usable_clone(path)
    assert revisions(path) == {first}
    assert staging_dirs() == []


# --- nested names ------------------------------------------------------------------------

NESTED = ("l10n-central/de", "l10n-central/de/sub")


@pytest.mark.parametrize("order", [NESTED, NESTED[::-1]], ids=["outer-first", "inner-first"])
def test_nested_names_never_touch_each_others_clones(hgmo, order):
    repos = {name: make_repository(hgmo, name) for name in NESTED}
    nodes = {name: hgmo.commit_and_push(name, {f"{name}.ftl": name.encode()})[0] for name in NESTED}
    for name in order:
        hg_clone.update_clone(repos[name])
    assert {name: revisions(storage.clone_path(repos[name])) for name in NESTED} == {n: {nodes[n]} for n in NESTED}

    for victim, survivor in itertools.permutations(NESTED):
        kept = files_under(storage.clone_path(repos[survivor]) / ".hg")
        victim_path = storage.clone_path(repos[victim])

        hg_clone.update_clone(repos[victim], reclone=True)
        assert files_under(storage.clone_path(repos[survivor]) / ".hg") == kept

        (victim_path / ".hg" / "requires").unlink()  # broken: Mercurial cannot open it
        hg_clone.update_clone(repos[victim])
        assert hg_clone.is_usable_clone(victim_path)
        assert revisions(victim_path) == {nodes[victim]}
        assert files_under(storage.clone_path(repos[survivor]) / ".hg") == kept
    assert staging_dirs() == []


# --- what killed workers leave behind ----------------------------------------------------


def test_hg_dies_with_the_process_that_started_it(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    hgmo.set_fault("hang", repo.name)
    child = clone_in_child(repo.name, repo.url)
    wait_until(lambda: processes_with(repo.url) and hgmo.requests_seen)

    child.kill()
    child.wait()

    wait_until(lambda: not processes_with(repo.url))


def test_stale_staging_is_removed_at_start_unless_its_clone_is_in_progress(hgmo):
    killed_repo, busy_repo = (make_repository(hgmo, f"l10n-central/{code}") for code in ("de", "fr"))
    for repo in (killed_repo, busy_repo):
        hgmo.commit_and_push(repo.name, {"a": b"1"})
    hgmo.set_fault("hang")
    killed, busy = (clone_in_child(repo.name, repo.url) for repo in (killed_repo, busy_repo))
    try:
        wait_until(lambda: processes_with(killed_repo.url) and processes_with(busy_repo.url))
        killed.kill()
        killed.wait()
        wait_until(lambda: not processes_with(killed_repo.url))
        assert len(staging_dirs()) == 2  # the killed worker's is still there

        storage.prepare()  # what every command does at start

        assert [d.name.split(".")[0] for d in staging_dirs()] == [storage.lock_key(busy_repo)]
        assert processes_with(busy_repo.url)  # the other clone goes on
    finally:
        busy.kill()
        busy.wait()
    wait_until(lambda: not processes_with(busy_repo.url))
    assert storage.remove_stale_staging() == 1
    assert staging_dirs() == []
    assert not (storage.clone_path(killed_repo) / ".hg").exists()


def test_a_timeout_kills_hg_and_everything_it_started(tmp_path, settings):
    """subprocess.run's timeout kills only the direct child; hg's own children must go too."""
    token = f"{tmp_path}/slow-hg"
    Path(token).write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {token!r}])\n"
        "time.sleep(300)\n"
    )
    Path(token).chmod(0o755)
    settings.HG_BINARY = token
    settings.VCS_TIMEOUT = 3
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(_failure(hg_clone.run_hg, ["clone", "x", "y"], "hg clone x")))
    runner.start()
    wait_until(lambda: len(processes_with(token)) == 2)  # the fake hg and its child

    runner.join(timeout=30)

    assert isinstance(outcome[0], TransientError) and "timed out after 3s" in str(outcome[0])
    wait_until(lambda: not processes_with(token))


def _failure(function, *args):
    try:
        function(*args)
    except Exception as error:
        return error


def test_locks_a_killed_hg_left_in_a_clone_do_not_block_the_next_pull(hgmo, settings):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    path, _ = hg_clone.update_clone(repo)
    # As after a SIGKILL in a container that has since got another host name.
    os.symlink("old-container:4242", path / ".hg" / "store" / "lock")
    os.symlink("old-container:4242", path / ".hg" / "wlock")
    node, _ = hgmo.commit_and_push(repo.name, {"b": b"2"})
    settings.VCS_TIMEOUT = 20  # Mercurial would wait for the lock for 600 s

    hg_clone.update_clone(repo)

    assert node in revisions(path)


# --- REPOSITORY_BASE that cannot hold clones -----------------------------------------------

UNUSABLE = {
    # Even root cannot create or write anything in /sys.
    "/sys/l10n-clones": "configuration: REPOSITORY_BASE '/sys/l10n-clones' cannot be created (",
    "/sys/kernel": "configuration: REPOSITORY_BASE '/sys/kernel' is not writable (",
}


@pytest.mark.parametrize("command", [["consume-pulse", "--idle-exit", "1"], ["backfill"],
                                     ["reprocess-repo", "l10n-central/de"]], ids=lambda c: c[0])
@pytest.mark.parametrize("base", sorted(UNUSABLE))
def test_unusable_repository_base_stops_the_command_with_one_line(command, base):
    done = subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *command],
        env=dict(os.environ, REPOSITORY_BASE=base, PULSE_URL="memory://"),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(UNUSABLE[base]) and lines[0].endswith(")"), done.stderr


# --- redirects ---------------------------------------------------------------------------


@pytest.fixture
def elsewhere(hgmo):
    """Another server with the same repositories: a redirect followed there would succeed."""
    with SimulatedHgmo(hgmo.root) as server:
        yield server


ELSEWHERE = {
    "another port": lambda hgmo, other: other.url,
    "another host": lambda hgmo, other: f"http://localhost:{other.port}/",
    "file": lambda hgmo, other: f"file://{hgmo.root}/",
}


@pytest.mark.parametrize("where", sorted(ELSEWHERE))
def test_clone_redirected_to_another_origin_is_refused_and_permanent(hgmo, elsewhere, where):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    hgmo.set_fault("redirect", repo.name, redirect_to=ELSEWHERE[where](hgmo, elsewhere))

    with pytest.raises(PermanentError, match=r"redirected to another origin .*, refused"):
        hg_clone.update_clone(repo)

    assert elsewhere.requests_seen == 0
    assert not (storage.clone_path(repo) / ".hg").exists()
    assert staging_dirs() == []


@pytest.mark.parametrize("where", sorted(ELSEWHERE))
def test_pull_redirected_to_another_origin_is_refused_and_permanent(hgmo, elsewhere, where):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    path, _ = hg_clone.update_clone(repo)
    before = files_under(path)
    hgmo.commit_and_push(repo.name, {"b": b"2"})
    hgmo.set_fault("redirect", repo.name, redirect_to=ELSEWHERE[where](hgmo, elsewhere))

    with pytest.raises(PermanentError, match=r"redirected to another origin .*, refused"):
        hg_clone.update_clone(repo)

    assert elsewhere.requests_seen == 0
    assert files_under(path) == before


def test_redirect_within_the_origin_is_followed(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    first, _ = hgmo.commit_and_push(repo.name, {"a": b"1"})
    hgmo.set_fault("redirect", repo.name, redirect_to=hgmo.url + "mirror/")

    path, _ = hg_clone.update_clone(repo)
    second, _ = hgmo.commit_and_push(repo.name, {"b": b"2"})
    hg_clone.update_clone(repo)

    assert revisions(path) == {first, second}
