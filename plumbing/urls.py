"""URLs from configuration and from outside: normal forms, and where a redirect may lead.

A redirect policy says, for a URL a server redirected to, why it is refused
(a short reason) or None to follow it. Policies judge the URL exactly as it
will be requested (``http.get_bytes`` hands them the prepared URL, after
requests has resolved, encoded and IDNA-mapped it), so what is checked is
what is fetched.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
HTTP_SCHEMES = ("http", "https")
# 64:ff9b::/96 carries an IPv4 address in its last 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def configured_url_parts(value):
    """The parts of a URL that configuration or an operator names (a root URL, a repository): http(s),
    a host, no query, no fragment; else ValueError."""
    parts = urlsplit(value or "")
    if parts.scheme not in HTTP_SCHEMES or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL, not {value!r}")
    return parts


def normalise_root_url(value):
    """A Taskcluster root URL, http(s) without a trailing slash, so every run records the same one."""
    configured_url_parts(value)
    return value.rstrip("/")


def mask_password(url):
    """``url`` with its password, if any, replaced by ``***``: what a log line or an error may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


# user:password@ after a URL scheme, wherever it sits in a text (a command line, git's stderr, an error).
_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@'\"]*):[^/\s@'\"]*@")


def mask_secrets(text):
    """``text`` with the password of every URL in it replaced by ``***``: the one masking rule.

    Applied where text is made: every failure's reason (``plumbing.errors``),
    every recorded error (SyncState, DeadLetter), every command's output and
    every log line (``plumbing.logs``), so a repository URL carrying
    ``user:token`` (how private mirrors are reached) never shows its token.
    """
    if "@" not in text:
        return text
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)


def origin(url):
    """(scheme, host, port) of ``url``, ports defaulted: what "the same origin" compares.

    Raises ValueError for a URL without a host or with an invalid port.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("no host")
    return scheme, host, parts.port or DEFAULT_PORTS.get(scheme)


def _show(origin_tuple):
    scheme, host, port = origin_tuple
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == DEFAULT_PORTS.get(scheme) else f":{port}")


def _basic_refusal(url):
    """Why ``url`` is no place to go whatever the policy, or None (and its origin)."""
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in HTTP_SCHEMES:
            return "it is not http(s)", None
        where = origin(url)
    except ValueError:
        return "it is not a valid URL", None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "it carries credentials", None
    return None, where


def _ip_address(host):
    """The IP address ``host`` denotes, or None for a name.

    IPv4 is read as the system's resolver reads it, so ``127.1``, ``2130706433``
    and ``0x7f.0.0.1`` count as 127.0.0.1 (getaddrinfo would connect there).
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _embedded_ipv4(address):
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    if address.version != 6:
        return []
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [embedded for embedded in found if embedded is not None]


def is_internal_host(host):
    """True for "localhost" and for IP addresses that are not public (loopback, private, link-local,
    unspecified, multicast, reserved), including IPv4 addresses inside IPv6 ones."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip_address(host)
    if address is None:
        return False
    return any(not a.is_global or a.is_multicast for a in [address, *_embedded_ipv4(address)])


class SameOrigin:
    """Redirects that stay on the origin (scheme, host, port) of the URL the configuration names."""

    def __init__(self, url):
        self.origin = origin(url)

    def refusal(self, url):
        reason, where = _basic_refusal(url)
        if reason is None and where != self.origin:
            reason = f"it leaves {_show(self.origin)}"
        return reason


class PublicHttp:
    """The Queue's artifact redirect: anywhere on ``home``'s origin, else http(s) to a public host.

    Artifact storage (S3, GCS) lives on other hosts, so the host cannot be
    pinned; what is refused is what no storage service uses: other schemes,
    credentials, and internal addresses (cloud metadata services, loopback,
    the private network the worker runs in).
    """

    def __init__(self, home):
        self.home = origin(home)

    def refusal(self, url):
        reason, where = _basic_refusal(url)
        if reason is not None or where == self.home:
            return reason
        if is_internal_host(where[1]):
            return "it is an internal address"
        return None


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
