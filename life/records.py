"""Plain data read from upstream, before it touches the database."""

from dataclasses import dataclass, field
from datetime import datetime, timezone

# What every supported database and Python's datetime can hold: years 1 to 9999, UTC.
EARLIEST_DATE = int(datetime(1, 1, 1, tzinfo=timezone.utc).timestamp())
LATEST_DATE = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp())


def date_problem(date):
    """Why ``date`` (seconds since the epoch, from upstream) is not a push date stored exactly, or None:
    the one rule for every source (hg's pushlog, GitHub's messages)."""
    if not isinstance(date, int) or isinstance(date, bool):
        return "is malformed"
    if not EARLIEST_DATE <= date <= LATEST_DATE:
        return f"is outside years 1 to 9999 ({date})"
    return None


@dataclass(frozen=True)
class ChangesetRecord:
    revision: str
    user: str
    description: str
    branch: str | None  # None: a git commit, which belongs to no named branch
    # First parent first; a root's only parent is the null revision.
    parents: tuple[str, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class PushRecord:
    push_id: int
    user: str
    date: int  # seconds since the epoch, UTC
    changesets: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RejectedPush:
    """A push upstream lists but could not legally have produced: never stored, and why."""

    push_id: int
    reason: str  # what is wrong with it, e.g. "has a user with a NUL character"

    def __str__(self):
        return f"upstream push {self.push_id} {self.reason}"


@dataclass(frozen=True)
class PushlogPage:
    last_push_id: int
    pushes: tuple[PushRecord, ...]
    rejected: tuple[RejectedPush, ...] = ()
