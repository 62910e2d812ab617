"""Push ingestion against real repositories served by the simulated hg.mozilla.org."""

import shutil

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from life import storage
from life.hg import clone as hg_clone
from life.hg.ingest import find_forest, ingest_new_repository, ingest_pushes, reprocess_repository
from life.models import NULL_REVISION, Changeset, Forest, Push, Repository
from plumbing.errors import PermanentError, TransientError

pytestmark = pytest.mark.django_db


def make_repository(hgmo, name, **fields):
    hgmo.create_repo(name)
    return Repository.objects.create(name=name, url=hgmo.repo_url(name), **fields)


def stored(revision):
    return Changeset.objects.get(revision=revision)


def snapshot():
    """Everything ingestion writes, as comparable plain data."""
    return {
        "changesets": sorted(
            Changeset.objects.values_list("revision", "user", "description", "branch__name", "placeholder")
        ),
        "files": sorted(Changeset.files.through.objects.values_list("changeset__revision", "file__path")),
        "parents": sorted(
            Changeset.parents.through.objects.values_list("from_changeset__revision", "to_changeset__revision")
        ),
        "pushes": sorted(Push.objects.values_list("repository__name", "push_id", "user", "push_date")),
        "push_changesets": sorted(
            Push.changesets.through.objects.values_list("push__push_id", "changeset__revision")
        ),
        "repository_changesets": sorted(
            Repository.changesets.through.objects.values_list("repository__name", "changeset__revision")
        ),
    }


