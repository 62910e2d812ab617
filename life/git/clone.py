"""Local clones of git repositories, and reading their commits many at a time.

The ``git`` command line does the work (a pinned Debian package in the
image): every network operation is a subprocess with a hard timeout, like
``hg`` in ``clones``, and speaks whatever protocol the server speaks. Commits
are read by ONE streaming ``git log`` per request, however many commits it
covers, parsed here as it arrives; nothing runs a process per commit.

A clone is a bare repository in ``<REPOSITORY_BASE>/<name>/.git``, built beside
the old one (if any) and swapped in once complete, as Mercurial clones are
(``life.storage``). The tracked branch is fetched
from the repository's configured URL with an explicit refspec; nothing a
message says is ever fetched.

The remote tip of a branch costs one HTTP request: the smart-HTTP ref
advertisement (``info/refs?service=git-upload-pack``, protocol v0 pkt-lines),
through ``plumbing.http`` and its timeouts and size limit.
"""

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from plumbing import processes
from plumbing.errors import PermanentError, TransientError
from plumbing.http import get_bytes, http_session
from plumbing.names import is_revision
from plumbing.text import storable

from . import clones, storage
from .models import NULL_REVISION
from .records import ChangesetRecord

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
_READ_CHUNK = 1 << 20
_REMOTE_REF_MISSING = "couldn't find remote ref"
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


def remote_url(repository_url):
    """What git fetches from: the configured URL, without the trailing slash the database keeps."""
    return repository_url.rstrip("/")


def git_dir(repository):
    return clones.clone_path(repository) / ".git"


def tracking_ref(repository):
    """Where the tracked branch lands in the clone; a fork sharing its owner's clone keeps its own."""
    if repository.clone_owner().pk == repository.pk:
        return f"refs/heads/{repository.branch}"
    return f"refs/forks/{repository.pk}/heads/{repository.branch}"


# --- running git --------------------------------------------------------------


def _environment():
    return dict(os.environ, **_ENVIRONMENT)


def run_git(directory, args, what, input=None):
    """Run git on the repository ``directory``; a timeout or failure is transient, a redirect permanent."""
    git = [*_DIES_WITH_PARENT, "git", *_SAFE_CONFIG]
    command = [*git, f"--git-dir={directory}", *args] if directory else [*git, *args]
    done = processes.run(command, env=_environment(), timeout=settings.HG_TIMEOUT, what=what, input=input)
    if done.returncode != 0:
        reason = done.last_error_line()
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

    The caller holds ``clones.clone_lock(repository)``. A new clone is built
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
    with storage.staging(clones.lock_key(repository), directory.parent, directory.name) as staged:
        fresh = staged.work / directory.name
        tip = _first_fetch(str(fresh), url, repository.branch, ref)
        if tip is None:
            return None  # upstream has no such branch: nothing worth keeping
        for key, value in _CLONE_CONFIG.items():
            run_git(fresh, ["config", key, value], "git config")
        staged.swap_in()
        return tip


def _first_fetch(fresh, url, branch, ref):
    """A new bare repository at ``fresh`` holding ``branch`` of ``url`` in ``ref``; its commit, or None.

    ``git clone`` when the branch lands in its own name: unlike a fetch into an empty repository,
    it skips walking every object it just received to check that nothing is missing.
    """
    if ref != f"refs/heads/{branch}":
        run_git(None, ["init", "--quiet", "--bare", f"--initial-branch={branch}", fresh], "git init")
        return _fetch_into(fresh, url, branch, ref)
    try:
        run_git(None, ["clone", "--quiet", "--bare", "--single-branch", "--no-tags", f"--branch={branch}", url, fresh],
                f"git clone {url} {branch}")
    except GitFailed as error:
        if f"Remote branch {branch} not found" in str(error):
            return None
        raise
    return resolve(fresh, ref)


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


# --- reading commits ------------------------------------------------------------

# A record starts with an empty field (paths are never empty), then the commit's fields; the paths
# it touched follow, the first one after the newline git puts between the header and the paths.
_LOG_FORMAT = "--format=%x00%H%x00%P%x00%an <%ae>%x00%B"
_HEADER_FIELDS = 4


