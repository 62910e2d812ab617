"""From a delivery to an outcome: parse, hand to the exchange's handler, classify failures.

Handlers are registered per exchange as a pair of plain functions: ``parse``
(pure, delivery -> message with ``kind`` and ``subject``) and ``handle``
(message -> Outcome, doing its work in committed transactions). Adding a
source of messages is one ``register`` call.
"""

import enum
import logging
from dataclasses import dataclass

from django.db import DatabaseError, close_old_connections

from life.errors import PermanentError, TransientError

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    STORED = "stored"
    SKIPPED = "skipped"
    RETRY = "retried"
    DEAD = "dead-lettered"


@dataclass
class Outcome:
    status: Status
    detail: str = ""
    kind: str = "-"
    subject: str = "-"


@dataclass(frozen=True)
class Route:
    parse: object
    handle: object


ROUTES = {}


def register(exchange, parse, handle):
    ROUTES[exchange] = Route(parse, handle)


def stored(detail=""):
    return Outcome(Status.STORED, detail)


def skipped(detail):
    return Outcome(Status.SKIPPED, detail)


def process(delivery):
    """Run the delivery's handler; every failure becomes a RETRY or DEAD outcome, never an exception."""
    kind = subject = "-"
    try:
        route = ROUTES.get(delivery.exchange)
        if route is None:
            raise PermanentError(f"no handler for exchange {delivery.exchange!r}")
        message = route.parse(delivery)
        kind, subject = message.kind, message.subject
        outcome = route.handle(message)
    except PermanentError as error:
        outcome = Outcome(Status.DEAD, str(error))
    except TransientError as error:
        outcome = Outcome(Status.RETRY, str(error))
    except DatabaseError as error:
        # The database went away or a parallel worker won a race: worth another try.
        close_old_connections()
        outcome = Outcome(Status.RETRY, f"database error: {type(error).__name__}: {error}".strip())
    except Exception as error:  # a bug must not crash-loop the worker on one message
        log.exception("internal error handling %s %s", delivery.exchange, delivery.routing_key)
        outcome = Outcome(Status.DEAD, f"internal error: {type(error).__name__}: {error}")
    outcome.kind, outcome.subject = kind, subject
    return outcome
