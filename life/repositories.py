"""Starting to track a repository of either kind (what each kind then does: ``life.kinds``).

``track`` starts tracking a repository by URL. Which kind it is is asked of
the server: a smart-HTTP git server answers ``info/refs?service=git-upload-pack``
with its ref advertisement (which also names the default branch), anything
else is taken for Mercurial. The host name cannot tell (GitHub Enterprise,
other git hosts, the simulated GitHub all have their own), and one request
at setup costs nothing; ``kind`` may still be given to skip the question.
"""

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction

from plumbing.errors import PermanentError
from plumbing.names import validate_locale_code, validate_repository_name
from plumbing.urls import configured_url_parts

from . import kinds
from .git.clone import validate_branch_name
from .git.remote import advertisement as git_advertisement
from .models import Forest, Locale, Repository

log = logging.getLogger(__name__)

DEFAULT_GIT_BRANCH = "main"


@dataclass(frozen=True)
class Tracking:
    """What ``track`` makes of its arguments: the Repository row to be."""

    name: str
    url: str
    kind: str
    branch: str = ""


def normalise_url(url, kind):
    """The repository URL as rows keep it: http(s), no query, one trailing slash; no ``.git`` for git,
    so that comparisons' revision keys (``/owner/name/``) resolve to it."""
    try:
        parts = configured_url_parts(url)
    except ValueError:
        raise PermanentError(f"{url!r} is not an http(s) repository URL") from None
    path = parts.path.rstrip("/")
    if kind == Repository.GIT:
        path = path.removesuffix(".git")
    if not path:
        raise PermanentError(f"{url!r} names no repository")
    return f"{parts.scheme}://{parts.netloc}{path}/"


def default_name(url):
    return urlsplit(url).path.strip("/")


def plan(url, name=None, branch=None, kind=None, advertisement=None):
    """A Tracking from the command's arguments; ``advertisement`` is what the server said (git only)."""
    kind = kind or (Repository.GIT if advertisement is not None else Repository.HG)
    url = normalise_url(url, kind)
    name = validate_repository_name(name or default_name(url))
    if kind == Repository.HG:
        if branch:
            raise PermanentError("--branch is for git repositories: a Mercurial repository is tracked whole")
        return Tracking(name, url, kind)
    branch = branch or (advertisement and advertisement.default_branch) or DEFAULT_GIT_BRANCH
    return Tracking(name, url, kind, validate_branch_name(branch))


def probe(url):
    """The server's git ref advertisement for ``url``, or None when it does not speak git's smart HTTP."""
    try:
        return git_advertisement(url)
    except PermanentError:
        return None


def create(tracking, forest=None):
    """The Repository for ``tracking`` (created, or found as it is); under ``forest`` (made if needed)
    with the locale its last path segment names."""
    with transaction.atomic():
        forest_row = None
        if forest:
            parent = tracking.url.rstrip("/").rsplit("/", 1)[0] + "/"
            forest_row, made = Forest.objects.get_or_create(name=forest, defaults={"url": parent})
            if made:
                log.info("new forest %s at %s", forest, parent)
        locale = None
        code = tracking.name.rsplit("/", 1)[-1]
        if forest_row is not None and _is_locale_code(code):
            locale, _ = Locale.objects.get_or_create(code=code)
        repository, created = Repository.objects.get_or_create(
            name=tracking.name,
            defaults={"url": tracking.url, "kind": tracking.kind, "branch": tracking.branch, "forest": forest_row,
                      "locale": locale},
        )
    if not created and (repository.url, repository.kind, repository.branch) != (tracking.url, tracking.kind,
                                                                                   tracking.branch):
        raise PermanentError(f"{tracking.name} is already tracked as {repository.kind} {repository.url}"
                             + (f" branch {repository.branch}" if repository.branch else ""))
    return repository, created


def start_tracking(url, name=None, branch=None, forest=None, kind=None):
    """The Repository for ``url``, created unless it is already tracked the same way."""
    advertisement = probe(url) if kind in (None, Repository.GIT) else None
    if kind == Repository.GIT and advertisement is None:
        raise PermanentError(f"{url} does not answer as a git repository (info/refs?service=git-upload-pack)")
    repository, created = create(plan(url, name, branch, kind, advertisement), forest)
    if created:
        log.info("tracking %s %s at %s", repository.kind, repository.name, repository.url)
    return repository


def track(url, name=None, branch=None, forest=None, kind=None, progress=None):
    """Start tracking the repository at ``url``: create it, clone it, import its history.

    Returns (Repository, result of the import). Running it again for the same
    repository imports what is new, like ``reprocess-repo``.
    """
    repository = start_tracking(url, name, branch, forest, kind)
    return repository, kinds.for_repository(repository).reprocess(repository, progress=progress)


def _is_locale_code(code):
    try:
        validate_locale_code(code)
    except PermanentError:
        return False
    return True
