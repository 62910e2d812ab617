"""Reading files of a Mercurial clone at a revision, in-process (no working copy).

The revision's manifest gives every file's node without reading any
content; contents are read through each file's filelog, the size checked
first, so a hostile file is never read whole.
"""

import contextlib

from mercurial import error as hgerror
from mercurial.node import bin, hex

from plumbing.errors import TransientError

from .. import storage
from .changelog import open_repository


@contextlib.contextmanager
def _opened(path):
    repo = open_repository(path)
    try:
        yield repo
    finally:
        repo.close()


def _encode(path):
    return path.encode("utf-8", "surrogateescape")


def list_files(repository, revision, prefix=""):
    """[(path, file node as 40 hex)] of the regular files of ``revision`` under ``prefix`` (a folder, "" for all)."""
    path = storage.clone_path(repository)
    folder = _encode(prefix.rstrip("/") + "/") if prefix else b""
    with _opened(path) as repo:
        try:
            manifest = repo[bin(revision)].manifest()
        except (hgerror.LookupError, hgerror.RepoLookupError, ValueError):
            raise TransientError(f"clone {path} has no revision {revision}") from None
        return [
            (name.decode("utf-8", "surrogateescape"), hex(node).decode())
            for name, node, flags in manifest.iterentries()
            if name.startswith(folder) and b"l" not in flags
        ]


def read_files(repository, entries, max_bytes):
    """(path, file node, bytes or None when bigger than ``max_bytes``) for each (path, file node) of ``entries``."""
    path = storage.clone_path(repository)
    with _opened(path) as repo:
        for name, node in entries:
            filelog = repo.file(_encode(name))
            binary = bin(node)
            try:
                size = filelog.size(filelog.rev(binary))
            except hgerror.LookupError:
                raise TransientError(f"clone {path} has no node {node} of {name}") from None
            yield name, node, (None if size > max_bytes else filelog.read(binary))
