"""Text from outside, made safe for where it goes: a database column, or a log line."""

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def storable(text):
    """``text`` as every supported database accepts it: no NUL, no lone surrogates.

    Both are replaced by U+FFFD, the usual mark for what could not be represented.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def text_problem(value):
    """Why ``value`` is not text every database stores exactly, or None: the one rule for every source.

    JSON can carry a NUL and a lone surrogate; no upstream could legally have
    produced either in a name, a ref or a user, so a message carrying one is
    rejected with this reason (hg's pushlog and GitHub's messages alike).
    """
    if not isinstance(value, str):
        return "is not a string"
    if "\x00" in value:
        return "has a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def printable(text, limit=None):
    """``text`` on one line of any output: control characters and lone surrogates escaped.

    A newline in a routing key cannot forge a log line, and nothing makes a
    UTF-8 stream refuse to write it.
    """
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def ascii_only(text, limit=None):
    """``printable(text)`` with everything beyond ASCII escaped too: storable in any column."""
    return printable(text, limit).encode("ascii", "backslashreplace").decode("ascii")


def from_bytes(data):
    """Bytes read from hg or git as storable text: undecodable bytes must not stop an import."""
    return storable(data.decode("utf-8", "replace"))


def changeset_text(data):
    """A changeset's text (user, description, branch, file name) as stored, the one rule for hg and git.

    Mercurial's own reading (``encoding.tolocal``): UTF-8 when the bytes are UTF-8, else latin-1,
    its fallback encoding, which maps every byte to a character: nothing is lost, nothing stops an
    import. A NUL (both tools can hold one) becomes U+FFFD, as no database stores it.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return storable(text)


def field_text(value):
    """A message's field as text: headers may carry bytes, or nothing (bytes that are not UTF-8 are kept
    as surrogate escapes: ``printable`` shows them)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)
