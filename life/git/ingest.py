"""Recording the pushes of a git repository's tracked branch as Changesets and Pushes.

git keeps no pushlog, so the worker writes its own: a push is what the
tracked branch gained that this repository has not stored yet, read from the
local clone right after fetching from the configured URL:

    git log <target> ^<stored revision>   minus commits already stored for this repository

``SyncState.stored_revision`` is the branch's commit up to which everything is
stored; excluding it keeps each read as small as the push. Subtracting what
is stored makes every case the same: a force push stores what it added, a
re-created branch takes what is not stored yet, and duplicate, late or
out-of-order deliveries store nothing twice.

Changesets are written in bounded batches (one transaction each, under the
repository's row lock); the Push and every link to the repository are
committed last, in one transaction, so "linked to the repository" always
means "in a stored push" and an interrupted import resumes where it stopped.
A repository's first import (a whole history) writes those links as its
batches are stored: the push's transaction is open meanwhile, and the batches
are stored in a thread on a connection of their own (not on SQLite, nor inside
a caller's transaction). The clone is under its file lock throughout.

A message names the pusher and the push time; they are used only when the
push the message announces is what gets stored (its ``after`` is on the
branch). Anything else — the backfill, an initial import, a push overtaken by
a force push — is recorded as one push by an unknown pusher at the fetch time.
When a push was stored so before its own message arrived (the message of a
later push came first, on the other queue, or the backfill stored it), the
message gives it its pusher and time, if the push holds exactly the commits
the message announces (``before..after``, read from the clone: no fetch).
"""

import contextlib
import logging
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone as django_timezone

from plumbing.background import read_ahead
from plumbing.bulk import CHUNK, append_rows, chunk_size, chunked
from plumbing.errors import PermanentError

from .. import signals, storage, store, sync
from ..models import NULL_REVISION, Push, Repository, SyncState
from ..store import IngestResult, from_epoch, lock_repository
from . import clone, remote
from .log import read_commits

log = logging.getLogger(__name__)

UNKNOWN_PUSHER = ""
LINKS_AT_ONCE = 4 * CHUNK
# The first batch: small, for the writing to start soon, yet as big as bulk.COPY_FROM_ROWS (smaller ones
# reach PostgreSQL by a slower path).
FIRST_BATCH = 1000


@dataclass(frozen=True)
class Step:
    """Store the tracked branch up to ``target`` as one push by ``user`` at ``date``."""

    target: str
    user: str
    date: datetime


# --- entry points -----------------------------------------------------------------


def ingest_push(repository, after, before=None, pusher=UNKNOWN_PUSHER, pushed_at=None):
    """A push notification for the tracked branch that moved it from ``before`` to ``after``.

    Nothing is fetched when ``after`` is already stored. What came before
    ``before`` and was never stored (a lost notification) becomes a push of its
    own by an unknown pusher, so the announced push holds only what it added.
    """
    with sync.recording_failures(repository):
        if _is_stored(repository, after):
            return _already_stored(repository, before, after, pusher, pushed_at)
        with storage.clone_lock(repository):
            if _is_stored(repository, after):  # a parallel worker stored it while we waited
                return _already_stored(repository, before, after, pusher, pushed_at, locked=True)
            fetched = clone.update_clone(repository)
            now = django_timezone.now()
            if fetched.tip is None:
                return IngestResult(vcs_seconds=fetched.seconds,
                                       detail=f"branch {repository.branch} no longer exists upstream")
            if clone.is_ancestor(fetched.directory, after, fetched.tip):
                steps = []
                if (before and before != NULL_REVISION and clone.is_ancestor(fetched.directory, before, after)
                        and not _is_stored(repository, before)):
                    steps.append(Step(before, UNKNOWN_PUSHER, now))
                steps.append(Step(after, pusher, from_epoch(pushed_at) if pushed_at is not None else now))
            else:
                # Overtaken by a force push: the branch as it is now is what there is to store.
                log.info("%s: %s is no longer on %s; storing the branch at %s", repository.name, after,
                         repository.branch, fetched.tip)
                steps = [Step(fetched.tip, UNKNOWN_PUSHER, now)]
            result = _store_steps(repository, fetched.directory, steps)
    result.vcs_seconds = fetched.seconds
    return result


def catch_up(repository, session=None):
    """The backfill: one request when the tracked branch has not moved; else fetch and store what
    is new as one push by an unknown pusher."""
    with sync.recording_failures(repository):
        tip = remote.advertisement(repository.url, session).branch(repository.branch)
        if tip is None:
            raise PermanentError(f"{repository.name}: upstream has no branch {repository.branch!r}")
        if tip == _stored_revision(repository):
            return _unchanged(repository, "up to date")
        return _import(repository)