def test_first_push_stores_changeset_and_push(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    node, push_id = hgmo.commit_and_push(
        "l10n-central/de", {"browser/app.ftl": b"hello = Hallo\n"}, message="Add app", user="Anna <anna@example.com>"
    )

    result = ingest_pushes(repo, push_id)

    assert (result.pushes, result.changesets) == (1, 1)
    changeset = stored(node)
    assert changeset.user == "Anna <anna@example.com>"
    assert changeset.description == "Add app"
    assert changeset.branch.name == "default"
    assert not changeset.placeholder
    assert [f.path for f in changeset.files.all()] == ["browser/app.ftl"]
    assert [p.revision for p in changeset.parents.all()] == [NULL_REVISION]
    push = Push.objects.get(repository=repo, push_id=1)
    assert push.user == "pusher@example.com"
    assert [c.revision for c in push.changesets.all()] == [node]
    assert repo.changesets.filter(revision=node).exists()
    assert storage.clone_path(repo).joinpath(".hg").is_dir()


def test_several_pushes_in_one_batch_and_paging(hgmo, settings):
    settings.PUSHLOG_PAGE_SIZE = 2
    repo = make_repository(hgmo, "l10n-central/fr")
    pushed = []
    for i in range(5):
        first = hgmo.commit("l10n-central/fr", {f"a{i}.ftl": b"a\n"}, message=f"first {i}")
        second = hgmo.commit("l10n-central/fr", {f"b{i}.ftl": b"b\n"}, message=f"second {i}")
        pushed.append((hgmo.push("l10n-central/fr"), first, second))

    result = ingest_pushes(repo, 5)

    assert (result.pushes, result.changesets) == (5, 10)
    for push_id, first, second in pushed:
        push = Push.objects.get(repository=repo, push_id=push_id)
        assert {c.revision for c in push.changesets.all()} == {first, second}
        assert [p.revision for p in stored(second).parents.all()] == [first]


def test_gap_is_recovered_from_last_stored_push(hgmo):
    repo = make_repository(hgmo, "l10n-central/it")
    hgmo.commit_and_push("l10n-central/it", {"a": b"1"})
    ingest_pushes(repo, 1)
    # The worker was down for pushes 2 and 3; push 4's message arrives.
    missed = [hgmo.commit_and_push("l10n-central/it", {"a": str(i).encode()})[0] for i in (2, 3, 4)]

    result = ingest_pushes(repo, 4)

    assert result.pushes == 3
    assert sorted(Push.objects.filter(repository=repo).values_list("push_id", flat=True)) == [1, 2, 3, 4]
    assert all(stored(node).pushes.filter(repository=repo).exists() for node in missed)


def test_target_without_message_uses_upstream_last_push(hgmo):
    repo = make_repository(hgmo, "l10n-central/ja")
    hgmo.commit_and_push("l10n-central/ja", {"a": b"1"})
    hgmo.commit_and_push("l10n-central/ja", {"a": b"2"})

    assert ingest_pushes(repo).pushes == 2


def test_merge_has_two_parents_and_named_branch(hgmo):
    repo = make_repository(hgmo, "mozilla-central")
    base = hgmo.commit("mozilla-central", {"base": b"0"})
    left = hgmo.commit("mozilla-central", {"left": b"1"}, parents=[base])
    right = hgmo.commit("mozilla-central", {"right": b"2"}, parents=[base], branch="GECKO_BRANCH")
    merge = hgmo.commit("mozilla-central", {"left": b"merged"}, parents=[left, right], message="merge")
    hgmo.push("mozilla-central")

    ingest_pushes(repo, 1)

    assert [p.revision for p in stored(merge).parents.order_by("id")] == [left, right]
    assert stored(right).branch.name == "GECKO_BRANCH"
    assert stored(left).branch.name == "default"
    assert set(stored(base).children.values_list("revision", flat=True)) == {left, right}


def test_odd_file_names_and_text_survive(hgmo):
    repo = make_repository(hgmo, "l10n-central/ca-valencia")
    odd = ["with space.ftl", "trailing space ", "naïve/ünïcødé.ftl", "emoji 🎉.txt"]
    node, _ = hgmo.commit_and_push(
        "l10n-central/ca-valencia",
        {path: b"x\n" for path in odd},
        message="Añadir 🎉 strings",
        user="Zoë 🦊 <zoe@example.com>",
    )

    ingest_pushes(repo, 1)

    changeset = stored(node)
    assert sorted(f.path for f in changeset.files.all()) == sorted(odd)
    assert changeset.description == "Añadir 🎉 strings"
    assert changeset.user == "Zoë 🦊 <zoe@example.com>"


def test_placeholder_is_filled_by_later_push_not_duplicated(hgmo):
    repo = make_repository(hgmo, "l10n-central/es-ES")
    node = hgmo.commit("l10n-central/es-ES", {"a.ftl": b"a = b\n"}, message="real data", user="u <u@example.com>")
    placeholder = Changeset.objects.create(revision=node, placeholder=True)
    hgmo.push("l10n-central/es-ES")

    result = ingest_pushes(repo, 1)

    assert result.placeholders_filled == 1
    changeset = stored(node)
    assert changeset.pk == placeholder.pk
    assert not changeset.placeholder
    assert (changeset.user, changeset.description) == ("u <u@example.com>", "real data")
    assert [f.path for f in changeset.files.all()] == ["a.ftl"]
    assert Changeset.objects.filter(revision=node).count() == 1


def test_batches_of_thousands_are_stored_alike_whether_all_new_or_holding_a_placeholder():
    """A batch of thousands of new changesets goes to the database the fastest way it has (a plain
    COPY on PostgreSQL); one that holds a placeholder, or whose first changeset is stored, goes the
    careful way. Either way every changeset is stored once, with its id, its parent and its file, and
    the placeholder keeps its row."""
    from django.db import transaction

    from life.records import ChangesetRecord
    from life.store import store_changesets

    revisions = [f"{n:040x}" for n in range(1, 2301)]
    records = [ChangesetRecord(revision=revision, user=f"u{n}", description=f"change {n}", branch=None,
                               parents=(revisions[n - 1] if n else NULL_REVISION,), files=(f"de/{n % 7}.ftl",))
               for n, revision in enumerate(revisions)]
    placeholder = Changeset.objects.create(revision=revisions[1500], placeholder=True)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = store_changesets(records[:1100])
    with transaction.atomic():
        second = store_changesets(records[1100:])
    with transaction.atomic(), CaptureQueriesContext(connection) as queries_again:
        again = store_changesets(records[:1100])  # a fork's history: every row stored already

    copies = [[query for query in captured.captured_queries if query["sql"].startswith('COPY "life_changeset" ')]
              for captured in (queries, queries_again)]
    assert [bool(copied) for copied in copies] == [connection.vendor == "postgresql", False]
    assert (first.created, first.filled, second.created, second.filled) == (1100, 0, 1199, 1)
    assert (again.created, again.filled, again.ids) == (0, 0, first.ids)
    rows = dict(Changeset.objects.filter(revision__in=revisions).values_list("revision", "id"))
    assert {**first.ids, **second.ids}.items() >= rows.items() and len(rows) == 2300
    assert rows[revisions[1500]] == placeholder.pk
    assert dict(Changeset.objects.filter(revision__in=revisions, placeholder=False).values_list(
        "revision", "user")) == {record.revision: record.user for record in records}
    links = Changeset.parents.through.objects.filter(from_changeset__revision__in=revisions)
    assert sorted(links.values_list("from_changeset__revision", "to_changeset__revision")) == [
        (record.revision, record.parents[0]) for record in records]
    files = Changeset.files.through.objects.filter(changeset__revision__in=revisions)
    assert sorted(files.values_list("changeset__revision", "file__path")) == [
        (record.revision, record.files[0]) for record in records]


def test_reingestion_and_reprocess_change_nothing(hgmo):
    repo = make_repository(hgmo, "l10n-central/pl")
    hgmo.commit_and_push("l10n-central/pl", {"a": b"1"})
    hgmo.commit_and_push("l10n-central/pl", {"b": b"2"})
    ingest_pushes(repo, 2)
    before = snapshot()

    assert ingest_pushes(repo, 2).pushes == 0
    assert ingest_pushes(repo, 1).pushes == 0
    reprocessed = reprocess_repository(repo, reclone=True)

    assert (reprocessed.pushes, reprocessed.changesets) == (0, 0)
    assert snapshot() == before


def test_reprocess_repairs_missing_rows(hgmo):
    repo = make_repository(hgmo, "l10n-central/nl")
    node, _ = hgmo.commit_and_push("l10n-central/nl", {"a": b"1"})
    ingest_pushes(repo, 1)
    before = snapshot()
    Push.changesets.through.objects.all().delete()
    Changeset.files.through.objects.filter(changeset__revision=node).delete()
    Changeset.objects.filter(revision=node).update(placeholder=True, user="", description="")

    call_command("reprocess-repo", "l10n-central/nl")

    assert snapshot() == before


def test_reprocess_of_an_up_to_date_repository_writes_nothing_but_its_sync_state(hgmo, settings):
    settings.PUSHLOG_PAGE_SIZE = 2
    repo = make_repository(hgmo, "l10n-central/nl")
    for i in range(5):
        hgmo.commit_and_push("l10n-central/nl", {f"{i}.ftl": b"1", "all.ftl": str(i).encode()})
    hgmo.commit("l10n-central/nl", {"unpushed.ftl": b"a head in no push"})
    reprocess_repository(repo)
    before = snapshot()

    with CaptureQueriesContext(connection) as queries:
        result = reprocess_repository(repo)

    assert (result.pushes, result.changesets, result.placeholders_filled, result.rejected) == (0, 0, 0, [])
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes and all("life_syncstate" in sql for sql in writes)
    assert snapshot() == before


def test_reprocess_makes_stored_pushes_match_upstream(hgmo):
    repo = make_repository(hgmo, "l10n-central/nl")
    first, _ = hgmo.commit_and_push("l10n-central/nl", {"a": b"1"}, user="u <u@example.com>")
    second, _ = hgmo.commit_and_push("l10n-central/nl", {"a": b"2"})
    head = hgmo.commit("l10n-central/nl", {"a": b"3"})  # in no push yet
    ingest_pushes(repo, 2)
    before = snapshot()
    # What a bug, an old version (users cut at 255 characters) or a hand could have left behind:
    Push.objects.filter(repository=repo, push_id=1).update(user="pusher@exam", push_date=timezone.now())
    Push.objects.get(repository=repo, push_id=2).changesets.add(stored(first))
    repo.changesets.remove(stored(second))

    result = reprocess_repository(repo)

    assert (result.pushes, result.changesets) == (0, 1)
    after = snapshot()
    assert (after["pushes"], after["push_changesets"]) == (before["pushes"], before["push_changesets"])
    assert after["repository_changesets"] == sorted([*before["repository_changesets"], ("l10n-central/nl", head)])
    assert not stored(head).placeholder and stored(head).user


def test_reprocess_unknown_repository_is_a_clear_error():
    with pytest.raises(CommandError, match="unknown repository 'nope/de'"):
        call_command("reprocess-repo", "nope/de")


def test_fork_shares_the_clone_of_what_it_forks(hgmo):
    parent = make_repository(hgmo, "mozilla-central")
    base, _ = hgmo.commit_and_push("mozilla-central", {"a": b"1"})
    ingest_pushes(parent, 1)
    # A fork starts as a copy of its parent (history and pushlog), then diverges.
    shutil.copytree(hgmo.root / "mozilla-central", hgmo.root / "projects" / "fork")
    forked = hgmo.commit("projects/fork", {"b": b"fork only"})
    hgmo.push("projects/fork")
    fork = Repository.objects.create(name="projects/fork", url=hgmo.repo_url("projects/fork"), fork_of=parent)

    ingest_pushes(fork, 2)

    assert storage.clone_path(fork) == storage.clone_path(parent)
    assert not (storage.base() / "projects").exists()
    assert set(fork.changesets.values_list("revision", flat=True)) == {base, forked}
    assert Changeset.objects.filter(revision=base).count() == 1


def test_newrepo_with_content_stores_all_heads_without_pushes(hgmo):
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    hgmo.create_repo("l10n-central/sr-Latn")
    root = hgmo.commit("l10n-central/sr-Latn", {"a": b"1"})
    head_one = hgmo.commit("l10n-central/sr-Latn", {"b": b"2"}, parents=[root])
    head_two = hgmo.commit("l10n-central/sr-Latn", {"c": b"3"}, parents=[root])

    repo, result = ingest_new_repository(*find_forest("l10n-central/sr-Latn"))

    assert result.changesets == 3
    assert repo.locale.code == "sr-Latn"
    assert repo.forest.name == "l10n-central"
    assert repo.url == hgmo.repo_url("l10n-central/sr-Latn")
    assert set(repo.changesets.values_list("revision", flat=True)) == {root, head_one, head_two}
    assert not Push.objects.filter(repository=repo).exists()


def test_newrepo_empty_and_unknown_forest(hgmo):
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    hgmo.create_repo("l10n-central/ja-JP-mac")
    hgmo.create_repo("elsewhere/de")

    repo, result = ingest_new_repository(*find_forest("l10n-central/ja-JP-mac"))

    assert repo.name == "l10n-central/ja-JP-mac" and result.changesets == 0
    assert not repo.changesets.exists()
    assert repo.sync_state.last_synced is not None
    assert find_forest("elsewhere/de") is None
    assert not Repository.objects.filter(name="elsewhere/de").exists()


@pytest.mark.parametrize("name", ["../etc", "l10n-central/../../x", "/abs/path", "a//b", "a/./b", "de\x00", "a\nb"])
def test_path_escaping_repository_name_is_refused(name, repository_base):
    repo = Repository(name=name, url="http://127.0.0.1:9/x/")
    with pytest.raises(PermanentError):
        storage.clone_path(repo)
    with pytest.raises(PermanentError):
        find_forest(name)
    assert not repository_base.exists() or not any(repository_base.iterdir())


def test_upstream_unreachable_is_retriable_and_stores_nothing(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    hgmo.stop()

    with pytest.raises(TransientError, match="json-pushes"):
        ingest_pushes(repo, 1)
    assert not Push.objects.exists()
    assert Changeset.objects.count() == 1  # the null changeset


def test_upstream_error_during_pull_is_retriable(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    hgmo.set_fault("error", "l10n-central/de")

    with pytest.raises(TransientError):
        ingest_pushes(repo, 1)
    assert not Push.objects.exists()

    hgmo.set_fault(None)
    assert ingest_pushes(repo, 1).pushes == 1


def test_broken_clone_is_removed_and_recloned(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    path = storage.clone_path(repo)
    (path / ".hg").mkdir(parents=True)
    (path / ".hg" / "garbage").write_text("half a clone")

    assert ingest_pushes(repo, 1).pushes == 1
    assert hg_clone.is_usable_clone(path)
    assert not (path / ".hg" / "garbage").exists()


def test_pushlog_naming_changesets_the_clone_lacks_is_permanent(hgmo):
    repo = make_repository(hgmo, "l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a": b"1"})
    hgmo.set_fault("lie", "l10n-central/de")

    with pytest.raises(PermanentError, match="not in the clone"):
        ingest_pushes(repo, 1)
    assert not Push.objects.exists()
