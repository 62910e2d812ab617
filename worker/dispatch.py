"""From a delivery to an outcome: parse it, hand it to its source's handler, classify failures.

Each source (``sources.py``) pairs a pure ``parse`` (delivery -> a Message)
with a ``handle`` (Message -> Outcome, doing its work in committed
transactions). ``process`` turns every failure into a
RETRY or DEAD outcome, never an exception: bad input is DEAD, everything
else (including what nobody foresaw) is retried with back-off.
"""

import enum
import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

from django.db import DatabaseError, close_old_connections

from plumbing.errors import Deferred, PermanentError, TransientError
from plumbing.urls import mask_secrets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What the broker handed us, in plain data."""

    body: bytes
    exchange: str
    routing_key: str
    content_type: str | None = "application/json"
    headers: dict = field(default_factory=dict)
    content_encoding: str | None = None


class Status(enum.StrEnum):
    STORED = "stored"
    SKIPPED = "skipped"
    RETRY = "retried"
    DEAD = "dead-lettered"


class Message(Protocol):
    """What every source's ``parse`` returns: plain data that names itself in the log line."""

    @property
    def kind(self) -> str:
        """The type of message, as upstream names it (``changegroup.1``, ``push``, ``task-completed``)."""

    @property
    def subject(self) -> str:
        """What it is about: a repository, a task."""


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    kind: str = "-"  # the Message's, once parsed
    subject: str = "-"
    # For a retry: seconds after the first attempt past which it is given up (see TransientError).
    give_up_after: float | None = None
    # For a retry: whether it counts as one (a Deferred message was not tried).
    counted: bool = True
    # For an uncounted retry: wait the shortest delay (a busy repository) rather than the longest (backing off).
    soon: bool = False


def stored(detail=""):
    return Outcome(Status.STORED, detail)


def skipped(detail):
    return Outcome(Status.SKIPPED, detail)


def process(source, delivery):
    """Run ``delivery`` through ``source``; every failure becomes a RETRY or DEAD outcome."""
    try:
        message = source.parse(delivery)
    except PermanentError as error:
        return Outcome(Status.DEAD, str(error))
    return run(source, message, delivery)


def run(source, message, delivery):
    """Handle a parsed ``message``; every failure becomes a RETRY or DEAD outcome."""
    kind, subject = message.kind, message.subject
    try:
        outcome = source.handle(message)
    except PermanentError as error:
        outcome = Outcome(Status.DEAD, str(error))
    except Deferred as error:
        outcome = Outcome(Status.RETRY, str(error), counted=False)
    except TransientError as error:
        outcome = Outcome(Status.RETRY, str(error), give_up_after=error.give_up_after)
    except DatabaseError as error:
        # The database went away or a parallel worker won a race: worth another try.
        close_old_connections()
        outcome = Outcome(Status.RETRY, mask_secrets(f"database error: {type(error).__name__}: {error}".strip()))
    except Exception as error:
        # Nobody foresaw it: retried with back-off like any transient failure (and recorded in the
        # repository's sync state by life), a dead letter once the retries run out; never a crash.
        log.exception("unexpected error handling %s %s", delivery.exchange, delivery.routing_key)
        outcome = Outcome(Status.RETRY, mask_secrets(f"unexpected error: {type(error).__name__}: {error}"))
    return replace(outcome, kind=kind, subject=subject)
