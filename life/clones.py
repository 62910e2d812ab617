"""Where a repository's clone lives under REPOSITORY_BASE, and the lock that serialises work on it.

Both kinds of repository use these: a Mercurial clone is ``<name>/.hg``
(``life.hg.clone``), a git one ``<name>/.git`` (``life.git.clone``). Forks
share the clone of what they fork, and so its path and its lock.
"""

import contextlib
import hashlib

from plumbing.errors import PermanentError
from plumbing.names import validate_repository_name

from . import storage


def repository_base():
    return storage.base()


def clone_path(repository):
    """Where ``repository``'s clone lives; forks share the clone of what they fork."""
    name = validate_repository_name(repository.clone_owner().name)
    base = repository_base()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or path == base:
        raise PermanentError(f"repository name {name!r} escapes REPOSITORY_BASE")
    return path


def lock_key(repository):
    return hashlib.sha1(repository.clone_owner().name.encode()).hexdigest()


@contextlib.contextmanager
def clone_lock(repository):
    """Serialise work on one clone across processes (an advisory file lock)."""
    with storage.locked(lock_key(repository)):
        yield
