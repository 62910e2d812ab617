"""Mercurial extension: hg gives up when its transfer gets less than 2 bytes a second for N seconds.

Mercurial's ``http.timeout`` is a socket timeout: it ends a read that waits
N seconds for its first byte, but a server that sends a byte a second
never trips it, and holds the pull until VCS_TIMEOUT. This is curl's
low-speed limit (what git is given, ``http.lowSpeedLimit=1`` and
``http.lowSpeedTime=N``) for hg: every byte hg's sockets receive is
counted, and while a read is waiting, fewer than 2N bytes in the last N
seconds end hg with the line ``abort: timed out: ...``. The worker passes N
as ``l10n-worker.stall-seconds``.
"""

import collections
import os
import socket
import ssl
import sys
import threading
import time

from mercurial import registrar

testedwith = b"7.2.4"

configtable = {}
configitem = registrar.configitem(configtable)
configitem(b"l10n-worker", b"stall-seconds", default=None)

# Bytes a second below which a transfer is stalled: curl's integer speed makes its limit of 1 (git's) end
# a 1-byte-a-second trickle too; a window of N seconds of such a trickle holds N bytes or N - 1.
LOW_SPEED = 2
# What hg writes when it gives up (the worker looks for it).
SAID = b"abort: timed out: less than"
# A pause between reads longer than this is hg's own work, not the server's slowness: the next read
# begins a new transfer.
IDLE_SECONDS = 1.0


class _Meter:
    def __init__(self, seconds):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.reading = 0  # socket reads waiting now
        self.since = None  # when the current transfer began: it is not judged before N seconds
        self.last_read = 0.0  # when the last read ended
        self.received = collections.deque()  # (time, bytes) of the last N seconds
        self.local = threading.local()  # an SSL read may call the plain one: count once

    def read(self, original, sock, args, kwargs):
        if getattr(self.local, "inside", False):
            return original(sock, *args, **kwargs)
        self.local.inside = True
        with self.lock:
            now = time.monotonic()
            if not self.reading and now - self.last_read > IDLE_SECONDS:
                # After hg's own work (no read waiting), a new transfer: judged from now on.
                self.since = now
                self.received.clear()
            self.reading += 1
        try:
            result = original(sock, *args, **kwargs)
        finally:
            self.local.inside = False
            with self.lock:
                self.reading -= 1
                self.last_read = time.monotonic()
        count = len(result) if isinstance(result, bytes) else result
        if count:
            with self.lock:
                self.received.append((time.monotonic(), count))
        return result

    def watch(self):
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with self.lock:
                while self.received and self.received[0][0] < now - self.seconds:
                    self.received.popleft()
                slow = (self.reading and now - self.since >= self.seconds
                        and sum(count for _, count in self.received) < LOW_SPEED * self.seconds)
            if slow:
                sys.stderr.write(f"abort: timed out: less than {LOW_SPEED} bytes a second for {self.seconds:g} s\n")
                sys.stderr.flush()
                os._exit(255)


def uisetup(ui):
    seconds = ui.configwith(float, b"l10n-worker", b"stall-seconds")
    if not seconds:
        return
    meter = _Meter(seconds)
    for cls in (socket.socket, ssl.SSLSocket):
        for name in ("recv", "recv_into"):
            original = cls.__dict__.get(name) or getattr(cls, name)

            def wrapped(sock, *args, _original=original, **kwargs):
                return meter.read(_original, sock, args, kwargs)

            setattr(cls, name, wrapped)
    threading.Thread(target=meter.watch, name="l10n-low-speed", daemon=True).start()
