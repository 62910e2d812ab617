"""Writing changesets and pushes in bulk.

Every function here runs inside the caller's transaction and is idempotent:
rows that exist are found, not duplicated (inserts ignore conflicts, so a
parallel worker that got there first is harmless), and placeholders are
filled in place. New keys go in sorted order, so two workers inserting
overlapping rows never wait on each other in a cycle. The number of queries
depends on the number of chunks, not on the number of changesets.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.db import connection
from django.db.models import Exists, OuterRef

from plumbing.bulk import append_rows, chunk_size, chunked, insert_new_rows, insert_rows

from .completeness import StoredPush
from .models import NULL_REVISION, Branch, Changeset, File, Push, Repository, text_digest


def lock_repository(repository):
    """The repository's row, locked until the end of the current transaction: one writer of its
    pushes at a time."""
    return Repository.objects.select_for_update().get(pk=repository.pk)


def changeset_rows(revisions):
    """{revision: (id, placeholder)} for the revisions that exist."""
    rows = {}
    for chunk in chunked(set(revisions), chunk_size()):
        for revision, pk, placeholder in Changeset.objects.filter(revision__in=chunk).values_list(
            "revision", "id", "placeholder"
        ):
            rows[revision] = (pk, placeholder)
    return rows


def _ids_by_digest(model, field, digest_field, values):
    """{value: id} of the rows whose ``field`` is one of ``values``, creating the missing ones.

    Uniqueness is carried by ``digest_field`` (``text_digest`` of the value), so values of any
    length are found and kept exactly, whatever the database's collation.
    """
    by_digest = {text_digest(value): value for value in set(values)}
    ids = {}

    def fetch(digests):
        for chunk in chunked(digests, chunk_size()):
            for digest, pk in model.objects.filter(**{f"{digest_field}__in": chunk}).values_list(digest_field, "id"):
                ids[by_digest[digest]] = pk

    fetch(by_digest)
    missing = [digest for digest, value in by_digest.items() if value not in ids]
    if missing:
        insert_rows(model, [field, digest_field], [(by_digest[digest], digest) for digest in sorted(missing)])
        fetch(missing)
    return ids


def branch_ids(names):
    """{name: id}, creating the Branch rows that do not exist yet; a git commit's branch, None, stays None."""
    return {**_ids_by_digest(Branch, "name", "name_hash", {name for name in names if name is not None}), None: None}


def file_ids(paths, known=None):
    """{path: id}, creating the File rows that do not exist yet.

    ``known`` ({path: id}), kept by a caller across the batches of one import, is asked first and
    learns the rest: a monorepo's batches touch the same paths again and again, and File rows are
    never deleted. A caller drops it when a batch fails (the rows that batch created are gone).
    """
    if known is None:
        return _ids_by_digest(File, "path", "path_hash", paths)
    paths = set(paths)
    known.update(_ids_by_digest(File, "path", "path_hash", paths - known.keys()))
    return known


def ensure_placeholders(revisions):
    """{revision: id}, creating hash-only placeholders for revisions not seen yet."""
    rows = changeset_rows(revisions)
    missing = set(revisions) - rows.keys()
    if missing:
        insert_rows(Changeset, ["revision", "user", "description", "placeholder"], [(r, "", "", True) for r in sorted(missing)])
        rows.update(changeset_rows(missing))
    return {revision: pk for revision, (pk, _) in rows.items()}


@dataclass
class StoredChangesets:
    ids: dict  # revision -> id, for every record and its parents
    created: int = 0
    filled: int = 0


