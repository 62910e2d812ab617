"""What the consumer loop does besides consuming, between deliveries: telling the health check it is
alive, and starting the backfill every BACKFILL_INTERVAL."""

import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import connections

from life.backfill import backfill

from . import metrics

log = logging.getLogger("worker")

HEARTBEAT_EVERY = 5


class Housekeeping:
    """The liveness file and the backfill timer of one consumer loop (``backfills``: the main broker's)."""

    def __init__(self, backfills):
        self.backfills = backfills
        self.last_beat = 0.0
        self.last_backfill = time.monotonic()
        self.backfill_thread = None

    def tick(self):
        self.beat()
        self.maybe_backfill()

    def beat(self):
        """Tell the health check this loop is alive (at most every few seconds)."""
        now = time.time()
        if now - self.last_beat >= HEARTBEAT_EVERY:
            self.last_beat = now
            metrics.LAST_ALIVE.set(now)
            heartbeat = Path(settings.HEARTBEAT_FILE)
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()

    def maybe_backfill(self):
        """Every BACKFILL_INTERVAL, backfill in a thread: messages keep flowing meanwhile.

        Backfill and message handlers take the same locks, so they never
        store a push twice.
        """
        interval = settings.BACKFILL_INTERVAL
        if not interval or not self.backfills or time.monotonic() - self.last_backfill < interval:
            return
        if self.backfill_thread is not None and self.backfill_thread.is_alive():
            return
        self.last_backfill = time.monotonic()
        self.backfill_thread = threading.Thread(target=_backfill_in_thread, name="backfill", daemon=True)
        self.backfill_thread.start()


def _backfill_in_thread():
    try:
        log.info(backfill(limit=settings.BACKFILL_LIMIT or None).summary())
    except Exception:
        log.exception("backfill failed")
    finally:
        connections.close_all()
