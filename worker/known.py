"""What the worker knows of the repositories it tracks, re-read at most every ``ttl`` seconds.

Upstream announces pushes of every repository and almost all are for
repositories we do not track: skipping them must not cost a query each. A
repository added elsewhere is seen within ``ttl``; the same race exists
anyway with a parallel worker still creating it, and a missed push is
recovered by the next push or the backfill.
"""

import time


class Refreshed:
    """A value read from the database by ``read()``, trusted for ``ttl`` seconds, then read again."""

    def __init__(self, ttl, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self.value = None
        self.read_at = None

    def read(self):
        raise NotImplementedError

    def current(self):
        now = self.clock()
        if self.read_at is None or now - self.read_at >= self.ttl:
            self.value = self.read()
            self.read_at = now
        return self.value

    def forget(self):
        """Read again at the next question (a repository was just made)."""
        self.read_at = None
