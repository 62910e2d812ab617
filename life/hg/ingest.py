"""Bringing a repository's clone and rows up to date with upstream.

The order matters. The newest push id is known first (a message names it,
or json-pushes' ``lastpushid`` says it), then the clone is pulled while
json-pushes is read up to that push in a background thread: the pull brings
at least what the pushlog named before it started, so every changeset a page
names is in the clone afterwards (one that is not is a PermanentError).

The cost follows the data, not the number of pushes: json-pushes is read
``PUSHLOG_PAGE_SIZE`` pushes per request, the changelog is opened once per
run, and a transaction stores up to CHANGESETS_PER_TRANSACTION changesets
(a push is never split), each under a row lock on the repository. The clone
is under a file lock for the whole run.

Every ingestion records its outcome in the repository's SyncState: success
in the transactions that store the data, any failure in its own transaction.
"""

import dataclasses
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from plumbing.background import read_ahead
from plumbing.bulk import chunk_size, chunked
from plumbing.errors import NotUpstreamYet, PermanentError
from plumbing.names import validate_locale_code, validate_repository_name

from .. import completeness, signals, storage, store, sync
from ..models import Forest, Locale, Push, Repository
from ..records import RejectedPush
from ..store import IngestResult
from . import clone
from .changelog import open_changelog
from .pushlog import MAX_PUSH_ID, PushlogClient

log = logging.getLogger(__name__)

# Bounds of one transaction: memory, lock time and the size of a rollback stay bounded.
CHANGESETS_PER_TRANSACTION = 5000
PUSHES_PER_TRANSACTION = 5000
# json-pushes pages read ahead of the one being stored.
PAGES_AHEAD = 2


class PushRejected(PermanentError):
    """Pushes a message announces that upstream lists but could not legally have produced.

    The repository's other pushes are stored and it keeps syncing; only the
    message fails. ``rejected`` holds the RejectedPushes, with their reasons.
    """

    repository_is_fine = True  # the repository's other pushes are stored; only the message is wrong

    def __init__(self, rejected):
        self.rejected = tuple(rejected)
        super().__init__("; ".join(str(rejection) for rejection in self.rejected))


@dataclass
class Batch:
    """Consecutive pushes stored in one transaction, and what json-pushes said around them."""

    pushes: list
    rejected: list
    upstream_push_id: int


def batches(pages, max_changesets, max_pushes):
    """The pushes of ``pages`` (PushlogPages) as Batches of at most ``max_changesets`` changesets
    and ``max_pushes`` pushes.

    A push is never split: one with more changesets than the bound is a batch
    of its own. The last batch comes even when empty, so the caller always
    learns the last page's ``lastpushid`` and rejections.
    """
    batch, changesets = None, 0
    for page in pages:
        if batch is None:
            batch = Batch([], [], page.last_push_id)
        batch.upstream_push_id = page.last_push_id
        batch.rejected.extend(page.rejected)
        for push in page.pushes:
            if batch.pushes and (
                changesets + len(push.changesets) > max_changesets or len(batch.pushes) >= max_pushes
            ):
                yield batch
                batch, changesets = Batch([], [], page.last_push_id), 0
            batch.pushes.append(push)
            changesets += len(push.changesets)
    if batch is not None:
        yield batch


def ingest_pushes(repository, target_push_id=None, *, announced=None, client=None, progress=None):
    """Store the pushes after the last stored one, up to ``target_push_id`` (default: upstream's newest).

    ``announced``: the push ids a message names (default: the target). When
    upstream lists one of them but it cannot be stored (see
    ``pushlog.push_problem``), the other pushes are stored and PushRejected is
    raised, also when that push was rejected by an earlier ingestion. When
    json-pushes does not have the target yet (a lagging mirror), NotUpstreamYet
    is raised before anything is pulled.

    ``progress(done, total)`` is called after each stored batch. The outcome,
    success or failure, is recorded in the repository's SyncState.
    """
    client = client or PushlogClient()
    if announced is None:
        announced = () if target_push_id is None else (target_push_id,)
    with sync.recording_failures(repository):
        result = _ingest(repository, target_push_id, client, progress)
        rejected = _announced_rejections(repository, client, set(announced), result)
        if rejected:
            raise PushRejected(rejected)
        return result


def _ingest(repository, target, client, progress):
    stored = repository.last_push_id()
    if target is not None and target <= stored:
        return _up_to_date(repository, stored, target)
    first, first_end, target, upstream = _first_page(repository, client, stored, target)
    if target <= stored:
        return _up_to_date(repository, stored, upstream, first.rejected)
    with storage.clone_lock(repository):
        # Another worker may have stored some of them while we waited for the lock.
        after = repository.last_push_id()
        if target <= after:
            return _up_to_date(repository, after, upstream)
        if first_end >= target and not any(push.push_id > after for push in first.pushes):
            # Nothing storable in the range (its pushes are rejected): no pull needed.
            return _up_to_date(repository, after, upstream, first.rejected)
        pages = _pages(repository, client, first, first_end, after, target)
        return _import(repository, pages, after, target, progress=progress)