def read_commits(directory, target, exclude=()):
    """ChangesetRecords of the commits reachable from ``target`` but not from ``exclude``, parents
    before children, streamed from one ``git log``.

    Files are those Mercurial's ``files`` would list: what each commit changed, and for a merge,
    what differs from its first parent. Excluded commits the clone does not have are ignored.
    """
    command = ["git", *_SAFE_CONFIG, f"--git-dir={directory}", "log", "-z", _LOG_FORMAT, "--name-only",
               "--diff-merges=first-parent", "--no-renames", "--topo-order", "--reverse", "--no-mailmap",
               "--no-show-signature", "--encoding=UTF-8", "--ignore-missing", target,
               *(f"^{e}" for e in exclude), "--"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=errors)
        timer = threading.Timer(settings.HG_TIMEOUT, process.kill)
        timer.start()
        try:
            yield from _parse_log(_fields(process.stdout))
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()  # the reader stopped early (or failed): nothing more is wanted
            process.stdout.close()
            returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            reason = "timed out" if returncode == -9 else (lines[-1] if lines else f"exit {returncode}")
            raise TransientError(f"git log {target} failed: {reason}")


def _fields(stream):
    """The NUL-terminated fields of a stream, as bytes."""
    rest = b""
    while chunk := stream.read1(_READ_CHUNK):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _text(value):
    return storable(value.decode("utf-8", "replace"))


def _parse_log(fields):
    """Records from the fields of ``git log -z`` in ``_LOG_FORMAT`` with ``--name-only``."""
    fields = iter(fields)
    header, files = None, []
    for value in fields:
        if value and header is not None:
            # The first path comes after the newline git writes between a commit and its paths.
            files.append(value[1:] if not files and value.startswith(b"\n") else value)
        elif value:
            raise TransientError("git log wrote something before the first commit")
        else:
            if header is not None:
                yield _record(header, files)
            # Taken by position: an empty message is an empty field.
            header, files = [next(fields, b"") for _ in range(_HEADER_FIELDS)], []
    if header is not None:
        yield _record(header, files)


def _record(header, files):
    sha, parents, user, message = header
    revision = sha.decode()
    if not is_revision(revision):
        raise TransientError(f"git log gave {revision[:60]!r} where a commit id belongs")
    parent_ids = tuple(parents.decode().split()) or (NULL_REVISION,)
    return ChangesetRecord(
        revision=revision,
        user=_text(user),
        description=_text(message).rstrip("\n"),
        branch=None,  # a git commit belongs to no named branch
        parents=parent_ids,
        files=tuple(dict.fromkeys(_text(path) for path in files)),
    )


# --- the remote tip: one request ---------------------------------------------------


@dataclass(frozen=True)
class Advertisement:
    """What a smart-HTTP git server advertises: {ref: commit}, and the branch HEAD points to."""

    refs: dict = field(default_factory=dict)
    head: str | None = None

    def branch(self, name):
        return self.refs.get(f"refs/heads/{name}")

    @property
    def default_branch(self):
        return self.head.removeprefix("refs/heads/") if self.head and self.head.startswith("refs/heads/") else None


def _pkt_lines(body):
    position = 0
    while position < len(body):
        size_text = body[position : position + 4]
        try:
            size = int(size_text, 16)
        except ValueError:
            raise PermanentError("the git server's ref advertisement is not in pkt-line format") from None
        if size == 0:
            yield None  # flush
            position += 4
            continue
        if size < 4 or position + size > len(body):
            raise PermanentError("the git server's ref advertisement has a malformed pkt-line")
        yield body[position + 4 : position + size]
        position += size


def parse_advertisement(body):
    """An Advertisement from the body of ``info/refs?service=git-upload-pack`` (protocol v0)."""
    lines = _pkt_lines(body)
    first = next(lines, None)
    if first is None or first.rstrip(b"\n") != b"# service=git-upload-pack":
        raise PermanentError("not a smart-HTTP git repository (no git-upload-pack service announcement)")
    refs, head = {}, None
    for line in lines:
        if line is None:
            continue
        line = line.rstrip(b"\n")
        line, _, capabilities = line.partition(b"\0")
        sha, _, name = line.partition(b" ")
        sha, name = sha.decode("ascii", "replace"), name.decode("utf-8", "replace")
        if not is_revision(sha):
            raise PermanentError(f"the git server advertised {sha[:60]!r} where a commit id belongs")
        for capability in capabilities.decode("utf-8", "replace").split():
            if capability.startswith("symref=HEAD:"):
                head = capability.removeprefix("symref=HEAD:")
        if sha != NULL_REVISION and not name.endswith("^{}"):  # an empty repository advertises 0{40}
            refs[name] = sha
    return Advertisement(refs, head)


def advertisement(url, session=None):
    """The refs of the git repository at ``url``: one GET."""
    body = get_bytes(session or http_session(), remote_url(url) + "/info/refs", {"service": "git-upload-pack"})
    return parse_advertisement(body)
