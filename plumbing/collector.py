"""Python's cyclic garbage collector in a process that imports histories.

A full collection walks every object the process holds. Django, the apps and
their libraries leave about 100,000 objects at startup that live as long as
the process, and an import allocates enough to run a full collection again
and again: a git import of 10,000 commits spent ~90 ms in them, a fifth of
its time past the clone, every thread stopped (~25 ms once they were frozen).
``gc.freeze()`` moves what exists to a permanent generation that collections
skip.
"""

import functools
import gc


@functools.cache  # once per process: later calls (commands run in-process by tests) change nothing
def freeze_startup_objects():
    """Leave what exists now out of every later collection; called when a command starts its work."""
    gc.collect()  # the startup's own garbage is not kept for good
    gc.freeze()
