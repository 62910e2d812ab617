"""Mercurial extension: follow HTTP redirects only within the origin of the URL being pulled.

The worker trusts only the URLs its configuration names. Mercurial follows
any redirect urllib does (another host, an internal address, ``ftp://``);
this replaces urllib's redirect handler in every opener Mercurial builds
with one that refuses a redirect whose target's origin (scheme, host, port)
differs from the request's. The target is never contacted: hg aborts with a
message containing ``REFUSED``, which the worker treats as a permanent
failure. Each hop is checked against the one before, so a chain of
redirects stays within the first URL's origin.
"""

import urllib.parse
import urllib.request

from mercurial import error, url
from mercurial.utils import urlutil

testedwith = b"7.2.4"

REFUSED = "redirected to another origin"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(address):
    """(scheme, host, port) of a URL, with the scheme's default port made explicit."""
    parts = urllib.parse.urlsplit(address)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a number: matches no origin
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def _safe(address):
    return urlutil.hidepassword(address.encode("utf-8", "replace"))


class SameOriginRedirectHandler(urllib.request.HTTPRedirectHandler):
    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location)
            if origin(target) != origin(req.full_url):
                fp.close()
                raise error.Abort(
                    b"%s %s %s, refused" % (_safe(req.full_url), REFUSED.encode(), _safe(target))
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def uisetup(ui):
    # urllib's build_opener drops its default redirect handler when given a subclass of it.
    url.handlerfuncs.append(lambda ui, passwordmanager: SameOriginRedirectHandler())
