"""Bringing a repository's clone and rows up to date with upstream.

The order matters: the target push id is known first, then the clone is
pulled, then json-pushes is read up to that target, so every changeset the
pushlog names is already in the clone. Each page of pushes is stored in its
own transaction under a row lock on the repository; the clone is under a
file lock for the whole run.
"""

import contextlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from plumbing.errors import PermanentError, TransientError
from plumbing.names import validate_locale_code, validate_repository_name

from . import clones, history, store, sync
from .models import Forest, Locale, Repository
from .pushlog import PushlogClient

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    pushes: int = 0
    changesets: int = 0
    placeholders_filled: int = 0
    hg_seconds: float = 0.0

    def add(self, stored):
        self.pushes += stored.pushes
        self.changesets += stored.changesets
        self.placeholders_filled += stored.placeholders_filled


def _locked(repository):
    """The repository's row, locked until the end of the current transaction."""
    return Repository.objects.select_for_update().get(pk=repository.pk)


def ingest_pushes(repository, target_push_id=None, *, client=None, progress=None):
    """Store the pushes after the last stored one, up to ``target_push_id``.

    With no target, upstream's newest push is the target. ``progress(done,
    total)`` is called after each stored page. The outcome, success or
    failure, is recorded in the repository's SyncState.
    """
    client = client or PushlogClient()
    with _recording_failures(repository):
        target = client.last_push_id(repository.url) if target_push_id is None else target_push_id
        stored = repository.last_push_id()
        if target <= stored:
            return _up_to_date(repository, stored, target)
        with clones.clone_lock(repository):
            # Another worker may have stored some of them while we waited for the lock.
            after = repository.last_push_id()
            if target <= after:
                return _up_to_date(repository, after, target)
            path, hg_seconds = clones.update_clone(repository)
            result = _store_pages(repository, path, client, after, target, progress)
        result.hg_seconds = hg_seconds
        return result


@contextlib.contextmanager
def _recording_failures(repository):
    """Record an ingestion's failure in SyncState (its own transaction), then let it propagate."""
    try:
        yield
    except (TransientError, PermanentError) as error:
        sync.record_failure(repository, error)
        raise


def _up_to_date(repository, stored_push_id, upstream_push_id):
    sync.record_success(repository, stored_push_id, upstream_push_id)
    return IngestResult()


def _store_pages(repository, path, client, after, target, progress):
    result = IngestResult()
    for page in client.pages(repository.url, after, target, settings.PUSHLOG_PAGE_SIZE):
        if page.last_push_id < target:
            raise TransientError(f"{repository.name}: upstream's last push is {page.last_push_id}, behind push {target}")
        revisions = list(dict.fromkeys(c for push in page.pushes for c in push.changesets))
        records = history.read_changesets(path, revisions)
        with transaction.atomic():
            locked = _locked(repository)
            result.add(store.store_pushes(locked, page.pushes, records))
            sync.record_success(locked, locked.last_push_id(), page.last_push_id)
        if progress and page.pushes:
            progress(page.pushes[-1].push_id - after, target - after)
    return result


def ingest_all_changesets(repository, path):
    """Store every changeset in the clone, linked to ``repository`` (no pushes)."""
    records = history.read_all_changesets(path)
    result = IngestResult()
    batch = store.CHUNK
    for start in range(0, len(records), batch):
        with transaction.atomic():
            _locked(repository)
            chunk = records[start : start + batch]
            stored = store.store_changesets(chunk)
            store.link_repository(repository, (stored.ids[record.revision] for record in chunk))
        result.changesets += stored.created
        result.placeholders_filled += stored.filled
    return result


def find_forest(name):
    """(Forest, locale code) for a repository name ``<forest>/<locale>`` under a known forest, else None."""
    validate_repository_name(name)
    forest_name, _, code = name.rpartition("/")
    forest = Forest.objects.filter(name=forest_name, archived=False).first()
    return None if forest is None else (forest, code)


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
    with _recording_failures(repository), clones.clone_lock(repository):
        path, hg_seconds = clones.update_clone(repository)
        result = ingest_all_changesets(repository, path)
        stored_push_id = repository.last_push_id()
        sync.record_success(repository, stored_push_id, stored_push_id)
    result.hg_seconds = hg_seconds
    return repository, result


def reprocess_repository(repository, reclone=False, progress=None):
    """Re-pull (or re-clone) and re-import everything; changes nothing that is already right."""
    client = PushlogClient()
    with _recording_failures(repository):
        target = client.last_push_id(repository.url)
        with clones.clone_lock(repository):
            path, hg_seconds = clones.update_clone(repository, reclone=reclone)
            result = _store_pages(repository, path, client, 0, target, progress)
            heads = ingest_all_changesets(repository, path)
        if not target:
            _up_to_date(repository, 0, 0)
    result.changesets += heads.changesets
    result.placeholders_filled += heads.placeholders_filled
    result.hg_seconds = hg_seconds
    return result
