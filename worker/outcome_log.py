"""The lines an operator reads for settled deliveries: one per delivery, and one a minute for those
skipped unread (most of what hg.mozilla.org announces is for repositories nobody here tracks)."""

import logging
import time

log = logging.getLogger("worker")

SKIPPED_UNREAD = "unknown repository (body not read)"
# Seconds between the lines that sum up the deliveries skipped unread.
SKIP_SUMMARY_INTERVAL = 60.0


class SkipSummary:
    """Deliveries skipped unread (repositories not tracked: most of what hg.mozilla.org announces),
    logged as one line per interval; their own lines are DEBUG, and the metrics count every one."""

    def __init__(self, interval=SKIP_SUMMARY_INTERVAL, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self.count, self.since = 0, clock()

    def add(self):
        self.count += 1
        self.flush_if_due()

    def flush_if_due(self):
        if self.count and self.clock() - self.since >= self.interval:
            self.flush()

    def flush(self):
        if self.count:
            seconds = self.clock() - self.since
            log.info("skipped %d messages for repositories not tracked, in the last %.0fs", self.count, seconds,
                     extra={"event": {"skipped_unread": self.count, "seconds": round(seconds, 1)}})
        self.count, self.since = 0, self.clock()


def log_outcome(exchange, routing_key, outcome, duration, settled_as=None, level=logging.INFO):
    """The one line each delivery gets, also as a structured ``event``."""
    event = {
        "exchange": exchange,
        "routing_key": routing_key[:200],
        "type": outcome.kind,
        "subject": outcome.subject[:200],
        "outcome": settled_as or str(outcome.status),
        "duration": round(duration, 3),
        "detail": outcome.detail,
    }
    log.log(
        level,
        "%(exchange)s %(routing_key)s type=%(type)s subject=%(subject)s outcome=%(outcome)s "
        "duration=%(duration).3fs %(detail)s",
        event,
        extra={"event": event},
    )
