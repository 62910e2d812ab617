"""What upstream can legally produce is stored exactly; what it cannot is rejected alone; every failure is recorded;
the same text rules for hg and git.

Against real repositories served by the simulated hg.mozilla.org, on every supported database.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest

from life.git.ingest import ingest_push
from life.hg.ingest import PushRejected, find_forest, ingest_new_repository, ingest_pushes, reprocess_repository
from life.hg.pushlog import PushlogClient
from life.kinds import for_repository
from life.models import Branch, Changeset, Forest, Push, Repository, SyncState
from plumbing.errors import NotUpstreamYet, PermanentError
from simulated import pulse
from simulated.github import NULL, SimulatedGitHub, push_payload, webhook_message
from worker import github as source
from worker.dispatch import Delivery
from worker.hgmo import parse as parse_hgpush

pytestmark = pytest.mark.django_db

NAME = "l10n-central/de"


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


def make_repository(hgmo, name=NAME):
    hgmo.create_repo(name)
    return Repository.objects.create(name=name, url=hgmo.repo_url(name))


def state(repository):
    return SyncState.objects.get(repository=repository)


def stored_push_ids(repository):
    return sorted(Push.objects.filter(repository=repository).values_list("push_id", flat=True))


# --- stored exactly -----------------------------------------------------------------


@pytest.mark.parametrize("length", [300, 10_000])
def test_branch_names_of_any_length_are_stored_exactly(hgmo, length):
    repo = make_repository(hgmo)
    branch = ("release-ß-" * length)[:length]
    near = branch[:-1] + "X"  # the same but for its last character
    first = hgmo.commit(NAME, {"a.ftl": b"1"}, branch=branch)
    second = hgmo.commit(NAME, {"a.ftl": b"2"}, branch=near, parents=[first])
    hgmo.push(NAME)

    ingest_pushes(repo, 1)

    assert Changeset.objects.get(revision=first).branch.name == branch
    assert Changeset.objects.get(revision=second).branch.name == near
    assert Branch.objects.filter(name__in=[branch, near]).count() == 2
    assert state(repo).failures == 0


def test_huge_users_and_descriptions_are_stored_exactly(hgmo):
    repo = make_repository(hgmo)
    user = "Zoë 🦊 " * 20_000 + "<zoe@example.com>"
    description = "Übersetzung 🦊\n\n" + "Lorem ipsum dolor sit amet. " * 40_000 + "The end."
    pusher = "pusher-" + "🦊" * 5_000 + "@example.com"
    node = hgmo.commit(NAME, {"a.ftl": b"1"}, user=user, message=description)
    hgmo.push(NAME, user=pusher)

    ingest_pushes(repo, 1)

    changeset = Changeset.objects.get(revision=node)
    assert (changeset.user, changeset.description) == (user, description)
    assert Push.objects.get(repository=repo, push_id=1).user == pusher
    assert reprocess_repository(repo).pushes == 0  # and it reads back as equal to upstream


# --- what upstream cannot legally produce -------------------------------------------------

YEAR_1, YEAR_9999 = -62135596800, 253402300799

IMPOSSIBLE_PUSHES = {
    "a NUL in the user": ({"user": "evil\x00pusher@example.com"}, "has a user with a NUL character"),
    "a date after year 9999": ({"date": YEAR_9999 + 1}, "outside years 1 to 9999"),
    "a date before year 1": ({"date": YEAR_1 - 1}, "outside years 1 to 9999"),
    "malformed changesets": ({"changesets": ["not a revision"]}, "has malformed changesets"),
}


def upstream_with_impossible_second_push(hgmo, impossible):
    """Pushes 1 and 3 are fine, push 2 is what upstream cannot legally produce."""
    first, _ = hgmo.commit_and_push(NAME, {"a.ftl": b"1"})
    second = hgmo.commit(NAME, {"a.ftl": b"2"})
    hgmo.record_push(NAME, impossible.get("changesets", [second]), user=impossible.get("user", "p@example.com"),
                     date=impossible.get("date"))
    third = hgmo.commit(NAME, {"a.ftl": b"3"})
    hgmo.record_push(NAME, [third])
    return first, third


@pytest.mark.parametrize("impossible, reason", IMPOSSIBLE_PUSHES.values(), ids=IMPOSSIBLE_PUSHES)
def test_an_impossible_push_is_rejected_alone_and_its_message_says_why_after_the_fact(hgmo, impossible, reason):
    repo = make_repository(hgmo)
    first, third = upstream_with_impossible_second_push(hgmo, impossible)

    result = ingest_pushes(repo)  # as the backfill does: everything upstream has

    assert stored_push_ids(repo) == [1, 3]
    assert set(repo.changesets.values_list("revision", flat=True)) >= {first, third}
    assert [(r.push_id, reason in r.reason) for r in result.rejected] == [(2, True)]
    assert (state(repo).failures, state(repo).last_error) == (0, "")
    assert "upstream push 2 " in state(repo).last_rejection and reason in state(repo).last_rejection

    # The message announcing push 2 comes later: it fails alone, with the reason.
    with pytest.raises(PushRejected, match=reason) as rejected:
        ingest_pushes(repo, 2)
    assert isinstance(rejected.value, PermanentError)
    assert ingest_pushes(repo, 3).pushes == 0
    assert state(repo).failures == 0 and stored_push_ids(repo) == [1, 3]


@pytest.mark.parametrize("impossible, reason", IMPOSSIBLE_PUSHES.values(), ids=IMPOSSIBLE_PUSHES)
def test_the_message_for_an_impossible_push_fails_alone_before_later_pushes(hgmo, impossible, reason):
    repo = make_repository(hgmo)
    upstream_with_impossible_second_push(hgmo, impossible)

    with pytest.raises(PushRejected, match=reason):
        ingest_pushes(repo, 2)
    assert stored_push_ids(repo) == [1]

    assert ingest_pushes(repo, 3).pushes == 1
    assert stored_push_ids(repo) == [1, 3]
    assert state(repo).failures == 0


def test_an_impossible_last_push_costs_no_pull_afterwards(hgmo):
    repo = make_repository(hgmo)
    hgmo.commit_and_push(NAME, {"a.ftl": b"1"})
    hgmo.record_push(NAME, [hgmo.commit(NAME, {"a.ftl": b"2"})], user="nul\x00@example.com")
    ingest_pushes(repo)
    pulls = hgmo.hg_requests_seen

    result = ingest_pushes(repo)  # the next backfill run

    assert result.pushes == 0 and [r.push_id for r in result.rejected] == [2]
    assert hgmo.hg_requests_seen == pulls
    assert stored_push_ids(repo) == [1] and state(repo).failures == 0


# --- upstream lag ---------------------------------------------------------------------


def test_a_push_upstream_does_not_have_yet_is_retried_without_pulling_or_blaming_the_repository(hgmo, settings):
    settings.UPSTREAM_LAG_LIMIT = 123
    repo = make_repository(hgmo)
    hgmo.commit_and_push(NAME, {"a.ftl": b"1"})

    with pytest.raises(NotUpstreamYet, match="before the announced push 5") as lagging:
        ingest_pushes(repo, 5)

    assert lagging.value.give_up_after == 123
    assert hgmo.hg_requests_seen == 0  # neither cloned nor pulled
    assert not Push.objects.exists()
    assert (state(repo).failures, state(repo).last_error, state(repo).next_attempt) == (0, "", None)

    hgmo.commit_and_push(NAME, {"a.ftl": b"2"})
    hgmo.commit_and_push(NAME, {"a.ftl": b"3"})
    hgmo.commit_and_push(NAME, {"a.ftl": b"4"})
    hgmo.commit_and_push(NAME, {"a.ftl": b"5"})
    assert ingest_pushes(repo, 5).pushes == 5


# --- any failure is recorded for its repository --------------------------------------------


def block_clones_of(repository_base, forest="l10n-central"):
    """A file where the forest's clones must go: every write under it fails as a full disk would."""
    repository_base.mkdir(parents=True, exist_ok=True)
    (repository_base / forest).write_text("not a directory")


