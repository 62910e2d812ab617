"""Writing changesets and pushes in bulk.

Every function here runs inside the caller's transaction and is idempotent:
rows that exist are found, not duplicated (inserts ignore conflicts, so a
parallel worker that got there first is harmless), and placeholders are
filled in place. New keys go in sorted order, so two workers inserting
overlapping rows never wait on each other in a cycle. The number of queries
depends on the number of chunks, not on the number of changesets.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

from django.db import connection

from .models import NULL_REVISION, Branch, Changeset, File, Push, Repository, path_digest

# Rows per INSERT and values per IN (...) where the database allows it.
CHUNK = 5000


def chunk_size(params_per_row=1):
    limit = connection.features.max_query_params or 65535
    return max(1, min(CHUNK, limit // params_per_row - 1))


def chunked(items, size):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_ignoring_conflicts(model, objects, params_per_row):
    if objects:
        model.objects.bulk_create(objects, ignore_conflicts=True, batch_size=chunk_size(params_per_row))


def changeset_rows(revisions):
    """{revision: (id, placeholder)} for the revisions that exist."""
    rows = {}
    for chunk in chunked(set(revisions), chunk_size()):
        for revision, pk, placeholder in Changeset.objects.filter(revision__in=chunk).values_list(
            "revision", "id", "placeholder"
        ):
            rows[revision] = (pk, placeholder)
    return rows


def ids_by(model, field, values):
    """{value: id} of the rows whose unique ``field`` is one of ``values`` (few), creating the missing ones."""
    values = set(values)
    ids = dict(model.objects.filter(**{f"{field}__in": values}).values_list(field, "id"))
    missing = values - ids.keys()
    if missing:
        _insert_ignoring_conflicts(model, [model(**{field: value}) for value in sorted(missing)], 1)
        ids.update(model.objects.filter(**{f"{field}__in": missing}).values_list(field, "id"))
    return ids


def branch_ids(names):
    """{name: id}; a git commit's branch, None, stays None."""
    return {**ids_by(Branch, "name", {name for name in names if name is not None}), None: None}


def file_ids(paths):
    """{path: id}, creating the File rows that do not exist yet."""
    by_hash = {path_digest(path): path for path in set(paths)}
    ids = {}

    def fetch(hashes):
        for chunk in chunked(hashes, chunk_size()):
            for path_hash, pk in File.objects.filter(path_hash__in=chunk).values_list("path_hash", "id"):
                ids[by_hash[path_hash]] = pk

    fetch(by_hash)
    missing = [h for h, path in by_hash.items() if path not in ids]
    if missing:
        _insert_ignoring_conflicts(File, [File(path=by_hash[h], path_hash=h) for h in sorted(missing)], 2)
        fetch(missing)
    return ids


def ensure_placeholders(revisions):
    """{revision: id}, creating hash-only placeholders for revisions not seen yet."""
    rows = changeset_rows(revisions)
    missing = set(revisions) - rows.keys()
    if missing:
        _insert_ignoring_conflicts(Changeset, [Changeset(revision=r, placeholder=True) for r in sorted(missing)], 5)
        rows.update(changeset_rows(missing))
    return {revision: pk for revision, (pk, _) in rows.items()}


@dataclass
class StoredChangesets:
    ids: dict  # revision -> id, for every record and its parents
    created: int = 0
    filled: int = 0


def store_changesets(records):
    """Store ChangesetRecords (parents before children); fill placeholders in place.

    A parent that is neither stored nor among ``records`` becomes a
    placeholder, so history is linked without walking it.
    """
    by_revision = {record.revision: record for record in records}
    parent_revisions = {p for record in records for p in record.parents} - by_revision.keys()
    known = changeset_rows([*by_revision, *parent_revisions])

    new = [r for r in by_revision.values() if r.revision not in known]
    if new or parent_revisions - known.keys():
        branches = branch_ids({record.branch for record in new})
        rows = [
            Changeset(
                revision=r.revision,
                user=r.user,
                description=r.description,
                branch_id=branches[r.branch],
                placeholder=False,
            )
            for r in new
        ]
        # The null revision is never a placeholder: there is nothing to fill in.
        rows += [Changeset(revision=p, placeholder=p != NULL_REVISION) for p in sorted(parent_revisions - known.keys())]
        _insert_ignoring_conflicts(Changeset, rows, 5)
        known.update(changeset_rows([row.revision for row in rows]))

    # Placeholders found, or created meanwhile by a comparison, get their data now.
    to_fill = [r for r in by_revision.values() if known[r.revision][1]]
    if to_fill:
        branches = branch_ids({record.branch for record in to_fill})
        Changeset.objects.bulk_update(
            [
                Changeset(
                    id=known[r.revision][0],
                    user=r.user,
                    description=r.description,
                    branch_id=branches[r.branch],
                    placeholder=False,
                )
                for r in to_fill
            ],
            ["user", "description", "branch", "placeholder"],
            batch_size=chunk_size(5),
        )

    written = new + to_fill
    paths = file_ids(path for record in written for path in record.files)
    ids = {revision: pk for revision, (pk, _) in known.items()}
    FileLink = Changeset.files.through
    _insert_ignoring_conflicts(
        FileLink,
        [FileLink(changeset_id=ids[r.revision], file_id=paths[path]) for r in written for path in set(r.files)],
        2,
    )
    ParentLink = Changeset.parents.through
    _insert_ignoring_conflicts(
        ParentLink,
        [ParentLink(from_changeset_id=ids[r.revision], to_changeset_id=ids[p]) for r in written for p in r.parents],
        2,
    )
    created = sum(1 for r in new if not known[r.revision][1])
    return StoredChangesets(ids=ids, created=created, filled=len(to_fill))


def link_repository(repository, changeset_ids):
    Link = Repository.changesets.through
    _insert_ignoring_conflicts(
        Link, [Link(repository_id=repository.pk, changeset_id=pk) for pk in set(changeset_ids)], 2
    )


@dataclass
class StoredPushes:
    pushes: int = 0
    changesets: int = 0
    placeholders_filled: int = 0


def store_pushes(repository, pushes, records):
    """Store pushes (PushRecords) and their changesets (ChangesetRecords) for one repository.

    Pushes that exist keep their data; their changeset links are completed,
    which makes re-importing a repository a repair, not a duplicate.
    """
    push_ids = [push.push_id for push in pushes]
    existing = set(Push.objects.filter(repository=repository, push_id__in=push_ids).values_list("push_id", flat=True))
    stored = store_changesets(records)
    link_repository(repository, (stored.ids[record.revision] for record in records))
    new_pushes = [push for push in pushes if push.push_id not in existing]
    _insert_ignoring_conflicts(
        Push,
        [
            Push(repository=repository, push_id=p.push_id, user=p.user, push_date=_from_epoch(p.date))
            for p in new_pushes
        ],
        4,
    )
    pks = dict(Push.objects.filter(repository=repository, push_id__in=push_ids).values_list("push_id", "id"))
    PushLink = Push.changesets.through
    _insert_ignoring_conflicts(
        PushLink,
        [PushLink(push_id=pks[p.push_id], changeset_id=stored.ids[c]) for p in pushes for c in set(p.changesets)],
        2,
    )
    return StoredPushes(len(new_pushes), stored.created, stored.filled)


def _from_epoch(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
