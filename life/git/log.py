"""Reading a git clone's commits many at a time: ONE streaming ``git log`` per request, however many
commits it covers, parsed here as it arrives; nothing runs a process per commit."""

from django.conf import settings

from plumbing import processes
from plumbing.errors import TransientError
from plumbing.names import is_revision
from plumbing.text import from_bytes

from ..models import NULL_REVISION
from ..records import ChangesetRecord
from .clone import git_command, git_environment

_READ_CHUNK = 1 << 20
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
    command = git_command(directory, ["log", "-z", _LOG_FORMAT, "--name-only", "--diff-merges=first-parent",
                                      "--no-renames", "--topo-order", "--reverse", "--no-mailmap",
                                      "--no-show-signature", "--encoding=UTF-8", "--ignore-missing", target,
                                      *(f"^{e}" for e in exclude), "--"])
    with processes.stream(command, env=git_environment(), timeout=settings.VCS_TIMEOUT, what=f"git log {target}") as out:
        yield from _parse_log(_fields(out))


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
        user=from_bytes(user),
        description=from_bytes(message).rstrip("\n"),
        branch=None,  # a git commit belongs to no named branch
        parents=parent_ids,
        files=tuple(dict.fromkeys(from_bytes(path) for path in files)),
    )
