"""Reading files of a git clone at a revision, straight from its object store (no working tree).

``git ls-tree -r`` lists a revision's files with their blob ids without
reading any content; ``git cat-file --batch`` streams the contents of any
number of blobs from ONE process. A blob bigger than the cap is skipped
(read past, never kept), so a hostile file costs no memory.
"""

import subprocess
import tempfile
import threading

from django.conf import settings

from plumbing.errors import TransientError

from . import git

_CHUNK = 1 << 16
_REGULAR_FILES = (b"100644", b"100755")  # not symlinks, not submodules


def list_files(directory, revision, prefix=""):
    """[(path, blob id)] of the regular files of ``revision`` under ``prefix`` (a folder, "" for all)."""
    pathspec = ["--", prefix] if prefix else []
    out = git.run_git(directory, ["ls-tree", "-r", "-z", "--full-tree", revision, *pathspec], f"git ls-tree {revision}")
    files = []
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        mode, kind, blob = meta.split(b" ")
        if kind == b"blob" and mode in _REGULAR_FILES:
            files.append((path.decode("utf-8", "surrogateescape"), blob.decode()))
    return files


def read_blobs(directory, entries, max_bytes):
    """(path, blob id, bytes or None when bigger than ``max_bytes``) for each (path, blob id) of ``entries``,
    streamed from one ``git cat-file --batch``."""
    entries = list(entries)
    if not entries:
        return
    command = [*git._DIES_WITH_PARENT, "git", *git._SAFE_CONFIG, f"--git-dir={directory}", "cat-file", "--batch"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=git._environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=errors)
        timer = threading.Timer(settings.HG_TIMEOUT, process.kill)
        # Written from a thread: git answers as it reads, and both pipes have bounded buffers.
        writer = threading.Thread(target=_write_ids, args=(process.stdin, [blob for _, blob in entries]),
                                  name="cat-file-input", daemon=True)
        timer.start()
        writer.start()
        finished = False
        try:
            for path, blob in entries:
                try:
                    data = _read_one(process.stdout, blob, max_bytes)
                except TransientError:
                    if timer.finished.is_set():
                        raise TransientError(f"git cat-file timed out after {settings.HG_TIMEOUT:g}s") from None
                    raise
                yield path, blob, data
            finished = True
        finally:
            if not finished and process.poll() is None:
                process.kill()  # the reader stopped early (or failed): nothing more is wanted
            process.stdout.close()
            returncode = process.wait()
            timer.cancel()
            writer.join()
        if returncode != 0:
            errors.seek(0)
            raise TransientError(f"git cat-file failed: {errors.read().decode('utf-8', 'replace').strip()[-300:]}")


def _write_ids(stream, blobs):
    try:
        for blob in blobs:
            stream.write(blob.encode() + b"\n")
        stream.close()
    except (BrokenPipeError, ValueError):
        pass  # git was stopped: the reader reports why


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
