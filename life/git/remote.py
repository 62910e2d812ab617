"""The remote tip of a git branch: one HTTP request.

The smart-HTTP ref advertisement (``info/refs?service=git-upload-pack``,
protocol v0 pkt-lines), through ``plumbing.http`` and its timeouts and size
limit; it also names the repository's default branch.
"""

from dataclasses import dataclass, field

from plumbing.errors import PermanentError
from plumbing.http import get_bytes, http_session
from plumbing.names import is_revision

from ..models import NULL_REVISION


def remote_url(repository_url):
    """What git fetches from: the configured URL, without the trailing slash the database keeps."""
    return repository_url.rstrip("/")


@dataclass(frozen=True)
class Advertisement:
    """What a smart-HTTP git server advertises: {ref: commit}, and the branch HEAD points to."""

    refs: dict = field(default_factory=dict)
    head: str | None = None

    def branch(self, name):
        return self.refs.get(f"refs/heads/{name}")

    @property
    def default_branch(self):
        return self.head.removeprefix("refs/heads/") if self.head and self.head.startswith("refs/heads/") else None


def _pkt_lines(body):
    position = 0
    while position < len(body):
        size_text = body[position : position + 4]
        try:
            size = int(size_text, 16)
        except ValueError:
            raise PermanentError("the git server's ref advertisement is not in pkt-line format") from None
        if size == 0:
            yield None  # flush
            position += 4
            continue
        if size < 4 or position + size > len(body):
            raise PermanentError("the git server's ref advertisement has a malformed pkt-line")
        yield body[position + 4 : position + size]
        position += size


def parse_advertisement(body):
    """An Advertisement from the body of ``info/refs?service=git-upload-pack`` (protocol v0)."""
    lines = _pkt_lines(body)
    first = next(lines, None)
    if first is None or first.rstrip(b"\n") != b"# service=git-upload-pack":
        raise PermanentError("not a smart-HTTP git repository (no git-upload-pack service announcement)")
    refs, head = {}, None
    for line in lines:
        if line is None:
            continue
        line = line.rstrip(b"\n")
        line, _, capabilities = line.partition(b"\0")
        sha, _, name = line.partition(b" ")
        sha, name = sha.decode("ascii", "replace"), name.decode("utf-8", "replace")
        if not is_revision(sha):
            raise PermanentError(f"the git server advertised {sha[:60]!r} where a commit id belongs")
        for capability in capabilities.decode("utf-8", "replace").split():
            if capability.startswith("symref=HEAD:"):
                head = capability.removeprefix("symref=HEAD:")
        if sha != NULL_REVISION and not name.endswith("^{}"):  # an empty repository advertises 0{40}
            refs[name] = sha
    return Advertisement(refs, head)


def advertisement(url, session=None):
    """The refs of the git repository at ``url``: one GET."""
    body = get_bytes(session or http_session(), remote_url(url) + "/info/refs", {"service": "git-upload-pack"})
    return parse_advertisement(body)
