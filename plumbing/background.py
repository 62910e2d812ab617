"""Reading ahead: iterate in a background thread while the caller does something else.

Used to read json-pushes while a clone is pulled, git log while its commits
are stored, and a git import's batches while they are linked: the waits
overlap instead of adding up. The thread stays at most ``ahead`` items in
front of the consumer, so memory stays bounded; its exception reaches the
consumer at the point where the failed item would have been.
"""

import contextlib
import queue
import threading
import types

_END = object()


class _Raised:
    def __init__(self, error):
        self.error = error


@contextlib.contextmanager
def read_ahead(iterable, ahead, name="read-ahead"):
    """An iterator over ``iterable``, produced in a thread at most ``ahead`` items ahead.

    Leaving the block stops the thread after the item it is producing (so one
    item's worth of waiting, e.g. one HTTP request with its timeout, at most).
    """
    items = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        try:
            for item in iterable:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer, which decides
            put(_Raised(error))
        else:
            put(_END)
        finally:
            # A generator left early cleans up here, in the thread that ran it (what it opened is this thread's).
            if isinstance(iterable, types.GeneratorType):
                iterable.close()

    def consume():
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
