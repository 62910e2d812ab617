"""Links to what upstream shows of a commit or a file: hg.mozilla.org's or GitHub's pages.

Pure functions of a repository's kind and URL (rows the worker trusts); anything
that is not http(s) links nowhere.
"""

from urllib.parse import quote, urlsplit

from plumbing.urls import mask_secrets


def _web_base(kind, url):
    if not url or urlsplit(url).scheme not in ("http", "https"):
        return None
    url = mask_secrets(url)
    if kind == "git":
        base = url.rstrip("/")
        return base[:-4] if base.endswith(".git") else base
    return url if url.endswith("/") else url + "/"


def commit_url(kind, url, revision):
    """hg: ``<repo url>rev/<rev>``; git (GitHub): ``https://github.com/<org>/<repo>/commit/<sha>``."""
    base = _web_base(kind, url)
    if base is None or not revision:
        return None
    return f"{base}/commit/{revision}" if kind == "git" else f"{base}rev/{revision}"


def file_url(kind, url, revision, path):
    """The file at that revision: hg ``<repo url>file/<rev>/<path>``, GitHub ``…/blob/<sha>/<path>``."""
    base = _web_base(kind, url)
    if base is None or not revision or not path:
        return None
    path = quote(path.lstrip("/"))
    return f"{base}/blob/{revision}/{path}" if kind == "git" else f"{base}file/{revision}/{path}"
