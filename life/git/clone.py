"""Local clones of git repositories: running git, and keeping the clones current.

The ``git`` command line does the work (a pinned Debian package in the
image): every network operation is a subprocess with a hard timeout
(``plumbing.processes``), like ``hg`` in ``life.hg.clone``, and speaks
whatever protocol the server speaks. Commits are read in ``log``.

A clone is a bare repository in ``<REPOSITORY_BASE>/<name>/.git``, built beside
the old one (if any) and swapped in once complete, as Mercurial clones are
(``life.storage``). The tracked branch is fetched
from the repository's configured URL with an explicit refspec; nothing a
message says is ever fetched.

A clone starts without the blobs of its history (``--filter=blob:none``, where
the server can filter): storing the history needs commits and trees only. Later
fetches name the URL, not a promisor remote, so they bring every object of what
was pushed. The few blobs a reader wants that the clone lacks (files at the tip
for a comparison) come in ONE fetch by ``fetch_blobs``; git would otherwise fetch
them one request each.
"""

import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass

from django.conf import settings

from plumbing import processes
from plumbing.errors import PermanentError, Stalled, TransientError

from .. import storage
from .remote import remote_url

log = logging.getLogger(__name__)

# Nothing on this machine or in the user's home may change what git does, and it must never prompt.
_ENVIRONMENT = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "LC_ALL": "C",
}
# Only http(s) remotes, however a URL got into the database; no credential helper; no redirect at
# all (git cannot keep one within an origin): a repository that moved is tracked again by its new URL.
_SAFE_CONFIG = ("-c", "protocol.allow=never", "-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always",
                "-c", "credential.helper=", "-c", "http.followRedirects=false")
# git dies with the worker (util-linux's setpriv sets PR_SET_PDEATHSIG, then runs git): an orphaned
# fetch would go on writing a staging directory with no timeout.
_DIES_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()
# Written into every clone: background maintenance would outlive the timeout of the command that
# started it; a collection still runs (in the foreground) when a fetch finds too many loose objects.
_CLONE_CONFIG = {"gc.autoDetach": "false", "maintenance.autoDetach": "false"}
_REMOTE_REF_MISSING = "couldn't find remote ref"
_STALLED = b"Operation too slow"  # curl's words when the low-speed limit is hit
_REDIRECTED = re.compile(r"returned error: 30[12378]\b")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


def validate_branch_name(name):
    """``name`` if git accepts it as a branch name (git check-ref-format's rules), else raise:
    it becomes part of a refspec."""
    ok = (isinstance(name, str) and 0 < len(name) <= 255 and not _BRANCH_FORBIDDEN.search(name)
          and not name.startswith("-") and name != "@"
          and all(part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/"))
          and not name.endswith("."))
    if not ok:
        raise PermanentError(f"branch name {str(name)[:80]!r} is not a valid git branch name")
    return name


def git_dir(repository):
    return storage.clone_path(repository) / ".git"


def tracking_ref(repository):
    """Where the tracked branch lands in the clone; a fork sharing its owner's clone keeps its own."""
    if repository.clone_owner().pk == repository.pk:
        return f"refs/heads/{repository.branch}"
    return f"refs/forks/{repository.pk}/heads/{repository.branch}"


# --- running git --------------------------------------------------------------


def git_environment():
    return dict(os.environ, **_ENVIRONMENT)


def stall_options():
    """A transfer that gets less than a byte a second for VCS_STALL_TIMEOUT is abandoned (curl's low-speed
    limit), long before VCS_TIMEOUT: a server that accepts and never answers costs that, not a whole clone's
    bound."""
    return ("-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={math.ceil(settings.VCS_STALL_TIMEOUT)}")


def git_command(directory, args):
    """The command line of git ``args`` on the repository ``directory`` (None: no repository yet)."""
    git = [*_DIES_WITH_PARENT, "git", *_SAFE_CONFIG, *stall_options()]
    return [*git, f"--git-dir={directory}", *args] if directory else [*git, *args]


def run_git(directory, args, what, input=None):
    """Run git on the repository ``directory``; a timeout or failure is transient, a redirect permanent."""
    command = git_command(directory, args)
    done = processes.run(command, env=git_environment(), timeout=settings.VCS_TIMEOUT, what=what, input=input)
    if done.returncode != 0:
        reason = done.last_error_line()
        if _STALLED in done.stderr:  # not always the last line ("RPC failed; curl 28 Operation too slow")
            raise Stalled(f"{what} stalled: less than a byte a second for {settings.VCS_STALL_TIMEOUT:g} s "
                          "(VCS_STALL_TIMEOUT)")
        if _REDIRECTED.search(reason):
            raise PermanentError(f"{what} failed: {reason}: a redirect, which git does not follow here (if the "
                                 "repository moved, track it by its new URL)")
        raise GitFailed(f"{what} failed: {reason}", done.returncode)
    return done.stdout


class GitFailed(TransientError):
    def __init__(self, message, returncode):
        super().__init__(message)
        self.returncode = returncode


# --- clones -------------------------------------------------------------------


def is_usable_clone(directory):
    return (directory / "HEAD").is_file() and (directory / "objects").is_dir() and (directory / "refs").is_dir()


def _fetch_into(directory, url, branch, ref):
    """Fetch ``branch`` of ``url`` into ``ref``, forced (a force push moves it anywhere); returns its
    commit, or None if upstream has no such branch."""
    try:
        run_git(directory, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--update-head-ok", url,
                            f"+refs/heads/{branch}:{ref}"], f"git fetch {url} {branch}")
    except GitFailed as error:
        if _REMOTE_REF_MISSING in str(error):
            return None
        raise
    return resolve(directory, ref)


