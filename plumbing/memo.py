"""A bounded in-process memo for values that never change once known (content-addressed: a file at a
revision, what a content parses to), so a worker pays for each at most once while it stays in memory.

Shared by the worker's handler threads (``worker.lanes``), hence the lock.
"""

import threading
import weakref
from collections import OrderedDict

_MISSING = object()
_every = weakref.WeakSet()


def forget_everything():
    """Empty every Memo of this process: what they hold is true of one database and its clones, and a
    test or a benchmark that starts another must start as a new process does."""
    for memo in list(_every):
        memo.clear()


class Memo:
    """At most ``size`` entries; the least recently used goes first."""

    def __init__(self, size):
        self.size = size
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        _every.add(self)

    def get(self, key, default=None):
        with self._lock:
            value = self._entries.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._entries.move_to_end(key)
            return value

    def __contains__(self, key):
        with self._lock:
            return key in self._entries

    def put(self, key, value):
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()
