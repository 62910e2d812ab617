"""What upstream can legally produce is stored exactly; what it cannot is rejected alone; every failure is recorded.

Against real repositories served by the simulated hg.mozilla.org, on every supported database.
"""

import pytest

from life.hg.ingest import PushRejected, find_forest, ingest_new_repository, ingest_pushes, reprocess_repository
from life.hg.pushlog import PushlogClient
from life.models import Branch, Changeset, Forest, Push, Repository, SyncState
from plumbing.errors import NotUpstreamYet, PermanentError

pytestmark = pytest.mark.django_db

NAME = "l10n-central/de"


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