def resolve(directory, revision):
    """The commit ``revision`` names in the clone, as 40 hex, or None."""
    try:
        out = run_git(directory, ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], "git rev-parse")
    except GitFailed:
        return None
    return out.decode().strip() or None


@dataclass
class Fetched:
    directory: object  # the clone's git directory
    tip: str | None  # the tracked branch's commit upstream, None when upstream has no such branch
    seconds: float


def update_clone(repository, reclone=False):
    """Clone on first use (or when asked, or when the clone is unusable), fetch afterwards.

    The caller holds ``storage.clone_lock(repository)``. A new clone is built
    beside the old one and swapped in once complete: no reader ever sees half
    of one, and a failed clone leaves the old one in place.
    """
    started = time.monotonic()
    validate_branch_name(repository.branch)
    directory = git_dir(repository)
    url, ref = remote_url(repository.url), tracking_ref(repository)
    if directory.exists() and (reclone or not is_usable_clone(directory)):
        log.warning("making clone %s again (%s)", directory, "reclone requested" if reclone else "unusable")
        tip = _clone(repository, directory, url, ref)
    elif not directory.exists():
        tip = _clone(repository, directory, url, ref)
    else:
        tip = _fetch_into(directory, url, repository.branch, ref)
    return Fetched(directory, tip, time.monotonic() - started)


def _clone(repository, directory, url, ref):
    """A new bare clone, built beside the old one (if any) and swapped in once complete (``life.storage``)."""
    with storage.staging(storage.lock_key(repository), directory.parent, directory.name) as staged:
        fresh = staged.work / directory.name
        tip = _first_fetch(str(fresh), url, repository.branch, ref)
        if tip is None:
            return None  # upstream has no such branch: nothing worth keeping
        staged.swap_in()
        return tip


def _first_fetch(fresh, url, branch, ref):
    """A new bare repository at ``fresh`` holding ``branch`` of ``url`` in ``ref``; its commit, or None.

    ``git clone`` when the branch lands in its own name: unlike a fetch into an empty repository,
    it skips walking every object it just received to check that nothing is missing.
    """
    if ref != f"refs/heads/{branch}":
        run_git(None, ["init", "--quiet", "--bare", f"--initial-branch={branch}", fresh], "git init")
        for key, value in _CLONE_CONFIG.items():
            run_git(fresh, ["config", key, value], "git config")
        return _fetch_into(fresh, url, branch, ref)
    try:
        # The clone writes _CLONE_CONFIG itself (--config): no git process more per setting.
        run_git(None, ["clone", "--quiet", "--bare", "--single-branch", "--no-tags", "--filter=blob:none",
                       *(f"--config={key}={value}" for key, value in _CLONE_CONFIG.items()),
                       f"--branch={branch}", url, fresh], f"git clone {url} {branch}")
    except GitFailed as error:
        if f"Remote branch {branch} not found" in str(error):
            return None
        raise
    return resolve(fresh, ref)


def fetch_blobs(repository, blobs):
    """Make sure the clone of ``repository`` holds the blobs ``blobs`` (ids), fetching those it lacks from
    the URL its clone was made from, in one request whatever their number; git finds what it holds
    without asking upstream anything. No lock is needed: the fetch adds objects (a pack appears whole
    or not at all) and moves no ref."""
    directory = git_dir(repository)
    if not _lacks_blobs(directory):
        return
    wanted = b"".join(f"{blob}\n".encode() for blob in dict.fromkeys(blobs))
    if not wanted:
        return
    url = remote_url(repository.clone_owner().url)
    # As git's own fetch of missing objects: no negotiation (what the clone has says nothing about blobs).
    run_git(directory, ["-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags",
                        "--no-write-fetch-head", "--recurse-submodules=no", "--stdin", url],
            f"git fetch {url} (blobs)", input=wanted)


def _lacks_blobs(directory):
    """Whether the clone was made without its history's blobs: git marks such a clone's packs as promisor
    packs (a ``.promisor`` file beside each)."""
    return any((directory / "objects" / "pack").glob("*.promisor"))


def is_ancestor(directory, ancestor, descendant):
    """Whether ``ancestor`` is ``descendant`` or one of its ancestors; False if the clone lacks either."""
    try:
        run_git(directory, ["merge-base", "--is-ancestor", ancestor, descendant], "git merge-base")
    except GitFailed:
        return False
    return True


def count_commits(directory, target, exclude=()):
    out = run_git(directory, ["rev-list", "--count", "--ignore-missing", target, *(f"^{e}" for e in exclude)],
                  "git rev-list --count")
    return int(out.decode().strip() or 0)