def import_history(repository, reclone=False, progress=None):
    """Fetch (or clone, or clone again) and store what the tracked branch has that is not stored:
    for a new repository its whole history, as one push. ``progress(done, total)`` counts commits."""
    with sync.recording_failures(repository):
        return _import(repository, reclone=reclone, progress=progress)


def _import(repository, reclone=False, progress=None):
    with storage.clone_lock(repository):
        fetched = clone.update_clone(repository, reclone=reclone)
        if fetched.tip is None:
            raise PermanentError(f"{repository.name}: upstream has no branch {repository.branch!r}")
        step = Step(fetched.tip, UNKNOWN_PUSHER, django_timezone.now())
        result = _store_steps(repository, fetched.directory, [step], progress)
    result.vcs_seconds = fetched.seconds
    return result


# --- storing ----------------------------------------------------------------------


def _store_steps(repository, directory, steps, progress=None):
    result = IngestResult()
    for step in steps:
        result.add(_store_up_to(repository, directory, step, progress))
    if not result.pushes:
        result.detail = "nothing new on the branch"
    return result


def _store_up_to(repository, directory, step, progress=None):
    """Store what reaches ``step.target`` and is not stored yet as one push; returns a IngestResult."""
    stored_revision = _stored_revision(repository)
    exclude = [stored_revision] if stored_revision else []
    # A repository without pushes has nothing linked: its first import needs no lookups.
    first = not Push.objects.filter(repository=repository).exists()
    batches = _store_batches(repository, directory, step.target, exclude, first, progress)
    gathered = _Gathered()
    if first and _on_connections_of_their_own():
        # A first import links a whole history to the repository. The links are written as the batches
        # are stored, in the push's transaction, open meanwhile; the batches are stored in a thread on a
        # connection of its own. After the last batch only the push's own links are left to write.
        with read_ahead(_closing_its_connection(batches), ahead=2, name="git-store") as batches, \
                transaction.atomic():
            for batch in batches:
                _link_to_repository(repository, batch.ids)
                gathered.add(batch)
            push_id = _finish_push(repository, step, gathered)
    else:
        for batch in batches:
            gathered.add(batch)
        with transaction.atomic():
            _link_to_repository(repository, gathered.ids)
            push_id = _finish_push(repository, step, gathered)
    if gathered.ids:
        log.info("%s: push %d, %d commits up to %s", repository.name, push_id, len(gathered.ids), step.target)
    return gathered.result


@dataclass
class _Stored:
    """What one batch stored: the ids of its commits not stored before, the paths they touched."""

    ids: array
    paths: set
    changesets: store.StoredChangesets


class _Gathered:
    """What the batches stored, for the push that holds it."""

    def __init__(self):
        self.result = IngestResult()
        # Kept through the whole history: machine integers, not an object per id, which would pin each
        # batch's memory once the batch is gone.
        self.ids = array("q")
        self.paths = set()

    def add(self, batch):
        self.ids.extend(batch.ids)
        self.paths.update(batch.paths)
        self.result.add_changesets(batch.changesets)


def _store_batches(repository, directory, target, exclude, first, progress):
    """Store the commits that reach ``target`` and not ``exclude`` and are not stored yet, in batches of
    one transaction each, under the repository's row lock; yield a _Stored per batch that stored anything,
    outside its transaction. ``first``: the repository has nothing stored, nothing to look up."""
    known_files = {}  # across batches (``store.file_ids``); an exception ends the import, and it with it
    done = 0
    commits = read_commits(directory, target, exclude)
    # The next batch is read from git log while this one is written. The count for ``progress`` walks
    # the history as git log does before its first commit: side by side, not first (0.3 s of 100,000).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="git-count") as beside, contextlib.closing(commits), \
            read_ahead(chunked(commits, CHUNK, first=FIRST_BATCH), ahead=1, name="git-log") as batches:
        total = beside.submit(clone.count_commits, directory, target, exclude) if progress else None
        for batch in batches:
            records = batch if first else _not_stored(repository, batch)
            if records:
                with transaction.atomic():
                    lock_repository(repository)
                    stored = store.store_changesets(records, known_files)
            done += len(batch)
            if progress:
                progress(done, total.result())
            if records:
                yield _Stored(ids=array("q", (stored.ids[record.revision] for record in records)),
                              paths={path for record in records for path in record.files}, changesets=stored)