def store_changesets(records, known_files=None):
    """Store ChangesetRecords (parents before children); fill placeholders in place.

    A parent that is neither stored nor among ``records`` becomes a
    placeholder, so history is linked without walking it. ``known_files``:
    see ``file_ids``.
    """
    by_revision = {record.revision: record for record in records}
    parent_revisions = {p for record in records for p in record.parents} - by_revision.keys()
    if connection.features.can_return_rows_from_bulk_insert:
        # Insert first, look up only what the insert says existed: a first import (every row new)
        # then looks up only the few parents outside the batch, mostly stored by the batch before.
        known = changeset_rows(parent_revisions)
    else:
        known = changeset_rows([*by_revision, *parent_revisions])

    new = [r for r in by_revision.values() if r.revision not in known]
    # The rows this call inserted: no other transaction can see them yet, so none can have links.
    created_here = set()
    if new or parent_revisions - known.keys():
        branches = branch_ids({record.branch for record in new})
        # In DAG order: changeset ids follow history, as readers may expect.
        rows = [(r.revision, r.user, r.description, branches[r.branch], False) for r in new]
        # The null revision is never a placeholder: there is nothing to fill in.
        rows += [(p, "", "", None, p != NULL_REVISION) for p in sorted(parent_revisions - known.keys())]
        fields = ["revision", "user", "description", "branch", "placeholder"]
        placeholders = {revision for revision, *_, placeholder in rows if placeholder}
        inserted = insert_new_rows(Changeset, fields, rows, returning=["revision", "id"])
        for revision, pk in inserted or ():
            known[revision] = (pk, revision in placeholders)
        # Those that existed or a parallel worker inserted first, or all where the database does not
        # say what it inserted.
        known.update(changeset_rows([row[0] for row in rows if row[0] not in known]))
        if inserted is not None:
            created_here = {revision for revision, _ in inserted}
            new = [r for r in new if r.revision in created_here]

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
    paths = file_ids((path for record in written for path in record.files), known_files)
    ids = {revision: pk for revision, (pk, _) in known.items()}
    # The links of rows created here are appended (COPY on PostgreSQL: an import's most rows); a filled
    # placeholder's go through the conflict-ignoring insert, as another worker may be filling it too.
    for add, records in ((append_rows, [r for r in written if r.revision in created_here]),
                         (insert_rows, [r for r in written if r.revision not in created_here])):
        add(Changeset.files.through, ["changeset", "file"],
            [(ids[r.revision], paths[path]) for r in records for path in dict.fromkeys(r.files)])
        add(Changeset.parents.through, ["from_changeset", "to_changeset"],
            [(ids[r.revision], ids[p]) for r in records for p in dict.fromkeys(r.parents)])
    created = sum(1 for r in new if not known[r.revision][1])
    return StoredChangesets(ids=ids, created=created, filled=len(to_fill))


def link_repository(repository, changeset_ids):
    insert_rows(
        Repository.changesets.through,
        ["repository", "changeset"],
        [(repository.pk, pk) for pk in dict.fromkeys(changeset_ids)],
    )


@dataclass
class StoredPushes:
    """What was stored: the counters every ingestion adds up."""

    pushes: int = 0
    changesets: int = 0
    placeholders_filled: int = 0

    def add(self, stored):
        """Count what another StoredPushes (or IngestResult) stored."""
        self.pushes += stored.pushes
        self.changesets += stored.changesets
        self.placeholders_filled += stored.placeholders_filled

    def add_changesets(self, stored):
        """Count what ``store_changesets`` stored (a StoredChangesets)."""
        self.changesets += stored.created
        self.placeholders_filled += stored.filled


@dataclass
class IngestResult(StoredPushes):
    """What one ingestion of a repository of either kind did."""

    vcs_seconds: float = 0.0  # time spent in hg or git (clone, pull, fetch)
    # RejectedPushes met on the way: listed upstream, never stored (git history holds none).
    rejected: list = field(default_factory=list)
    detail: str = ""  # why nothing was stored, when nothing was (git)


