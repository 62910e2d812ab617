"""Heartbeats on the broker connection while the consumer is busy with one message.

While a handler runs (a first clone can take VCS_TIMEOUT), the consumer
thread neither reads nor writes the connection, and a broker that hears
nothing for two heartbeat intervals closes it: the message in hand comes
back to the queue while its effects, or its retry copy, are already there.

One thread per worker sends heartbeat frames, and only while the consumer
is inside ``busy()`` and has been for a while. A lock keeps the two from
using the connection at once: leaving ``busy()`` waits for a heartbeat in
flight, so the consumer thread gets the connection back to itself.
"""

import threading
import time


class KeepAlive:
    def __init__(self):
        self.interval = None
        self.lock = threading.Lock()
        self.connection = None
        self.since = 0.0
        self.thread = None

    def busy(self, amqp_connection):
        """A context in which ``amqp_connection`` (py-amqp's; None for none) is kept alive.

        The interval is half the heartbeat the broker and client agreed on (0: none to keep).
        """
        heartbeat = getattr(amqp_connection, "heartbeat", None)
        if not heartbeat:
            return _Busy(self, None)
        self.interval = max(heartbeat / 2, 0.25)
        return _Busy(self, amqp_connection)

    def _run(self):
        while True:
            time.sleep(self.interval)
            with self.lock:
                if self.connection is not None and time.monotonic() - self.since >= self.interval:
                    try:
                        self.connection.send_heartbeat()
                    except Exception:  # noqa: BLE001 - the consumer finds the connection broken when it next uses it
                        self.connection = None


class _Busy:
    def __init__(self, keepalive, connection):
        self.keepalive, self.connection = keepalive, connection

    def __enter__(self):
        keepalive = self.keepalive
        if self.connection is not None:
            with keepalive.lock:
                keepalive.connection, keepalive.since = self.connection, time.monotonic()
            if keepalive.thread is None:
                keepalive.thread = threading.Thread(target=keepalive._run, name="amqp-heartbeat", daemon=True)
                keepalive.thread.start()
        return self

    def __exit__(self, *exc_info):
        if self.connection is not None:
            with self.keepalive.lock:
                self.keepalive.connection = None
