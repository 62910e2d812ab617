"""Reading many files of a clone at one revision, from its object store, whatever its kind.

``list_files`` names a revision's files with an id of their content (a git
blob id, a Mercurial file node) without reading them; ``read_files``
streams contents, None for a file over the cap. The ids key what is learnt
of a content (``l10n.parsing``).
"""

from . import clones, git, gitfiles, hgfiles
from .models import Repository


def list_files(repository, revision, prefix=""):
    """[(path, content id)] of ``revision``'s regular files under the folder ``prefix`` ("" for all)."""
    if repository.kind == Repository.GIT:
        return gitfiles.list_files(git.git_dir(repository), revision, prefix)
    return hgfiles.list_files(clones.clone_path(repository), revision, prefix)


def read_files(repository, entries, max_bytes):
    """(path, content id, bytes or None if bigger than ``max_bytes``) for each (path, content id) of ``entries``."""
    if repository.kind == Repository.GIT:
        return gitfiles.read_blobs(git.git_dir(repository), entries, max_bytes)
    return hgfiles.read_files(clones.clone_path(repository), entries, max_bytes)


def read_file(repository, revision, path, max_bytes):
    """The bytes of one file at ``revision`` (None if over the cap); FileNotFoundError if it has none."""
    folder, _, _ = path.rpartition("/")
    for name, content_id in list_files(repository, revision, folder):
        if name == path:
            return next(iter(read_files(repository, [(name, content_id)], max_bytes)))[2]
    raise FileNotFoundError(path)
