"""URLs from configuration and from outside: normal forms, and what counts as the same origin."""

from urllib.parse import urlsplit


def normalise_root_url(value):
    """A Taskcluster root URL, http(s) without a trailing slash, so every run records the same one."""
    parts = urlsplit(value or "")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def enclosing_urls(url):
    """``url`` and every URL above it at a path-segment boundary, longest first, each with and without
    its trailing slash: where a repository holding the file or folder ``url`` names could be.

    ``https://hg.mozilla.org/l10n/gecko-strings/file/abc/_configs/browser.toml`` gives
    ``…/_configs/browser.toml``, ``…/_configs/``, …, ``https://hg.mozilla.org/l10n/gecko-strings/``,
    ``https://hg.mozilla.org/l10n/``; query and fragment are ignored, the origin itself is never one.
    """
    parts = urlsplit(url or "")
    if not parts.scheme or not parts.netloc:
        return []
    segments = [segment for segment in parts.path.split("/") if segment]
    origin = f"{parts.scheme}://{parts.netloc}/"
    urls = []
    for end in range(len(segments), 0, -1):
        path = origin + "/".join(segments[:end])
        urls += [path + "/", path]
    return urls
