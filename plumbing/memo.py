"""A bounded in-process memo for values that never change once known (content-addressed: a file at a
revision, what a content parses to), so a worker pays for each at most once while it stays in memory."""

from collections import OrderedDict


class Memo:
    """At most ``size`` entries; the least recently used goes first."""

    def __init__(self, size):
        self.size = size
        self._entries = OrderedDict()

    def get(self, key, default=None):
        value = self._entries.get(key, default)
        if key in self._entries:
            self._entries.move_to_end(key)
        return value

    def __contains__(self, key):
        return key in self._entries

    def put(self, key, value):
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self):
        self._entries.clear()
