"""Local Mercurial clones under REPOSITORY_BASE: running hg, and keeping the clones current.

Network operations run the ``hg`` command in a subprocess so that each one
has a hard timeout and cannot wedge the worker. Two small extensions of ours
go into every hg (``life/hg/extensions``): redirects stay within the origin
of the URL being pulled, and hg dies with the worker. hg runs in its own
process group, which a timeout kills whole.

A new clone, and a re-made one, is built beside the old one and swapped in
only once it is complete (``life.storage``): a failed clone leaves the old
one where web heads read it, and a repository's directory is never removed
(it may hold the clone of a repository whose name nests in this one's).
"""

import logging
import os
import re
import sys
import time
from pathlib import Path

from django.conf import settings

from plumbing import processes
from plumbing.errors import PermanentError, Stalled, TransientError

from .. import storage
from ..storage import clone_path, lock_key
from .extensions import low_speed, same_origin

log = logging.getLogger(__name__)

META = ".hg"
_EXTENSIONS = Path(__file__).resolve().parent / "extensions"
# Locks a killed hg leaves behind; Mercurial waits for them (forever, if they name another host).
_HG_LOCKS = (Path(".hg/wlock"), Path(".hg/store/lock"))
# What hg says when http.timeout expires: "abort: error: timed out" (connecting, or waiting for an answer),
# "abort: error: The read operation timed out" (TLS), "abort: timed out" (in the middle of a bundle); and
# when our low-speed extension ends it: "abort: timed out: less than 2 bytes a second ...".
_TIMED_OUT = re.compile(r"^abort: .*timed out\b", re.IGNORECASE)


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


def hg_guard_options():
    """What every hg the worker runs is given: our extensions, and no clone bundles.

    Clone bundles are downloaded from wherever the server's manifest says
    (hg.mozilla.org's are on a CDN): another origin than the configured URL.
    """
    return [
        "--config", f"extensions.l10n_same_origin={_EXTENSIONS / 'same_origin.py'}",
        "--config", f"extensions.l10n_dies_with_parent={_EXTENSIONS / 'dies_with_parent.py'}",
        "--config", f"l10n-worker.parent-pid={os.getpid()}",
        "--config", "ui.clonebundles=false",
        # A socket that receives nothing for this long fails the command: a server that accepts and never
        # answers costs VCS_STALL_TIMEOUT, not VCS_TIMEOUT (which bounds a whole clone that keeps receiving).
        "--config", f"http.timeout={settings.VCS_STALL_TIMEOUT:g}",
        # ... and a server that sends a byte a second, which no socket timeout notices (curl's low-speed limit).
        "--config", f"extensions.l10n_low_speed={_EXTENSIONS / 'low_speed.py'}",
        "--config", f"l10n-worker.stall-seconds={settings.VCS_STALL_TIMEOUT:g}",
    ]  # fmt: skip


def run_hg(args, what):
    """Run hg; a timeout or a failure is transient (the server or network is at fault), a refused
    redirect is permanent (the configuration names a URL that sends us elsewhere)."""
    command = [hg_executable(), *hg_guard_options(), *args]
    done = processes.run(command, env=hg_environment(), timeout=settings.VCS_TIMEOUT, what=what)
    if done.returncode != 0:
        if same_origin.REFUSED.encode() in done.stderr:
            raise PermanentError(f"{what} failed: {done.last_error_line()}")
        if _TIMED_OUT.search(done.last_error_line()):
            how = ("less than 2 bytes a second" if low_speed.SAID in done.stderr else "nothing received")
            raise Stalled(f"{what} stalled: {how} for {settings.VCS_STALL_TIMEOUT:g} s (VCS_STALL_TIMEOUT)")
        raise TransientError(f"{what} failed: {done.last_error_line()}")
    return done.stdout


def is_usable_clone(path):
    """A directory that Mercurial can open as a repository with no interrupted transaction."""
    store = path / META / "store"
    return (path / META / "requires").is_file() and store.is_dir() and not (store / "journal").exists()


def remove_stale_hg_locks(path):
    """Remove Mercurial's locks from a clone: under our clone lock nothing else writes it, so any
    lock there was left by a killed hg (which Mercurial would wait for, forever if it names another
    host, as after a container restart)."""
    for lock in _HG_LOCKS:
        if os.path.lexists(path / lock):
            log.warning("removing %s, left by a killed hg", path / lock)
            (path / lock).unlink()


def clone(url, path):
    """Clone ``url`` into the directory ``path`` (a staging directory: see update_clone)."""
    run_hg(["clone", "--noupdate", "--quiet", url, str(path)], f"hg clone {url}")


def pull(url, path):
    run_hg(["pull", "--quiet", "--repository", str(path), url], f"hg pull {url}")


def update_clone(repository, reclone=False):
    """Clone on first use, pull afterwards; returns (path, seconds spent in hg).

    The caller holds ``storage.clone_lock(repository)``. A fork's clone is the one of
    the repository it forks: it is created from that repository and then
    pulls from the fork. A clone that Mercurial cannot use, or any clone with
    ``reclone``, is made again beside the old one and swapped in on success.
    """
    started = time.monotonic()
    path = clone_path(repository)
    remove_stale_hg_locks(path)
    if reclone or not is_usable_clone(path):
        if os.path.lexists(path / META):
            log.warning("recloning %s (%s)", path, "reclone requested" if reclone else "unusable")
        owner = repository.clone_owner()
        with storage.staging(lock_key(repository), path, META) as staged:
            clone(owner.url, staged.work)
            if owner.pk != repository.pk:
                pull(repository.url, staged.work)
            staged.swap_in()
    else:
        pull(repository.url, path)
    return path, time.monotonic() - started
