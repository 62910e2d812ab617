"""Local Mercurial clones under REPOSITORY_BASE: where they live, and keeping them current.

Network operations run the ``hg`` command in a subprocess so that each one
has a hard timeout and cannot wedge the worker. A clone is made in a
temporary directory and renamed into place, so a crash never leaves a
half-made clone where a real one is expected.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

from plumbing.errors import PermanentError, TransientError
from plumbing.names import validate_repository_name

log = logging.getLogger(__name__)


def hg_executable():
    """HG_BINARY, else the ``hg`` next to this interpreter (the pinned one), else the one on PATH."""
    if settings.HG_BINARY:
        return settings.HG_BINARY
    beside = Path(sys.executable).with_name("hg")
    return str(beside) if beside.exists() else "hg"


def hg_environment():
    env = dict(os.environ)
    # Plain, predictable output and no user configuration or extensions.
    env.update({"HGPLAIN": "1", "HGENCODING": "utf-8", "HGRCPATH": ""})
    return env


def repository_base():
    return Path(settings.REPOSITORY_BASE).resolve()


def clone_path(repository):
    """Where ``repository``'s clone lives; forks share the clone of what they fork."""
    name = validate_repository_name(repository.clone_owner().name)
    base = repository_base()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or path == base:
        raise PermanentError(f"repository name {name!r} escapes REPOSITORY_BASE")
    return path


@contextlib.contextmanager
def clone_lock(repository):
    """Serialise work on one clone across processes (an advisory file lock)."""
    owner = repository.clone_owner().name
    locks = repository_base() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock_file = locks / (hashlib.sha1(owner.encode()).hexdigest() + ".lock")
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_hg(args, what):
    """Run hg; a timeout or a failure is transient (the server or network is at fault)."""
    command = [hg_executable(), *args]
    try:
        done = subprocess.run(
            command,
            env=hg_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=settings.HG_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} timed out after {settings.HG_TIMEOUT:g}s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TransientError(f"{what} failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout


def is_usable_clone(path):
    """A directory that Mercurial can open as a repository with no interrupted transaction."""
    store = path / ".hg" / "store"
    return (path / ".hg" / "requires").is_file() and store.is_dir() and not (store / "journal").exists()


def clone(url, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.cloning-", dir=path.parent))
    try:
        run_hg(["clone", "--noupdate", "--quiet", url, str(staging / "repo")], f"hg clone {url}")
        os.replace(staging / "repo", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pull(url, path):
    run_hg(["pull", "--quiet", "--repository", str(path), url], f"hg pull {url}")


def update_clone(repository, reclone=False):
    """Clone on first use, pull afterwards; returns (path, seconds spent in hg).

    A fork's clone is the one of the repository it forks: it is created from
    that repository and then pulls from the fork. A clone that Mercurial
    cannot use is removed and made again.
    """
    started = time.monotonic()
    path = clone_path(repository)
    if path.exists() and (reclone or not is_usable_clone(path)):
        log.warning("removing clone %s (%s)", path, "reclone requested" if reclone else "unusable")
        shutil.rmtree(path)
    if not path.exists():
        owner = repository.clone_owner()
        clone(owner.url, path)
        if owner.pk != repository.pk:
            pull(repository.url, path)
    else:
        pull(repository.url, path)
    return path, time.monotonic() - started