def _first_page(repository, client, after, target):
    """json-pushes' first page after push ``after``; its answer also says how far upstream goes.

    Returns (page, the end of its range, the push to read up to, upstream's
    newest push id). A target upstream does not have yet is NotUpstreamYet.
    """
    end = min(after + settings.PUSHLOG_PAGE_SIZE, MAX_PUSH_ID if target is None else target)
    first = client.fetch(repository.url, after, end)
    upstream = first.last_push_id
    if target is not None and upstream < target:
        raise NotUpstreamYet(
            f"{repository.name}: json-pushes ends at push {upstream}, before the announced push {target}",
            give_up_after=settings.UPSTREAM_LAG_LIMIT,
        )
    target = upstream if target is None else target
    if target > MAX_PUSH_ID:
        beyond = RejectedPush(MAX_PUSH_ID + 1, f"and the later ones up to {target} have ids beyond {MAX_PUSH_ID}")
        first = dataclasses.replace(first, rejected=(*first.rejected, beyond))
        target = MAX_PUSH_ID
    return first, end, target, min(upstream, MAX_PUSH_ID)


def _pages(repository, client, first, first_end, after, target):
    """The pages of pushes in (after, target]: ``first``, then the rest as read from json-pushes."""
    pages = itertools.chain([first], client.pages(repository.url, first_end, target, settings.PUSHLOG_PAGE_SIZE))
    for page in pages:
        if page.last_push_id < target:
            # Pages come from whichever mirror answers: this one is behind the one that set the target.
            raise NotUpstreamYet(
                f"{repository.name}: json-pushes now ends at push {page.last_push_id}, before push {target}",
                give_up_after=settings.UPSTREAM_LAG_LIMIT,
            )
        yield dataclasses.replace(
            page,
            pushes=tuple(push for push in page.pushes if push.push_id > after),
            rejected=tuple(rejection for rejection in page.rejected if rejection.push_id > after),
        )


def _up_to_date(repository, stored_push_id, upstream_push_id, rejected=()):
    sync.record_success(repository, stored_push_id, upstream_push_id, rejected)
    return IngestResult(rejected=list(rejected))


def _import(repository, pages, after, target, *, reclone=False, verify=False, progress=None):
    """Pull the clone while ``pages`` are read in the background, then store their pushes batch by batch.

    With ``verify``, a batch is first compared with what is stored
    (``completeness``): only the pushes that do not hold are read from the
    clone and written, and the clone's changesets that are in no push are
    stored as well. Without it, every push is stored (idempotently).

    The changelog is read for the next batch in a thread while this one is
    written: the database's work and Mercurial's overlap.
    """
    result = IngestResult()
    upstream = target
    known_files = {}  # across batches (``store.file_ids``); an exception ends the import, and it with it
    with read_ahead(pages, PAGES_AHEAD, name=f"json-pushes {repository.name}") as pages:
        path, result.vcs_seconds = clone.update_clone(repository, reclone=reclone)
        with open_changelog(path) as changelog, ThreadPoolExecutor(1, "changelog") as reader:
            work = _batches_to_store(repository, pages, verify)
            for batch, pushes, records in _records_one_ahead(reader, changelog, work):
                upstream = min(batch.upstream_push_id, MAX_PUSH_ID)
                result.rejected.extend(batch.rejected)
                if pushes:
                    with transaction.atomic():
                        locked = store.lock_repository(repository)
                        result.add(store.store_pushes(locked, pushes, records, known_files))
                        sync.record_success(locked, locked.last_push_id(), upstream, batch.rejected)
                        _announce(locked, pushes, records)
                if progress and batch.pushes:
                    progress(batch.pushes[-1].push_id - after, target - after)
            if verify:
                _store_unlinked_changesets(repository, changelog, result)
    sync.record_success(repository, repository.last_push_id(), upstream, result.rejected)
    return result


def _announce(repository, pushes, records):
    """``signals.pushes_stored``, in the transaction that stored ``pushes``."""
    newest = max(pushes, key=lambda push: push.push_id)
    tip = newest.changesets[-1] if newest.changesets else None
    if tip is None:
        return
    paths = frozenset(path for record in records for path in record.files)
    signals.pushes_stored.send(sender=Repository, repository=repository, paths=paths, tip=tip)


def _batches_to_store(repository, pages, verify):
    """(Batch, the pushes of it to write) for each batch of ``pages``: all of them, or with ``verify``
    those that the stored history does not hold (see ``completeness``)."""
    for batch in batches(pages, CHANGESETS_PER_TRANSACTION, PUSHES_PER_TRANSACTION):
        pushes = batch.pushes
        if verify and pushes:
            pushes = completeness.unproven(pushes, store.stored_pushes(repository, pushes[0].push_id, pushes[-1].push_id))
        yield batch, pushes


