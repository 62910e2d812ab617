"""What becomes of a delivery, decided over plain data (worker/policy.py): no broker, no database."""

import pytest

from worker import policy
from worker.dispatch import Delivery, Outcome, Status


def delivery(headers=None, content_encoding="utf-8"):
    return Delivery(b"{}", "exchange/hgpushes/v2", "l10n-central/de", "application/json", headers or {},
                    content_encoding)


@pytest.mark.parametrize("value, counted", [(None, 0), (3, 3), ("3", 0), (-5, 0), ([1], 0), (True, 0),
                                            (2**40, policy.MAX_RETRIES_COUNTED), (1.5, 0)])
def test_the_retry_count_is_whatever_the_header_says_within_bounds(value, counted):
    assert policy.retries({} if value is None else {"x-retries": value}) == counted


@pytest.mark.parametrize("headers, reason", [
    ({"compression": "application/x-gzip"}, "compressed bodies are refused"),
    ({"compression": b"\xff\xfe"}, "compressed bodies are refused"),
    ({"x-delivery-count": 19}, "delivered 20 times without being settled"),
])
def test_refused_before_any_parsing(headers, reason):
    assert reason in policy.refusal(delivery(headers), delivery_limit=19)


@pytest.mark.parametrize("encoding", ["gzip", "latin-1", "x-unknown\n"])
def test_unknown_content_encodings_are_refused(encoding):
    assert "is not supported" in policy.refusal(delivery(content_encoding=encoding), delivery_limit=20)


@pytest.mark.parametrize("encoding", [None, "utf-8", "UTF-8", "binary"])
def test_plain_deliveries_are_not_refused(encoding):
    assert policy.refusal(delivery({"x-delivery-count": 3}, encoding), delivery_limit=20) is None


def test_a_retry_becomes_a_dead_letter_when_it_runs_out_of_tries():
    retry = Outcome(Status.RETRY, "hg pull failed")
    assert policy.final(retry, retries=47, first_attempt=0, now=10, max_retries=48) is retry
    given_up = policy.final(retry, retries=48, first_attempt=0, now=10, max_retries=48)
    assert given_up.status is Status.DEAD and given_up.detail == "gave up after 48 retries: hg pull failed"


def test_a_retry_with_a_time_limit_becomes_a_dead_letter_once_that_old():
    early = Outcome(Status.RETRY, "push 9 is not upstream yet", give_up_after=600)
    assert policy.final(early, retries=3, first_attempt=1000, now=1599, max_retries=48).status is Status.RETRY
    late = policy.final(early, retries=3, first_attempt=1000, now=1600, max_retries=48)
    assert late.status is Status.DEAD and late.detail.startswith("gave up after 600s (the limit is 600s)")


def test_the_first_attempt_is_the_header_only_when_plausible():
    assert policy.first_attempt({"x-first-attempt": 900.5}, now=1000) == 900.5
    for bogus in (2000, -1, "900", float("nan"), True, None):
        assert policy.first_attempt({"x-first-attempt": bogus}, now=1000) == 1000


def test_a_retry_copy_carries_what_was_received_but_not_what_must_not_travel_again():
    original = delivery({"x-retries": 2, "x-first-attempt": 900.0, "compression": "zlib", "CC": ["route.x"],
                         "x-death": [{"count": 1}], "x-delivery-count": 4, "app-header": "kept"})
    headers = policy.retry_headers(original, retries=2, first_attempt=900.0)
    assert headers == {"app-header": "kept", "x-retries": 3, "x-first-attempt": 900.0,
                       "x-original-exchange": "exchange/hgpushes/v2", "x-original-routing-key": "l10n-central/de"}