def _on_connections_of_their_own():
    """Whether a thread's connection sees what this one committed and can write beside it: not inside
    a transaction (a test's), not on SQLite (one writer at a time)."""
    return connection.vendor != "sqlite" and not connection.in_atomic_block


def _closing_its_connection(items):
    """``items``, then the database connection Django opened for the thread that iterated them closed."""
    try:
        yield from items
    finally:
        connection.close()


def _link_to_repository(repository, changeset_ids):
    # A few batches' worth of links at a time: an import of the whole history links every commit.
    # Appended, with nothing to collide with: these changesets are none of the repository's (so read
    # under the clone's lock, which every writer of a git repository's links holds).
    for chunk in chunked(changeset_ids, LINKS_AT_ONCE):
        append_rows(Repository.changesets.through, ["repository", "changeset"], [(repository.pk, pk) for pk in chunk])


def _finish_push(repository, step, gathered):
    """In the transaction that linked ``gathered.ids`` to the repository: the push that holds them (if
    any) and the sync state. Returns the repository's last push id."""
    locked = lock_repository(repository)
    push_id = locked.last_push_id()
    if gathered.ids:
        push_id += 1
        push = Push.objects.create(repository=locked, push_id=push_id, user=step.user, push_date=step.date)
        # Appended: the push is new in this transaction.
        for chunk in chunked(gathered.ids, LINKS_AT_ONCE):
            append_rows(Push.changesets.through, ["push", "changeset"], [(push.pk, pk) for pk in chunk])
        gathered.result.pushes = 1
    sync.record_success(locked, push_id, push_id)
    SyncState.objects.filter(repository=locked).update(stored_revision=step.target)
    if gathered.ids:
        signals.pushes_stored.send(sender=Repository, repository=locked, paths=frozenset(gathered.paths),
                                   tip=step.target)
    return push_id


def _not_stored(repository, records):
    """Those of ``records`` not in a stored push of ``repository`` (for git: not linked to it)."""
    Link = Repository.changesets.through
    linked = set()
    for chunk in chunked([record.revision for record in records], chunk_size()):
        linked.update(Link.objects.filter(repository_id=repository.pk, changeset__revision__in=chunk)
                      .values_list("changeset__revision", flat=True))
    return [record for record in records if record.revision not in linked]


def _is_stored(repository, revision):
    return Repository.changesets.through.objects.filter(repository_id=repository.pk,
                                                        changeset__revision=revision).exists()


def _stored_revision(repository):
    return SyncState.objects.filter(repository=repository).values_list("stored_revision", flat=True).first() or ""


def _already_stored(repository, before, after, pusher, pushed_at, locked=False):
    """A push stored before its message arrived (a later push's message came first, or the backfill):
    the stored push that holds exactly what the message announced (``before..after``) and has no
    known pusher takes the message's pusher and time."""
    push = (Push.objects.filter(repository=repository, user=UNKNOWN_PUSHER, changesets__revision=after)
            .order_by("push_id").first())
    if push is None or pusher == UNKNOWN_PUSHER or not before or before == NULL_REVISION:
        return _unchanged(repository, "push already stored")
    stored = set(push.changesets.values_list("revision", flat=True))
    with contextlib.nullcontext() if locked else storage.clone_lock(repository):
        directory = clone.git_dir(repository)
        # Read from the clone, which holds both (it stored them): nothing is fetched.
        announced = ({record.revision for record in read_commits(directory, after, [before])}
                     if clone.is_ancestor(directory, before, after) else set())
    if announced != stored:
        return _unchanged(repository, "push already stored")
    with transaction.atomic():
        lock_repository(repository)
        claimed = Push.objects.filter(pk=push.pk, user=UNKNOWN_PUSHER).update(
            user=pusher, push_date=from_epoch(pushed_at) if pushed_at is not None else push.push_date)
    if claimed:
        log.info("%s: push %d, stored before its message, is %s's", repository.name, push.push_id, pusher)
    return _unchanged(repository, f"push {push.push_id} took its message's pusher" if claimed else "push already stored")


def _unchanged(repository, detail):
    with transaction.atomic():
        last = lock_repository(repository).last_push_id()
        sync.record_success(repository, last, last)
    return IngestResult(detail=detail)


# --- the entry points every kind has (``life.kinds``) --------------------------------


def reprocess(repository, reclone=False, progress=None):
    """``import_history``; ``progress(done, total)`` counts commits."""
    return import_history(repository, reclone=reclone, progress=progress)
