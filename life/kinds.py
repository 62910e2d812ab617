"""The one place that tells the kinds of repository apart: a table of what each kind does.

Each kind is a folder of the same shape (``life/hg``, ``life/git``); this
module is the only one that imports both. Code that works on a repository of
either kind asks ``for_repository(repository)`` and calls what the entry holds.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .git import files as git_files
from .git import ingest as git_ingest
from .hg import files as hg_files
from .hg import ingest as hg_ingest
from .models import Repository


@dataclass(frozen=True)
class Kind:
    """What one kind of repository does; every entry has the same signature for both kinds.

    An operation both kinds offer is a field here and, in KINDS, the function of each kind's folder
    (``life/hg/<module>.py``, ``life/git/<module>.py``) with the same name.
    """

    name: str  # Repository.kind
    # Bring the repository up to date (the backfill's step): (repository, session=None) -> IngestResult.
    catch_up: Callable
    # Re-fetch (or re-clone) and import what is missing, idempotently:
    # (repository, reclone=False, progress=None) -> IngestResult.
    reprocess: Callable
    progress_unit: str  # what reprocess's progress(done, total) counts
    # Files at a revision, read from the clone's object store (no working tree), for the comparisons.
    # (repository, revision, prefix="") -> [(path, content id)]: a folder's regular files, named with an
    # id of their content (git blob id, Mercurial file node) without reading them.
    list_files: Callable
    # (repository, [(path, content id)], max_bytes) -> iterator of (path, content id, bytes or None when
    # bigger than max_bytes), streamed in one pass.
    read_files: Callable


KINDS = {
    Repository.HG: Kind(Repository.HG, catch_up=hg_ingest.catch_up, reprocess=hg_ingest.reprocess,
                        progress_unit="push", list_files=hg_files.list_files, read_files=hg_files.read_files),
    Repository.GIT: Kind(Repository.GIT, catch_up=git_ingest.catch_up, reprocess=git_ingest.reprocess,
                         progress_unit="commit", list_files=git_files.list_files, read_files=git_files.read_files),
}


def for_repository(repository):
    """The Kind of ``repository``."""
    return KINDS[repository.kind]
