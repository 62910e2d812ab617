"""The clone storage under REPOSITORY_BASE: locks, staging, swapping a new clone in, start-up checks.

Web heads read ``REPOSITORY_BASE/<repository name>`` while workers write it,
so a clone is never rebuilt in place. The unit of a clone is its metadata
directory (``.hg``, ``.git``), never the repository's directory: names nest
(``l10n-central/de`` and ``l10n-central/de/sub``), so a repository's
directory may hold another repository's clone.

A clone is built in a staging directory on the same filesystem
(``REPOSITORY_BASE/.staging/<lock key>.<random>``) and its metadata directory
is swapped with the old one in one atomic rename (``renameat2`` with
``RENAME_EXCHANGE``). Where the filesystem cannot exchange (NFS answers
EINVAL), two renames are used: between them the repository has no metadata
directory for a moment, and a worker killed right there leaves a staging
directory that the next start finishes the swap from. Nothing under
``.staging`` outlives the work that made it: the work removes it, and a
worker's start removes whatever a killed worker left, but only once the
repository's lock is free (another worker may be cloning it right now).

Layout, besides the clones (``<name>/.hg`` for Mercurial, ``<name>/.git``
for git; forks share the clone of what they fork, and its lock):
``.locks/<key>.lock`` (one advisory lock per clone) and ``.staging/``.
Repository names cannot start with a dot, so these never meet a clone.
"""

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from plumbing.errors import PermanentError
from plumbing.names import validate_repository_name

log = logging.getLogger(__name__)

LOCKS = ".locks"
STAGING = ".staging"
_RECORD = "staging.json"  # what the staging directory is for: {"target": relative path, "meta": ".hg"}
_COMPLETE = "complete"  # present once the new clone is whole and may replace the old one
_NEW = "new"  # the new clone is built here: new/<meta>
_OLD = "old"  # where the old metadata directory goes when the swap takes two renames


class StorageError(Exception):
    """REPOSITORY_BASE cannot hold clones (cannot be created, not writable)."""


def base():
    return Path(settings.REPOSITORY_BASE).resolve()


def check_writable():
    """Create REPOSITORY_BASE (and its lock and staging directories) and write a file in it, or raise."""
    configured = str(settings.REPOSITORY_BASE)
    root = base()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"REPOSITORY_BASE {configured!r} cannot be created ({error.strerror})") from None
    try:
        for name in (LOCKS, STAGING):
            (root / name).mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as error:
        raise StorageError(f"REPOSITORY_BASE {configured!r} is not writable ({error.strerror})") from None


def prepare():
    """At a command's start: REPOSITORY_BASE must be usable, and what killed workers left is removed.

    Raises StorageError (a configuration problem: the command should stop with one line).
    """
    check_writable()
    remove_stale_staging()


# --- where a repository's clone lives, and its lock ---------------------------


def clone_path(repository):
    """Where ``repository``'s clone lives; forks share the clone of what they fork."""
    name = validate_repository_name(repository.clone_owner().name)
    root = base()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise PermanentError(f"repository name {name!r} escapes REPOSITORY_BASE")
    return path


def lock_key(repository):
    return hashlib.sha1(repository.clone_owner().name.encode()).hexdigest()


@contextlib.contextmanager
def clone_lock(repository):
    """Serialise work on one clone across processes (an advisory file lock)."""
    with locked(lock_key(repository)):
        yield


# --- locks ------------------------------------------------------------------


def _lock_file(key):
    locks = base() / LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    return locks / f"{key}.lock"


@contextlib.contextmanager
def locked(key):
    """Hold the advisory lock ``key`` (a file name without a dot), waiting for it: one writer per clone."""
    with open(_lock_file(key), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _locked_if_free(key):
    """Yield True holding the lock ``key`` if nobody holds it, else yield False at once."""
    with open(_lock_file(key), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- staging and swapping ---------------------------------------------------


class Staging:
    """A staging directory for a new clone of ``target`` (whose metadata directory is named ``meta``).

    Build the clone at ``work`` (so that its metadata directory is ``work / meta``), then ``swap_in()``.
    """

    def __init__(self, root, target, meta):
        self.root = root
        self.target = target
        self.meta = meta
        self.work = root / _NEW

    def swap_in(self):
        """Put the new metadata directory in place of the old one (if any); the old one stays here
        until the staging directory is removed."""
        (self.root / _COMPLETE).touch()
        self.target.mkdir(parents=True, exist_ok=True)
        _swap(self.work / self.meta, self.target / self.meta, self.root / _OLD)


@contextlib.contextmanager
def staging(key, target, meta):
    """A fresh staging directory for a new clone of ``target``, removed on exit whatever happens.

    The caller holds the lock ``key`` (the one ``remove_stale_staging`` checks) throughout.
    """
    root = base()
    if not Path(target).resolve().is_relative_to(root):
        raise ValueError(f"{target} is not under REPOSITORY_BASE")
    area = root / STAGING
    area.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=area))
    try:
        record = {"target": str(Path(target).resolve().relative_to(root)), "meta": meta}
        (directory / _RECORD).write_text(json.dumps(record))
        yield Staging(directory, Path(target), meta)
    finally:
        _finish_interrupted_swap(directory)  # a swap that failed half way must not lose the clone
        shutil.rmtree(directory, ignore_errors=True)


def _swap(new, current, graveyard):
    if not os.path.lexists(current):
        os.rename(new, current)
        return
    try:
        exchange(new, current)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        # No atomic exchange here (NFS): for the moment between these renames there is no clone at
        # ``current``; a worker killed in between leaves the staging directory to finish it.
        graveyard.mkdir(exist_ok=True)
        os.rename(current, graveyard / current.name)
        os.rename(new, current)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2():
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2


def exchange(first, second):
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); OSError(ENOSYS) where unavailable."""
    renameat2 = _renameat2()
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(first), None, str(second))


def remove_stale_staging():
    """Remove the staging directories of work that is no longer running; returns how many.

    A staging directory whose repository's lock is held belongs to work in
    progress (perhaps another worker's) and is kept. A swap that a killed
    worker left half done is finished first, so no clone is lost.
    """
    area = base() / STAGING
    if not area.is_dir():
        return 0
    removed = 0
    for directory in sorted(area.iterdir()):
        key, dot, _ = directory.name.partition(".")
        if not dot or not key:
            log.warning("leaving %s alone: not a staging directory of this worker", directory)
            continue
        with _locked_if_free(key) as free:
            if not free:
                log.info("keeping %s: its repository is being cloned", directory)
                continue
            _finish_interrupted_swap(directory)
            shutil.rmtree(directory, ignore_errors=True)
            log.warning("removed %s, left by a worker that was killed", directory)
            removed += 1
    return removed


def _finish_interrupted_swap(directory):
    """If the worker died between the two renames of a swap, put a clone back where it belongs."""
    try:
        record = json.loads((directory / _RECORD).read_text())
        target, meta = base() / record["target"], record["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # killed before the record was written: no swap had begun
    if Path(meta).name != meta or not target.resolve().is_relative_to(base()):
        return
    current = target / meta
    if os.path.lexists(current):
        return
    # The new clone if it was whole, else the old one.
    candidates = [directory / _OLD / meta]
    if (directory / _COMPLETE).exists():
        candidates.insert(0, directory / _NEW / meta)
    for candidate in candidates:
        if candidate.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            os.rename(candidate, current)
            log.warning("restored %s from an interrupted swap", current)
            return
