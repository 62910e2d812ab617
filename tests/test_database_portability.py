"""What every supported database must keep exactly: four-byte characters, paths that differ
only by case or trailing spaces, and paths longer than any index."""

import pytest

from life.ingest import ingest_pushes
from life.models import Changeset, File, Repository

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
