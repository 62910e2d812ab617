"""What the consumer loop does besides consuming, between deliveries: telling the health check it is
alive, starting the backfill every BACKFILL_INTERVAL (or at once, when a queue was lost), and pruning
old dead letters once a day."""

import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from life.backfill import backfill

from . import metrics, retention

log = logging.getLogger("worker")

HEARTBEAT_EVERY = 5
PRUNE_EVERY = 24 * 3600


class Housekeeping:
    """The liveness file, the backfill timer and the dead letters' pruning of one consumer loop
    (``backfills``: the main broker's, which also prunes)."""

    def __init__(self, backfills):
        self.backfills = backfills
        self.last_beat = 0.0
        self.last_backfill = time.monotonic()
        self.backfill_thread = None
        self.backfill_due = False  # a backfill of every repository is wanted now
        self.next_prune = time.monotonic()  # at start, then daily: a worker restarted often still prunes

    def tick(self):
        self.beat()
        self.maybe_backfill()
        self.maybe_prune()

    def backfill_now(self):
        """Backfill every repository as soon as possible: messages were lost (a queue deleted behind our
        back). One already running may have passed repositories that got pushes since: another follows it."""
        self.backfill_due = True
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
        if not self.backfills:
            return
        if not self.backfill_due and (not interval or time.monotonic() - self.last_backfill < interval):
            return
        if self.backfill_thread is not None and self.backfill_thread.is_alive():
            return
        # Messages were lost: every repository, whatever BACKFILL_LIMIT says.
        limit = None if self.backfill_due else settings.BACKFILL_LIMIT or None
        self.backfill_due = False
        self.last_backfill = time.monotonic()
        self.backfill_thread = threading.Thread(target=_backfill_in_thread, args=(limit,), name="backfill",
                                                daemon=True)
        self.backfill_thread.start()

    def maybe_prune(self):
        """Daily, delete the dead letters kept longer than their retention (a single indexed DELETE)."""
        if not self.backfills or time.monotonic() < self.next_prune:
            return
        self.next_prune = time.monotonic() + PRUNE_EVERY
        try:
            pruned = retention.prune()
        except DatabaseError as error:
            close_old_connections()
            self.next_prune = time.monotonic() + 3600  # the database is away: try again in an hour
            log.warning("could not prune old dead letters (%s); trying again in an hour", error)
            return
        if pruned.total:
            log.info("pruned %s", pruned.summary())


def _backfill_in_thread(limit):
    try:
        log.info(backfill(limit=limit).summary())
    except Exception:
        log.exception("backfill failed")
    finally:
        connections.close_all()
