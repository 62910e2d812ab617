"""Reading files of a git clone at a revision, straight from its object store (no working tree).

``git ls-tree -r`` lists a revision's files with their blob ids without
reading any content; ``git cat-file --batch`` streams the contents of any
number of blobs from ONE process, once the clone holds them all (a clone
starts without its history's blobs: ``clone.fetch_blobs``). A blob bigger
than the cap is skipped (read past, never kept), so a hostile file costs no
memory.
"""

from django.conf import settings

from plumbing import processes
from plumbing.errors import TransientError

from .clone import fetch_blobs, git_command, git_dir, git_environment, run_git

_CHUNK = 1 << 16
_REGULAR_FILES = (b"100644", b"100755")  # not symlinks, not submodules


def list_files(repository, revision, prefix=""):
    """[(path, blob id)] of the regular files of ``revision`` under ``prefix`` (a folder, "" for all)."""
    directory = git_dir(repository)
    pathspec = ["--", prefix] if prefix else []
    out = run_git(directory, ["ls-tree", "-r", "-z", "--full-tree", revision, *pathspec], f"git ls-tree {revision}")
    files = []
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        mode, kind, blob = meta.split(b" ")
        if kind == b"blob" and mode in _REGULAR_FILES:
            files.append((path.decode("utf-8", "surrogateescape"), blob.decode()))
    return files


def read_files(repository, entries, max_bytes):
    """(path, blob id, bytes or None when bigger than ``max_bytes``) for each (path, blob id) of ``entries``,
    streamed from one ``git cat-file --batch``."""
    entries = list(entries)
    if not entries:
        return
    fetch_blobs(repository, (blob for _, blob in entries))
    directory = git_dir(repository)
    command = git_command(directory, ["cat-file", "--batch"])
    asked = b"".join(blob.encode() + b"\n" for _, blob in entries)
    with processes.stream(command, env=git_environment(), timeout=settings.VCS_TIMEOUT, what="git cat-file",
                          input_lines=[asked]) as out:
        for path, blob in entries:
            yield path, blob, _read_one(out, blob, max_bytes)


def _read_one(stream, blob, max_bytes):
    header = stream.readline()
    parts = header.split()
    if len(parts) != 3 or parts[0].decode() != blob or parts[1] != b"blob":
        raise TransientError(f"git cat-file gave {header[:100]!r} for blob {blob}")
    size = int(parts[2])
    if size > max_bytes:
        left = size + 1
        while left:
            chunk = stream.read(min(left, _CHUNK))
            if not chunk:
                raise TransientError(f"git cat-file stopped inside blob {blob}")
            left -= len(chunk)
        return None
    data = stream.read(size + 1)
    if len(data) != size + 1:
        raise TransientError(f"git cat-file stopped inside blob {blob}")
    return data[:-1]
