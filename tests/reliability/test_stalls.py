"""A server that accepts and then sends nothing costs VCS_STALL_TIMEOUT, not VCS_TIMEOUT (issue 19 §1).

Real hg and git against the simulated hg.mozilla.org and GitHub, requests against
the simulated hg.mozilla.org's json-pushes and a Taskcluster root URL that
never answers: each fetch fails as Stalled (a transient failure) within a
few seconds of the stall timeout, while the long bounds (VCS_TIMEOUT,
HTTP_TIMEOUT) are far away.
"""

import socket
import time

import pytest
from django.core.management import call_command

from l10n.taskcluster import QueueClient
from life.git import clone as git_clone
from life.hg import clone as hg_clone
from life.hg.ingest import ingest_pushes
from life.hg.pushlog import PushlogClient
from life.models import Repository, SyncState
from plumbing.errors import Stalled
from simulated.github import SimulatedGitHub
from tests.test_clones import make_repository
from tests.test_http import RawServer, drip_body_until_close

STALL = 1
# hg and git start in well under a second here; a loaded machine gets a few more.
SLACK = 5


@pytest.fixture(autouse=True)
def long_bounds_far_away(settings):
    settings.VCS_STALL_TIMEOUT = STALL
    settings.VCS_TIMEOUT = 120
    settings.HTTP_TIMEOUT = 120


def stalls(function, *args, stall=STALL):
    """Call ``function(*args)``; it must raise Stalled within the stall timeout and some slack."""
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"VCS_STALL_TIMEOUT") as raised:
        function(*args)
    waited = time.monotonic() - started
    assert stall <= waited + 0.2 and waited < stall + SLACK, waited
    return raised.value


# --- hg ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_hg_pull_from_a_silent_server_stalls(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 1\n"})
    hg_clone.update_clone(repo)
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 2\n"})
    hgmo.hang_seconds = 60
    hgmo.set_fault("hang", repo.name)  # not even the handshake is answered

    error = stalls(hg_clone.update_clone, repo)

    assert f"hg pull {repo.url} stalled" in str(error)


@pytest.mark.django_db
def test_an_hg_pull_from_a_trickling_server_stalls(hgmo, settings):
    # 200, then a byte a second: no read waits 3 s (http.timeout), so only the low-speed limit ends it.
    settings.VCS_STALL_TIMEOUT = 3
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 1\n"})
    hg_clone.update_clone(repo)
    hgmo.hang_seconds = 60
    hgmo.set_fault("trickle", repo.name)

    error = stalls(hg_clone.update_clone, repo, stall=3)

    assert "less than 2 bytes a second" in str(error)


@pytest.mark.django_db
def test_a_first_hg_clone_from_a_silent_server_stalls(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 1\n"})
    hgmo.hang_seconds = 60
    hgmo.set_fault("slow-pull", repo.name)  # the handshake is answered, the changesets never come

    stalls(hg_clone.update_clone, repo)

    assert not (hg_clone.clone_path(repo) / ".hg").exists()  # nothing half-made is left where web heads read


@pytest.mark.django_db
def test_a_stalled_ingestion_is_recorded_against_the_repository(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push(repo.name, {"a.ftl": b"a = 1\n"})
    hgmo.hang_seconds = 60
    hgmo.set_fault("slow-pull", repo.name)  # json-pushes answers; the pull's changesets never come

    stalls(ingest_pushes, repo)

    state = SyncState.objects.get(repository=repo)
    assert state.failures == 1 and "stalled" in state.last_error


# --- git --------------------------------------------------------------------------------------


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


@pytest.mark.django_db
def test_a_git_fetch_from_a_silent_server_stalls(github):
    github.create_repo("mozilla-l10n/firefox-l10n")
    github.commit("mozilla-l10n/firefox-l10n", {"de/a.ftl": b"a = 1\n"})
    call_command("track", github.repo_url("mozilla-l10n/firefox-l10n"))
    repo = Repository.objects.get(name="mozilla-l10n/firefox-l10n")
    github.commit("mozilla-l10n/firefox-l10n", {"de/a.ftl": b"a = 2\n"})
    github.hang_seconds = 60
    github.set_fault("hang", repo.name)

    error = stalls(git_clone.update_clone, repo)

    assert "git fetch" in str(error) and "stalled" in str(error)


@pytest.mark.django_db
def test_a_git_clone_from_a_trickling_server_stalls(tmp_path):
    # 200, then a byte a second: curl's low-speed limit (below a byte a second for the stall timeout) ends it.
    with RawServer(drip_body_until_close) as server:
        repo = Repository.objects.create(name="mozilla-l10n/trickle", url=server.url + "trickle/", kind="git",
                                         branch="main")
        stalls(git_clone.update_clone, repo)


# --- HTTP: json-pushes and the Taskcluster Queue ------------------------------------------------


def test_json_pushes_from_a_silent_server_stalls(hgmo):
    hgmo.create_repo("l10n-central/de")
    hgmo.hang_seconds = 60
    hgmo.set_fault("hang", "l10n-central/de")

    error = stalls(PushlogClient().fetch, hgmo.repo_url("l10n-central/de"), 0, 10)

    assert "json-pushes" in str(error)


def test_a_taskcluster_queue_that_accepts_and_never_answers_stalls():
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (the backlog) and never answers
        client = QueueClient(f"http://127.0.0.1:{listener.getsockname()[1]}")
        stalls(client.task, "fN1SbArXTPSVFNUvaOlinQ")
        stalls(client.artifact, "fN1SbArXTPSVFNUvaOlinQ", 0, "public/elmo.json")

        # One connection each: a stall is not tried again within the request (urllib3 would retry a read
        # timeout twice more, three stalls for one).
        listener.settimeout(0.2)
        accepted = 0
        while True:
            try:
                listener.accept()[0].close()
                accepted += 1
            except TimeoutError:
                break
        assert accepted == 2
