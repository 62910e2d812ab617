"""Dead letters are always written, whatever a delivery carries, on every supported database."""

from decimal import Decimal

import pytest
from django.db import connection

from worker.dispatch import Delivery
from worker.models import DeadLetter

pytestmark = pytest.mark.django_db

HOSTILE_HEADERS = {
    "bytes": b"\xff\xfe\x00",
    "nul\x00key": "value\x00with NUL",
    "surrogate": "\ud800",
    "nested": {"list": [1, b"\xff", None, {"deep": [[[[[[[[["too deep"]]]]]]]]]}]},
    "huge": 2**70,
    "inf": float("inf"),
    "decimal": Decimal("1.5"),
    "x-retries": 2**40,
}


def test_a_delivery_of_anything_is_stored_and_readable():
    delivery = Delivery(b"\x00\xff raw bytes", "exchange/hgpushes/v2", "l10n-central/\ud800\x00\n",
                        "application/json\x00", HOSTILE_HEADERS)

    letter = DeadLetter.record(delivery, "bad \ud800 reason \x00 🎉", source="hgmo", retries=2**40)

    stored = DeadLetter.objects.get(pk=letter.pk)
    assert bytes(stored.body) == b"\x00\xff raw bytes"
    assert stored.routing_key == "l10n-central/\ufffd\ufffd\n"
    assert stored.error == "bad \ufffd reason \ufffd 🎉"
    assert stored.retries == 2**31 - 1
    assert stored.headers["bytes"] == "\\xff\\xfe\ufffd" and stored.headers["huge"] == str(2**70)
    assert stored.headers["inf"] == "inf" and stored.headers["nul\ufffdkey"] == "value\ufffdwith NUL"


@pytest.fixture
def refuse_non_ascii_routing_keys():
    """Make the database refuse a row the way a misconfigured one would (e.g. MySQL without utf8mb4).

    MariaDB commits DDL at once: the constraint is dropped again by hand, or every later test that
    stores such a row would inherit it; and since dropping it commits too, what the test stored is
    deleted first. (PostgreSQL and SQLite roll both back with the test.)
    """
    table = DeadLetter._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.routing_key GLOB '*[^ -~]*' "
                           "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        elif connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (routing_key ~ '^[ -~]*$')")
        else:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (routing_key REGEXP '^[ -~]*$')")
    yield
    if connection.vendor == "mysql":
        DeadLetter.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT refuse")


def test_a_row_the_database_refuses_is_stored_plainly_with_its_raw_body(refuse_non_ascii_routing_keys):
    delivery = Delivery(b'{"not": "stored as is"}', "exchange/hgpushes/v2", "l10n-central/dé\n🎉", None,
                        {"k": "vé"})

    letter = DeadLetter.record(delivery, "not a safe relative path", source="hgmo")

    stored = DeadLetter.objects.get(pk=letter.pk)
    assert bytes(stored.body) == b'{"not": "stored as is"}'
    assert stored.routing_key == "l10n-central/d\\xe9\\n\\U0001f389"
    assert stored.error.startswith("not a safe relative path (stored escaped: the database refused the row")
    assert stored.headers == {"unstorable headers": "{'k': 'v\\xe9'}"}
