"""Reading changeset metadata from a local clone, many changesets at a time.

This reads the changelog in-process with Mercurial's library: one open of
the repository serves a whole import, with no per-changeset process and no
template rendering. Only local, already pulled data is read
here; network operations live in ``clone``.
"""

import contextlib

from mercurial import error as hgerror
from mercurial import hg
from mercurial import ui as hgui
from mercurial.node import bin, hex, nullid

from plumbing.errors import PermanentError, TransientError
from plumbing.text import changeset_text, from_bytes

from ..models import NULL_REVISION
from ..records import ChangesetRecord


def open_repository(path):
    ui = hgui.ui()
    ui.setconfig(b"ui", b"quiet", b"true")
    try:
        # unfiltered: hidden (obsolete) changesets are still history we may be told about.
        return hg.repository(ui, bytes(path)).unfiltered()
    except hgerror.RepoError as error:
        raise TransientError(f"cannot open clone {path}: {from_bytes(error.args[0] if error.args else b'')}") from None


class Changelog:
    """A clone's changelog, opened once for any number of reads (see ``open_changelog``)."""

    def __init__(self, repo):
        self._changelog = repo.changelog

    def revisions(self):
        """Every revision of the clone as 40 hex, parents before children (the index alone: cheap)."""
        changelog = self._changelog
        return (hex(changelog.node(rev)).decode() for rev in changelog)

    def read(self, revisions):
        """ChangesetRecords for ``revisions`` (40-hex strings), in the given order.

        A revision the clone does not have is a permanent error: the clone was
        pulled after the pushlog named it, so upstream lied to us.
        """
        changelog = self._changelog
        nodes = [bin(revision) for revision in revisions]
        missing = [revision for revision, node in zip(revisions, nodes, strict=True) if not changelog.hasnode(node)]
        if missing:
            raise PermanentError(
                f"{len(missing)} changeset(s) listed upstream are not in the clone after pulling, "
                f"e.g. {missing[0]}"
            )
        return [_record(changelog, node) for node in nodes]


@contextlib.contextmanager
def open_changelog(path):
    """The Changelog of the clone at ``path``, for the duration of the block."""
    repo = open_repository(path)
    try:
        yield Changelog(repo)
    finally:
        repo.close()


def _record(changelog, node):
    entry = changelog.changelogrevision(node)
    first, second = changelog.parents(node)
    parents = (hex(first).decode(),) if first != nullid else (NULL_REVISION,)
    if second != nullid:
        parents += (hex(second).decode(),)
    return ChangesetRecord(
        revision=hex(node).decode(),
        user=changeset_text(entry.user),
        description=changeset_text(entry.description),
        branch=changeset_text(entry.extra.get(b"branch", b"default")),
        parents=parents,
        files=tuple(changeset_text(name) for name in entry.files),
    )