def store_pushes(repository, pushes, records, known_files=None):
    """Store pushes (PushRecords, ordered by id) and their changesets (ChangesetRecords) for one repository
    (``known_files``: see ``file_ids``).

    Pushes that exist are made to match upstream: their user and date are
    corrected and their changeset links completed (links upstream does not
    list are removed), which makes re-importing a repository a repair, not a
    duplicate.
    """
    if not pushes:
        return StoredPushes()
    existing = _push_rows(repository, pushes)
    stored = store_changesets(records, known_files)
    link_repository(repository, (stored.ids[record.revision] for record in records))
    new_pushes = [push for push in pushes if push.push_id not in existing]
    adapt = connection.ops.adapt_datetimefield_value
    insert_rows(
        Push,
        ["repository", "push_id", "user", "push_date"],
        [(repository.pk, p.push_id, p.user, adapt(from_epoch(p.date))) for p in new_pushes],
    )
    _correct_pushes(existing, pushes)
    pks = {push_id: pk for push_id, (pk, _, _) in _push_rows(repository, pushes).items()}
    insert_rows(
        Push.changesets.through,
        ["push", "changeset"],
        [(pks[p.push_id], stored.ids[c]) for p in pushes for c in dict.fromkeys(p.changesets)],
    )
    if existing:
        _unlink_unlisted({push_id: pks[push_id] for push_id in existing}, pushes, stored.ids)
    return StoredPushes(len(new_pushes), stored.created, stored.filled)


def _push_rows(repository, pushes):
    """{push id: (pk, user, date)} of the stored rows among ``pushes`` (one range query)."""
    wanted = {push.push_id for push in pushes}
    rows = Push.objects.filter(
        repository=repository, push_id__gte=pushes[0].push_id, push_id__lte=pushes[-1].push_id
    ).values_list("push_id", "id", "user", "push_date")
    return {push_id: (pk, user, date) for push_id, pk, user, date in rows if push_id in wanted}


def _correct_pushes(existing, pushes):
    wrong = [
        Push(id=existing[p.push_id][0], user=p.user, push_date=from_epoch(p.date))
        for p in pushes
        if p.push_id in existing and existing[p.push_id][1:] != (p.user, from_epoch(p.date))
    ]
    if wrong:
        Push.objects.bulk_update(wrong, ["user", "push_date"], batch_size=chunk_size(3))


def _unlink_unlisted(pks, pushes, changeset_ids):
    """Remove the links of the pushes ``pks`` ({push id: pk}) to changesets upstream does not list."""
    PushLink = Push.changesets.through
    listed = {(pks[p.push_id], changeset_ids[c]) for p in pushes if p.push_id in pks for c in p.changesets}
    unlisted = [
        pk
        for chunk in chunked(pks.values(), chunk_size())
        for pk, push_id, changeset_id in PushLink.objects.filter(push_id__in=chunk).values_list(
            "id", "push_id", "changeset_id"
        )
        if (push_id, changeset_id) not in listed
    ]
    for chunk in chunked(unlisted, chunk_size()):
        PushLink.objects.filter(id__in=chunk).delete()


def from_epoch(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# --- reading back what is stored, to prove it complete ---------------------------------


def stored_pushes(repository, first_id, last_id):
    """{push id: StoredPush} of the repository's pushes with ``first_id <= id <= last_id`` (two queries)."""
    pushes = list(
        Push.objects.filter(repository=repository, push_id__gte=first_id, push_id__lte=last_id).values_list(
            "push_id", "user", "push_date"
        )
    )
    changesets = {push_id: set() for push_id, _, _ in pushes}
    sound = dict.fromkeys(changesets, True)
    RepositoryLink = Repository.changesets.through
    links = Push.changesets.through.objects.filter(
        push__repository=repository, push__push_id__gte=first_id, push__push_id__lte=last_id
    ).annotate(
        linked=Exists(RepositoryLink.objects.filter(repository_id=repository.pk, changeset_id=OuterRef("changeset_id")))
    )
    for push_id, revision, placeholder, linked in links.values_list(
        "push__push_id", "changeset__revision", "changeset__placeholder", "linked"
    ):
        changesets[push_id].add(revision)
        sound[push_id] = sound[push_id] and linked and not placeholder
    return {
        push_id: StoredPush(user, int(date.timestamp()), frozenset(changesets[push_id]), sound[push_id])
        for push_id, user, date in pushes
    }


def sound_revisions(repository, revisions):
    """Those of ``revisions`` (few) stored complete (not placeholders) and linked to ``repository``."""
    links = Repository.changesets.through.objects.filter(
        repository=repository, changeset__placeholder=False, changeset__revision__in=revisions
    )
    return set(links.values_list("changeset__revision", flat=True))