def test_an_os_error_is_recorded_and_raised_unchanged(hgmo, repository_base):
    repo = make_repository(hgmo)
    hgmo.commit_and_push(NAME, {"a.ftl": b"1"})
    block_clones_of(repository_base)

    with pytest.raises(OSError):
        ingest_pushes(repo, 1)
    first = state(repo)
    assert first.failures == 1 and first.next_attempt is not None
    assert first.last_error.startswith(("FileExistsError", "NotADirectoryError", "OSError"))

    with pytest.raises(OSError):
        reprocess_repository(repo)
    assert state(repo).failures == 2
    assert not Push.objects.exists()


def test_an_os_error_creating_a_new_repository_is_recorded(hgmo, repository_base):
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    hgmo.create_repo("l10n-central/fr")
    hgmo.commit("l10n-central/fr", {"a.ftl": b"1"})
    block_clones_of(repository_base)

    with pytest.raises(OSError):
        ingest_new_repository(*find_forest("l10n-central/fr"))

    assert state(Repository.objects.get(name="l10n-central/fr")).failures == 1


class BuggySession:
    """An HTTP session that hits a bug whatever is asked of it."""

    def __getattr__(self, name):
        def bug(*args, **kwargs):
            raise ValueError("a bug in the HTTP stack")

        return bug


