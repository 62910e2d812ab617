"""Reading a git clone's commits many at a time: ONE streaming ``git log`` per request, however many
commits it covers, parsed here as it arrives; nothing runs a process per commit.

``git log`` gives the commits, their parents and paths; their text (author, message) is read from
the commit objects themselves, through one ``git cat-file --batch`` beside it: ``git log``'s
formats end a message at a NUL and reshape odd author lines, and what is stored must be what the
commit holds, decoded by the rule hg's changesets follow (``plumbing.text.changeset_text``).
"""

import codecs
import queue
import re

from django.conf import settings

from plumbing import processes
from plumbing.bulk import chunked
from plumbing.errors import TransientError
from plumbing.names import is_revision
from plumbing.text import changeset_text

from ..models import NULL_REVISION
from ..records import ChangesetRecord
from .clone import git_command, git_environment

_READ_CHUNK = 1 << 20
# A record starts with an empty field (paths are never empty), then the commit's fields; the paths
# it touched follow, the first one after the newline git puts between the header and the paths.
_LOG_FORMAT = "--format=%x00%H%x00%P"
_HEADER_FIELDS = 2
# Commit objects asked of cat-file at once; the next group is asked before a group's answers are read.
_ASK_AT_ONCE = 256
# git flushes its output after every commit (every object, for cat-file) when it writes to a pipe: a
# write, and a wake-up of the reader, per commit. git log is read to its end, so it need not flush
# (GIT_FLUSH=0); cat-file answers a group with ``--buffer`` and flushes once, when the group says so.
_NO_FLUSH = {"GIT_FLUSH": "0"}
_FLUSH = b"flush\n"
# An author line's identity, less the date git writes after it (whatever that date holds).
_IDENTITY = re.compile(rb"(.*>)[^>]*\Z", re.DOTALL)
_DATE = re.compile(rb"(.*?) *-?\d* *[-+]?\d*\Z", re.DOTALL)


def read_commits(directory, target, exclude=()):
    """ChangesetRecords of the commits reachable from ``target`` but not from ``exclude``, parents
    before children, streamed from one ``git log``.

    Files are those Mercurial's ``files`` would list: what each commit changed, and for a merge,
    what differs from its first parent. Excluded commits the clone does not have are ignored.
    """
    command = git_command(directory, ["log", "-z", _LOG_FORMAT, "--name-only", "--diff-merges=first-parent",
                                      "--no-renames", "--topo-order", "--reverse", "--no-mailmap",
                                      "--no-show-signature", "--encoding=UTF-8", "--ignore-missing", target,
                                      *(f"^{e}" for e in exclude), "--"])
    with processes.stream(command, env={**git_environment(), **_NO_FLUSH}, timeout=settings.VCS_TIMEOUT,
                          what=f"git log {target}") as out:
        yield from _with_text(directory, _parse_log(_fields(out)))


def _with_text(directory, commits):
    """ChangesetRecords of ``commits`` ((revision, parents, files), in order), their user and description
    read from the commit objects by one ``git cat-file``, asked a group at a time: cat-file answers
    one group, in one flush, while the previous group's answers are read (a question, or an answer,
    per commit would wake a thread per commit)."""
    asked = queue.SimpleQueue()

    def groups():
        while (group := asked.get()) is not None:
            yield group

    command = git_command(directory, ["cat-file", "--batch-command", "--buffer"])
    with processes.stream(command, env=git_environment(), timeout=settings.VCS_TIMEOUT, what="git cat-file",
                          input_lines=groups()) as out:
        try:
            answering = []
            for group in chunked(commits, _ASK_AT_ONCE):
                asked.put(b"".join(b"contents " + revision.encode() + b"\n" for revision, *_ in group) + _FLUSH)
                yield from (_record(*commit, out) for commit in answering)
                answering = group
            asked.put(None)
            yield from (_record(*commit, out) for commit in answering)
        finally:
            asked.put(None)  # the writer thread ends however the reading does


def _fields(stream):
    """The NUL-terminated fields of a stream, as bytes."""
    rest = b""
    while chunk := stream.read1(_READ_CHUNK):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _parse_log(fields):
    """(revision, parents, files) from the fields of ``git log -z`` in ``_LOG_FORMAT`` with ``--name-only``."""
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
                yield _commit(header, files)
            header, files = [next(fields, b"") for _ in range(_HEADER_FIELDS)], []
    if header is not None:
        yield _commit(header, files)


def _commit(header, files):
    sha, parents = header
    revision = sha.decode()
    if not is_revision(revision):
        raise TransientError(f"git log gave {revision[:60]!r} where a commit id belongs")
    parent_ids = tuple(parents.decode().split()) or (NULL_REVISION,)
    return revision, parent_ids, tuple(dict.fromkeys(changeset_text(path) for path in files))


def _record(revision, parents, files, stream):
    user, description = commit_text(_read_object(stream, revision))
    return ChangesetRecord(revision=revision, user=user, description=description,
                           branch=None,  # a git commit belongs to no named branch
                           parents=parents, files=files)


def _read_object(stream, revision):
    """The raw commit ``revision``, the next answer of ``git cat-file`` on ``stream``."""
    header = stream.readline()
    parts = header.split()
    if len(parts) != 3 or parts[0] != revision.encode() or parts[1] != b"commit" or not parts[2].isdigit():
        raise TransientError(f"git cat-file gave {header[:100]!r} for commit {revision}")
    size = int(parts[2])
    data = stream.read(size + 1)
    if len(data) != size + 1:
        raise TransientError(f"git cat-file stopped inside commit {revision}")
    return data[:-1]


def commit_text(raw):
    """(user, description) of the raw commit object ``raw``, as stored.

    The user is the author line without its date (``Name <email>``, as a Mercurial user is written);
    the description is the message, NULs included, less its final newlines. Both are decoded from the
    commit's ``encoding`` header when it names one Python knows and that decodes them, as ``git log``
    re-encodes them; otherwise by ``changeset_text``, hg's rule.
    """
    headers, _, message = raw.partition(b"\n\n")
    author, encoding = b"", None
    for line in headers.split(b"\n"):
        name, _, value = line.partition(b" ")
        if name == b"author" and not author:
            author = value
        elif name == b"encoding" and encoding is None:
            encoding = value.strip().decode("ascii", "replace")
    identity = _IDENTITY.match(author) or _DATE.match(author)
    user = identity.group(1)
    return _decoded(user, encoding), _decoded(message, encoding).rstrip("\n")


def _decoded(data, encoding):
    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            if codecs.lookup(encoding).name != "utf-8":
                return changeset_text(data.decode(encoding).encode("utf-8"))
        except (LookupError, UnicodeDecodeError):
            pass  # git too keeps the bytes as they are when it cannot convert them
    return changeset_text(data)
