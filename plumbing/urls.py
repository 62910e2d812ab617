"""URLs from configuration and from outside: normal forms, and what counts as the same origin."""

from urllib.parse import urlsplit


def normalise_root_url(value):
    """A Taskcluster root URL, http(s) without a trailing slash, so every run records the same one."""
    parts = urlsplit(value or "")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/")
