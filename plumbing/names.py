"""Validation of names that arrive from outside (DESIGN §7).

Repository names become paths under REPOSITORY_BASE and parts of URLs, so
only a conservative alphabet is accepted; locale codes must look like the
BCP 47 tags Mozilla uses.
"""

import re

from .errors import PermanentError

MAX_REPOSITORY_NAME = 200
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPOSITORY_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*\Z")
_REVISION = re.compile(r"[0-9a-f]{40}\Z")
# language[-script][-region][-variant…]: de, es-ES, sr-Latn, ja-JP-mac, ca-valencia
_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?(?:-[a-z0-9]{3,8})*\Z")


def validate_repository_name(name):
    """Return ``name`` if it is a safe relative repository path, else raise."""
    if not isinstance(name, str) or not name:
        raise PermanentError("repository name is empty")
    if len(name) > MAX_REPOSITORY_NAME:
        raise PermanentError(f"repository name is longer than {MAX_REPOSITORY_NAME} characters")
    if not _REPOSITORY_NAME.match(name):
        raise PermanentError(f"repository name {name!r} is not a safe relative path")
    return name


def is_revision(value):
    return isinstance(value, str) and bool(_REVISION.match(value))


def validate_revision(value):
    if not is_revision(value):
        raise PermanentError(f"revision {str(value)[:60]!r} is not 40 lowercase hex characters")
    return value


def validate_locale_code(code):
    if not isinstance(code, str) or len(code) > 30 or not _LOCALE.match(code):
        raise PermanentError(f"locale code {str(code)[:40]!r} does not look like a BCP 47 tag")
    return code
