"""What every supported database must keep exactly: four-byte characters, paths that differ
only by case or trailing spaces, and paths longer than any index."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from life.hg.ingest import ingest_pushes
from life.models import Changeset, File, Push, Repository
from life.store import branch_ids
from plumbing import bulk
from worker.models import DeadLetter

pytestmark = pytest.mark.django_db

LONG_PATH = "/".join(f"{i:02d}" + "x" * 97 for i in range(20)) + ".ftl"  # 2,000+ characters


def test_emoji_and_near_identical_paths_round_trip(hgmo):
    assert len(LONG_PATH) >= 2000
    name = "l10n-central/de"
    hgmo.create_repo(name)
    repo = Repository.objects.create(name=name, url=hgmo.repo_url(name))
    paths = ["a.txt", "a.txt ", "A.txt", LONG_PATH, "emoji/🦊.ftl"]
    node, _ = hgmo.commit_and_push(
        name, {path: b"x\n" for path in paths}, message="Fix 🐛 in 🦊 strings", user="Zoë 🦊 <zoe@example.com>"
    )

    ingest_pushes(repo, 1)

    changeset = Changeset.objects.get(revision=node)
    assert changeset.description == "Fix 🐛 in 🦊 strings"
    assert changeset.user == "Zoë 🦊 <zoe@example.com>"
    assert sorted(changeset.files.values_list("path", flat=True)) == sorted(paths)
    assert File.objects.filter(path__in=["a.txt", "a.txt ", "A.txt"]).count() == 3
    long_file = next(f for f in changeset.files.all() if len(f.path) > 1000)
    assert long_file.path == LONG_PATH


# What SQL text could get wrong: quotes, backslashes, Ctrl-Z, %-formats, line ends, four-byte characters
# (no NUL: no database stores one, and plumbing.text never hands one over).
AWKWARD_TEXTS = ["it's", 'say "hi"', "back\\slash\\", "ctrl-z\x1a", "100% %s %(x)s {}",
                 "line\r\nend\n", "🦊 Zoë", "", " ", "\\'; DROP TABLE life_changeset; --"]


def test_bulk_rows_round_trip_exactly_in_statements_of_bounded_size(monkeypatch):
    branch = branch_ids(["default"])["default"]
    rows = [(f"{n:039x}f", text, text * (n % 3), branch if n % 2 else None, bool(n % 3 == 1))
            for n, text in enumerate(AWKWARD_TEXTS * 30)]
    # A bound this small splits MariaDB's statements every few rows; it must not lose or change one.
    monkeypatch.setattr(bulk, "MYSQL_STATEMENT_CHARS", 200)

    with CaptureQueriesContext(connection) as queries:
        bulk.insert_rows(Changeset, ["revision", "user", "description", "branch", "placeholder"], rows)
        bulk.insert_rows(Changeset, ["revision", "user", "description", "branch", "placeholder"], rows)  # all ignored

    stored = Changeset.objects.filter(revision__endswith="f").order_by("revision")
    assert list(stored.values_list("revision", "user", "description", "branch", "placeholder")) == rows
    if connection.vendor == "mysql":
        inserts = [query["sql"] for query in queries if query["sql"].startswith("INSERT")]
        assert len(inserts) > 2 * 30 and max(len(sql.partition(" VALUES ")[2]) for sql in inserts) < 400


def test_bulk_bytes_round_trip_exactly():
    bodies = [b"\xff\xfe not UTF-8", b"nul \x00 quote ' backslash \\", b""]
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [(body, False, "", "{}", "exchange/x", f"route.{n}", "", "error", created, 0, 0, False)
            for n, body in enumerate(bodies)]

    bulk.insert_rows(DeadLetter, ["body", "body_truncated", "content_type", "headers", "exchange", "routing_key",
                                  "source", "error", "created", "retries", "replays", "resolved"], rows)

    assert [bytes(body) for body in DeadLetter.objects.order_by("routing_key").values_list("body", flat=True)] == bodies


def test_reingesting_finds_the_same_file_rows(hgmo):
    name = "l10n-central/fr"
    hgmo.create_repo(name)
    repo = Repository.objects.create(name=name, url=hgmo.repo_url(name))
    hgmo.commit_and_push(name, {"a.txt": b"1", "a.txt ": b"1", "A.txt": b"1"})
    hgmo.commit_and_push(name, {"a.txt": b"2", "a.txt ": b"2", "A.txt": b"2", LONG_PATH: b"2"})

    ingest_pushes(repo, 1)
    ingest_pushes(repo, 2)

    assert File.objects.count() == 4
    assert Changeset.files.through.objects.count() == 7


def test_the_test_database_passes_the_character_set_check():
    from django.db import connection

    from life.checks import mysql_character_set

    assert mysql_character_set(None, databases=["default"]) == []
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@character_set_database, @@collation_database")
            assert cursor.fetchone() == ("utf8mb4", "utf8mb4_bin")


@pytest.mark.django_db(transaction=True)
def test_the_migration_to_unbounded_branch_names_and_push_users_keeps_every_row():
    from datetime import datetime, timezone

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from life.models import Branch, Push, text_digest

    before = [("life", "0004_repository_kind_branch_and_stored_revision")]
    after = [("life", "0005_unbounded_upstream_text")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    names = ["x" * 255, "Ünïcode 🦊", "A", "a", "GECKO_BRANCH"]
    for name in names:
        old.get_model("life", "Branch").objects.create(name=name)
    repository = old.get_model("life", "Repository").objects.create(name="l10n-central/de", url="http://x/de/")
    kept = list(old.get_model("life", "Branch").objects.values_list("name", flat=True))
    date = datetime(2020, 5, 4, 12, tzinfo=timezone.utc)
    old.get_model("life", "Push").objects.create(repository=repository, push_id=1, user="u" * 255, push_date=date)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(after)

        assert sorted(Branch.objects.values_list("name", "name_hash")) == sorted(
            (name, text_digest(name)) for name in kept)
        assert Push.objects.values_list("push_id", "user", "push_date").get() == (1, "u" * 255, date)
        Branch.objects.create(name="y" * 10_000)
        Branch.objects.create(name="a ")
        assert Branch.objects.filter(name__in=["y" * 10_000, "a ", "a"]).count() == 3
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_to_one_index_per_unique_key_keeps_every_row_and_its_uniqueness():
    """0008 moves the uniqueness of a changeset's revision and a file's path digest into constraints:
    the rows stay, a duplicate is still refused, and the migration goes back and forth."""
    from django.db import IntegrityError, connection, transaction
    from django.db.migrations.executor import MigrationExecutor

    from life.models import path_digest

    before = [("life", "0007_link_tables_unconstrained")]
    after = [("life", "0008_unique_keys_one_index")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    revisions = [f"{n:040x}" for n in range(3)]
    for revision in revisions:
        old.get_model("life", "Changeset").objects.create(revision=revision, user="u", placeholder=revision.endswith("2"))
    old.get_model("life", "File").objects.create(path="de/a.ftl", path_hash=path_digest("de/a.ftl"))
    try:
        for target in (after, before, after):
            executor = MigrationExecutor(connection)
            executor.migrate(target)
            apps = executor.loader.project_state(target).apps
            changesets, files = apps.get_model("life", "Changeset"), apps.get_model("life", "File")
            assert sorted(changesets.objects.values_list("revision", "placeholder")) == [
                (revisions[0], False), (revisions[1], False), (revisions[2], True)]
            assert list(files.objects.values_list("path", "path_hash")) == [("de/a.ftl", path_digest("de/a.ftl"))]
            with pytest.raises(IntegrityError), transaction.atomic():
                changesets.objects.create(revision=revisions[0])
            with pytest.raises(IntegrityError), transaction.atomic():
                files.objects.create(path="de/a.ftl", path_hash=path_digest("de/a.ftl"))
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_link_tables_lose_their_first_columns_index_and_keep_every_link_and_its_uniqueness():
    """0009 declares the link tables as models and drops the index of their first column: the links stay,
    a duplicate is still refused, each table is left with its key, its unique pair and its second
    column's index, and the migration goes back and forth."""
    from django.db import IntegrityError, connection, transaction
    from django.db.migrations.executor import MigrationExecutor

    before = [("life", "0008_unique_keys_one_index")]
    after = [("life", "0009_link_tables_indexed_by_their_pair")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    repository = old.get_model("life", "Repository").objects.create(name="mozilla-l10n/x", url="https://example.com/x")
    parent, child = (old.get_model("life", "Changeset").objects.create(revision=letter * 40) for letter in "ab")
    path = old.get_model("life", "File").objects.create(path="de/a.ftl", path_hash="0" * 64)
    push = old.get_model("life", "Push").objects.create(repository=repository, push_id=1, user="u",
                                                        push_date="2026-01-01T00:00:00Z")
    child.parents.add(parent)
    child.files.add(path)
    push.changesets.add(parent, child)
    repository.changesets.add(parent, child)
    # (table, its columns, the pairs linked)
    links = [("life_changeset_parents", ("from_changeset_id", "to_changeset_id"), [(child.pk, parent.pk)]),
             ("life_changeset_files", ("changeset_id", "file_id"), [(child.pk, path.pk)]),
             ("life_push_changesets", ("push_id", "changeset_id"), [(push.pk, parent.pk), (push.pk, child.pk)]),
             ("life_repository_changesets", ("repository_id", "changeset_id"),
              [(repository.pk, parent.pk), (repository.pk, child.pk)])]
    try:
        for target in (after, before, after):
            executor = MigrationExecutor(connection)
            executor.migrate(target)
            with connection.cursor() as cursor:
                for table, (first, second), pairs in links:
                    cursor.execute(f"SELECT {first}, {second} FROM {table}")
                    assert sorted(cursor.fetchall()) == sorted(pairs), table
                    with pytest.raises(IntegrityError), transaction.atomic():
                        cursor.execute(f"INSERT INTO {table} ({first}, {second}) VALUES (%s, %s)", pairs[0])
                    if target == after:
                        indexes = [info["columns"] for info in connection.introspection.get_constraints(
                            cursor, table).values() if info["index"] or info["primary_key"] or info["unique"]]
                        assert sorted(indexes) == sorted([["id"], [first, second], [second]]), table
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_deleting_a_repository_takes_its_links_along(hgmo):
    """The link tables carry no database constraint (life/models.py): Django's delete removes them."""
    name = "l10n-central/it"
    hgmo.create_repo(name)
    repo = Repository.objects.create(name=name, url=hgmo.repo_url(name))
    hgmo.commit_and_push(name, {"a.txt": b"1"})
    hgmo.commit_and_push(name, {"b.txt": b"2"})
    ingest_pushes(repo, 2)
    changesets = list(Changeset.objects.filter(repositories=repo))
    assert len(changesets) == 2 and Push.changesets.through.objects.count() == 2

    repo.delete()
    Changeset.objects.filter(pk__in=[c.pk for c in changesets]).delete()

    for link in (Push.changesets.through, Repository.changesets.through, Changeset.files.through,
                 Changeset.parents.through):
        assert link.objects.count() == 0, link