def test_a_bug_is_recorded_and_raised_unchanged(hgmo):
    repo = make_repository(hgmo)

    with pytest.raises(ValueError, match="a bug in the HTTP stack"):
        ingest_pushes(repo, client=PushlogClient(session=BuggySession()))

    assert (state(repo).failures, state(repo).last_error) == (1, "ValueError: a bug in the HTTP stack")


# --- the same text rules for every source (issue 19) ---------------------------------------
#
# Each row is a hostile value in one field of a commit or a message, run through both paths: the
# Mercurial one (real repositories served by the simulated hg.mozilla.org) and the git one (real
# repositories served by the simulated GitHub). Both must store the same text, or reject it with the
# same reason.

GIT_NAME = "mozilla-l10n/hostile"
SOMEONE = b"Someone <someone@example.com>"
LONG_USER = ("Zoë 🦊 " * 20_000 + "<zoe@example.com>").encode()
LONG_DESCRIPTION = ("Übersetzung 🦊 lorem ipsum\n" * 60_000 + "The end.").encode()


def commit_row(field, value, stored, git_value=None, git_date=b"1700000000 +0000", git_headers=b""):
    """A hostile ``value`` (bytes) of a commit's ``field``, what both paths must store, and what the git
    commit holds when git writes the same text otherwise (its ``encoding`` header, a date hg cannot hold)."""
    return field, value, stored, git_value if git_value is not None else value, git_date, git_headers