def _records_one_ahead(reader, changelog, work):
    """(batch, pushes, ChangesetRecords of the pushes) for each (batch, pushes) of ``work``; the records
    of the next one are read by ``reader`` (one thread) while the caller writes this one."""
    pending = None
    for batch, pushes in work:
        revisions = list(dict.fromkeys(c for push in pushes for c in push.changesets))
        future = reader.submit(changelog.read, revisions)
        if pending:
            yield pending[0], pending[1], pending[2].result()
        pending = batch, pushes, future
    if pending:
        yield pending[0], pending[1], pending[2].result()


def _store_unlinked_changesets(repository, changelog, result):
    """Store the clone's changesets that are not stored complete and linked to ``repository``."""
    for revisions in chunked(changelog.revisions(), chunk_size()):
        sound = store.sound_revisions(repository, revisions)
        missing = [revision for revision in revisions if revision not in sound]
        if not missing:
            continue
        records = changelog.read(missing)
        with transaction.atomic():
            store.lock_repository(repository)
            stored = store.store_changesets(records)
            store.link_repository(repository, (stored.ids[record.revision] for record in records))
        result.add_changesets(stored)


def _announced_rejections(repository, client, announced, result):
    """The RejectedPushes among the ``announced`` push ids, from this run or an earlier one.

    An announced push that is not stored (behind the last stored one: an
    earlier run rejected it) is read again from json-pushes to state why; if
    upstream now gives it in a storable form, it is stored instead.
    """
    if not announced:
        return []
    rejected = {rejection.push_id: rejection for rejection in result.rejected if rejection.push_id in announced}
    stored = set(Push.objects.filter(repository=repository, push_id__in=announced).values_list("push_id", flat=True))
    for push_id in sorted(announced - stored - rejected.keys()):
        page = client.fetch(repository.url, push_id - 1, push_id)
        if page.rejected:
            rejected[push_id] = page.rejected[0]
        elif page.pushes:
            with storage.clone_lock(repository):
                gap = _import(repository, [page], push_id - 1, push_id)
            result.add(gap)
        elif page.last_push_id < push_id:
            raise NotUpstreamYet(
                f"{repository.name}: json-pushes ends at push {page.last_push_id}, before the announced push {push_id}",
                give_up_after=settings.UPSTREAM_LAG_LIMIT,
            )
        else:
            rejected[push_id] = RejectedPush(push_id, "is missing from json-pushes, though later pushes are there")
    return [rejected[push_id] for push_id in sorted(rejected)]


def find_forest(name):
    """(Forest, locale code) for a repository name ``<forest>/<locale>`` under a known forest, else None."""
    validate_repository_name(name)
    forest = Forest.objects.active().filter(name=Forest.name_over(name)).first()
    return None if forest is None else (forest, name.rpartition("/")[2])


def ingest_new_repository(forest, code):
    """``newrepo.1``: the repository of locale ``code`` under ``forest``.

    Creates the Repository with its Locale, clones it, and stores the
    changesets of all its heads (a new repository can have content but no
    pushes). Returns (Repository, IngestResult).
    """
    validate_locale_code(code)
    name = f"{forest.name}/{code}"
    with transaction.atomic():
        locale, _ = Locale.objects.get_or_create(code=code)
        repository, created = Repository.objects.get_or_create(
            name=name, defaults={"url": forest.repository_url(code), "forest": forest, "locale": locale}
        )
    if created:
        log.info("new repository %s under forest %s", name, forest.name)
    result = IngestResult()
    with sync.recording_failures(repository), storage.clone_lock(repository):
        path, result.vcs_seconds = clone.update_clone(repository)
        with open_changelog(path) as changelog:
            _store_unlinked_changesets(repository, changelog, result)
        stored_push_id = repository.last_push_id()
        sync.record_success(repository, stored_push_id, stored_push_id)
    return repository, result


def reprocess_repository(repository, reclone=False, progress=None, client=None):
    """Re-pull (or re-clone) and make the stored history match upstream, writing only what differs.

    Every push json-pushes lists is compared with the stored one, and every
    changeset of the clone with the stored ones (``completeness`` says why
    that proves them); only what does not hold is read from the clone and
    written. So a repository already up to date costs a pull, the json-pushes
    reads and a few queries, and writes nothing but its SyncState. Rejected
    pushes are in the result, not raised.
    """
    client = client or PushlogClient()
    with sync.recording_failures(repository):
        first, first_end, target, _ = _first_page(repository, client, 0, None)
        with storage.clone_lock(repository):
            pages = _pages(repository, client, first, first_end, 0, target)
            return _import(repository, pages, 0, target, reclone=reclone, verify=True, progress=progress)


# --- the entry points every kind has (``life.kinds``) --------------------------------


def catch_up(repository, session=None):
    """The backfill's step: store what json-pushes lists beyond the last stored push (one request
    when there is nothing)."""
    return ingest_pushes(repository, client=PushlogClient(session))


def reprocess(repository, reclone=False, progress=None):
    """``reprocess_repository``; ``progress(done, total)`` counts pushes."""
    return reprocess_repository(repository, reclone=reclone, progress=progress)