HOSTILE_COMMITS = {
    "user in latin-1": commit_row("user", b"Zo\xeb <zoe@example.com>", "Zoë <zoe@example.com>"),
    "user with a NUL": commit_row("user", b"evil\x00user <e@example.com>", "evil\ufffduser <e@example.com>"),
    "user with an encoded surrogate": commit_row("user", b"\xed\xa0\x80 <s@example.com>", "í\xa0\x80 <s@example.com>"),
    "user with a cut UTF-8 sequence": commit_row("user", b"cut \xf0\x9f <c@example.com>", "cut ð\x9f <c@example.com>"),
    "user with control characters": commit_row("user", b"bell\x07 \x1b[31m <b@example.com>",
                                               "bell\x07 \x1b[31m <b@example.com>"),
    "user with a > in the name": commit_row("user", b"odd > name <x@example.com>", "odd > name <x@example.com>"),
    "user without an email": commit_row("user", b"just a name", "just a name"),
    "user of 120,000 characters": commit_row("user", LONG_USER, LONG_USER.decode()),
    "description with a NUL": commit_row("description", b"first\x00 after a NUL\n\nmore",
                                         "first\ufffd after a NUL\n\nmore"),
    "description in latin-1": commit_row("description", b"\xdcbersetzung f\xfcr de", "Übersetzung für de"),
    "description with an encoded surrogate": commit_row("description", b"lone \xed\xb0\x80", "lone í\xb0\x80"),
    "description with a cut UTF-8 sequence": commit_row("description", b"end \xe2\x82", "end â\x82"),
    "description with control characters": commit_row("description", b"bell \x07 escape \x1b[31m red\tback",
                                                      "bell \x07 escape \x1b[31m red\tback"),
    "empty description": commit_row("description", b"", ""),
    "description of 1.6 MB": commit_row("description", LONG_DESCRIPTION, LONG_DESCRIPTION.decode()),
    "description in latin-1, as git's encoding header says": commit_row(
        "description", "Übersetzung".encode(), "Übersetzung", git_value="Übersetzung".encode("latin-1"),
        git_headers=b"encoding ISO-8859-1\n"),
    "description under an encoding nobody knows": commit_row(
        "description", b"caf\xc3\xa9", "café", git_headers=b"encoding no-such-encoding\n"),
    "file name in latin-1": commit_row("file name", b"caf\xe9.ftl", "café.ftl"),
    "file name with an encoded surrogate": commit_row("file name", b"\xed\xa0\x80.ftl", "í\xa0\x80.ftl"),
    "file name with control characters": commit_row("file name", b"bell\x07 tab\t.ftl", "bell\x07 tab\t.ftl"),
    "file name of 244 bytes": commit_row("file name", ("ß" * 120 + ".ftl").encode(), "ß" * 120 + ".ftl"),
    # A commit's date is not stored: any date git can hold leaves the commit's text as hg's would be.
    "commit date in year 0": commit_row("commit date", SOMEONE, SOMEONE.decode(), git_date=b"-62167219200 +0000"),
    "commit date past year 9999": commit_row("commit date", SOMEONE, SOMEONE.decode(),
                                             git_date=b"99999999999999999999 +0000"),
    "commit date with an impossible time zone": commit_row("commit date", SOMEONE, SOMEONE.decode(),
                                                           git_date=b"1700000000 -9999"),
    "commit date that is no date": commit_row("commit date", SOMEONE, SOMEONE.decode(), git_date=b"yesterday"),
}


def stored_commit(revision):
    changeset = Changeset.objects.get(revision=revision)
    return changeset.user, changeset.description, sorted(changeset.files.values_list("path", flat=True))


def through_hg(hgmo, field, value):
    repo = make_repository(hgmo)
    user = value if field == "user" else SOMEONE
    message = value if field == "description" else b"A change"
    name = value if field == "file name" else b"a.ftl"
    node = hgmo.commit(NAME, {name: b"1"}, user=user, message=message)
    hgmo.push(NAME)
    result = ingest_pushes(repo)
    assert (result.pushes, list(result.rejected)) == (1, [])
    return stored_commit(node)


def through_git(github, field, value, date, headers):
    github.create_repo(GIT_NAME)
    repository = Repository.objects.create(name=GIT_NAME, url=github.repo_url(GIT_NAME), kind="git", branch="main")
    sha = github.commit_literally(GIT_NAME, {value if field == "file name" else b"a.ftl": b"1"},
                                  author=value if field == "user" else SOMEONE,
                                  message=value if field == "description" else b"A change",
                                  date=date, headers=headers)
    assert for_repository(repository).catch_up(repository).pushes == 1
    return stored_commit(sha)


@pytest.mark.parametrize("field, value, stored, git_value, git_date, git_headers", HOSTILE_COMMITS.values(),
                         ids=HOSTILE_COMMITS)
def test_a_hostile_commit_field_is_stored_alike_from_hg_and_from_git(hgmo, github, field, value, stored, git_value,
                                                                      git_date, git_headers):
    from_hg = through_hg(hgmo, field, value)
    from_git = through_git(github, field, git_value, git_date, git_headers)

    assert from_git == from_hg
    user, description, files = from_hg
    assert {"user": user, "description": description, "file name": files[0], "commit date": user}[field] == stored


# A message's fields: the pusher and the push date (hg's pushlog, GitHub's payload), the repository's
# name (hg's routing key, GitHub's full name) and URL (hg's repo_url, GitHub's clone_url).
HOSTILE_MESSAGES = {
    "pusher with a NUL": ("pusher", "nul\x00pusher@example.com", "NUL character"),
    "pusher with a lone surrogate": ("pusher", "lone\ud800@example.com", "not valid Unicode"),
    "pusher of 5,000 emoji": ("pusher", "pusher-" + "🦊" * 5_000 + "@example.com", None),
    "pusher with control characters": ("pusher", "bell\x07 \x1b[31m\nnext@example.com", None),
    "push date before year 1": ("date", YEAR_1 - 1, "outside years 1 to 9999"),
    "push date after year 9999": ("date", YEAR_9999 + 1, "outside years 1 to 9999"),
    "push date far past 2**63": ("date", 2**70, "outside years 1 to 9999"),
    "push date before 1970": ("date", -86_400, None),
    "push date after 2106": ("date", 2**32 + 1, None),
    "repository name with a NUL": ("name", "d\x00e", "rejected"),
    "repository name with a lone surrogate": ("name", "d\udfffe", "rejected"),
    "repository name of 1,000 characters": ("name", "d" * 1_000, "rejected"),
    "repository URL with a NUL": ("url", "https://example.com/d\x00e", "NUL character"),
    "repository URL with a lone surrogate": ("url", "https://example.com/d\ud800e", "not valid Unicode"),
}


def hg_message(hgmo, field, value):
    """What the hg path makes of the value: the stored push's (user, date), or why it was rejected."""
    if field in ("name", "url"):
        name = f"l10n-central/{value}" if field == "name" else NAME
        url = value if field == "url" else hgmo.repo_url(NAME)
        body = json.dumps(pulse.changegroup(name, url, [1], ["a" * 40])).encode()
        try:
            parse_hgpush(Delivery(body, "exchange/hgpushes/v2", name, "application/json"))
        except PermanentError as error:
            return str(error)
        return None
    repo = make_repository(hgmo)
    hgmo.record_push(NAME, [hgmo.commit(NAME, {"a.ftl": b"1"})],
                     **({"user": value} if field == "pusher" else {"date": value}))
    result = ingest_pushes(repo)
    if result.rejected:
        return result.rejected[0].reason
    push = Push.objects.get(repository=repo)
    return push.user, push.push_date


def git_message(github, field, value):
    """What the git path makes of the value: the stored push's (user, date), or why it was rejected."""
    github.create_repo(GIT_NAME)
    repository = Repository.objects.create(name=GIT_NAME, url=github.repo_url(GIT_NAME), kind="git", branch="main")
    tip = github.commit(GIT_NAME, {"a.ftl": b"1"})
    payload = push_payload(github, GIT_NAME, NULL, tip)
    payload["pusher"]["name"] = value if field == "pusher" else "pusher@example.com"
    payload["repository"]["pushed_at"] = value if field == "date" else 1_700_000_000
    if field == "name":
        payload["repository"]["full_name"] = f"mozilla-l10n/{value}"
    if field == "url":
        payload["repository"]["clone_url"] = value
    # json.dumps writes a lone surrogate as \ud800, as a JSON message on the wire carries it.
    body = json.dumps(webhook_message(payload)[1]).encode()
    try:
        push = source.parse_webhook(Delivery(body, source.WEBHOOKS_EXCHANGE, f"{payload['repository']['full_name']}/push"))
    except PermanentError as error:
        return str(error)
    if field in ("name", "url"):
        return None
    ingest_push(repository, push.after, before=push.before, pusher=push.pusher, pushed_at=push.pushed_at)
    stored = Push.objects.get(repository=repository)
    return stored.user, stored.push_date


@pytest.mark.parametrize("field, value, reason", HOSTILE_MESSAGES.values(), ids=HOSTILE_MESSAGES)
def test_a_hostile_message_field_is_stored_alike_or_rejected_alike_from_hg_and_from_github(hgmo, github, field,
                                                                                         value, reason):
    from_hg, from_git = hg_message(hgmo, field, value), git_message(github, field, value)

    if reason is None:  # stored, exactly, by both
        if field == "date":
            assert from_hg[1] == from_git[1] == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=value)
        else:
            assert from_hg[0] == from_git[0] == value
    else:  # rejected by both, with the same reason
        assert isinstance(from_hg, str) and isinstance(from_git, str), (from_hg, from_git)
        if reason != "rejected":  # names are checked by each source's own grammar
            assert reason in from_hg and reason in from_git, (from_hg, from_git)
        assert not Push.objects.exists()
