"""The pure parts of a history import: batching pushes into transactions, proving stored pushes, reading ahead."""

import threading

import pytest

from life.completeness import StoredPush, unproven
from life.hg.ingest import batches
from life.records import PushlogPage, PushRecord, RejectedPush
from plumbing.background import read_ahead
from plumbing.bulk import chunked


def push(push_id, changesets, user="u@example.com", date=1000):
    return PushRecord(push_id, user, date, tuple(f"{push_id:020x}{n:020x}" for n in range(changesets)))


def test_batches_are_bounded_by_changesets_and_pushes_across_pages():
    pages = [
        PushlogPage(9, (push(1, 3), push(2, 3), push(3, 1))),
        PushlogPage(9, (push(4, 1), push(5, 1), push(6, 1), push(7, 1), push(8, 1), push(9, 1))),
    ]

    result = list(batches(pages, max_changesets=5, max_pushes=4))

    assert [[p.push_id for p in batch.pushes] for batch in result] == [[1], [2, 3, 4], [5, 6, 7, 8], [9]]
    assert all(batch.upstream_push_id == 9 for batch in result)


def test_a_push_larger_than_a_batch_is_never_split():
    result = list(batches([PushlogPage(3, (push(1, 1), push(2, 50), push(3, 1)))], max_changesets=10, max_pushes=10))

    assert [[(p.push_id, len(p.changesets)) for p in batch.pushes] for batch in result] == [[(1, 1)], [(2, 50)], [(3, 1)]]


def test_the_last_batch_comes_even_without_pushes_carrying_rejections_and_lastpushid():
    rejected = RejectedPush(2, "has a user with a NUL character")
    pages = [PushlogPage(3, (push(1, 1),)), PushlogPage(4, (), (rejected,))]

    result = list(batches(pages, max_changesets=1, max_pushes=1))

    assert [([p.push_id for p in batch.pushes], batch.rejected, batch.upstream_push_id) for batch in result] == [
        ([1], [rejected], 4)
    ]
    assert list(batches([PushlogPage(7, ())], 10, 10))[0].upstream_push_id == 7


def stored_as(record, sound=True, **changes):
    fields = {"user": record.user, "date": record.date, "changesets": frozenset(record.changesets), "sound": sound}
    return StoredPush(**{**fields, **changes})


def test_a_push_is_proven_only_when_everything_about_it_is_stored():
    pushes = [push(n, 2) for n in range(1, 8)]
    p1, p2, p3, p4, p5, p6, p7 = pushes
    stored = {
        1: stored_as(p1),
        2: stored_as(p2, user="someone else"),
        3: stored_as(p3, date=p3.date + 1),
        4: stored_as(p4, changesets=frozenset(p4.changesets[:1])),
        5: stored_as(p5, changesets=frozenset({*p5.changesets, "f" * 40})),
        6: stored_as(p6, sound=False),  # a placeholder, or not linked to the repository
    }

    assert [p.push_id for p in unproven(pushes, stored)] == [2, 3, 4, 5, 6, 7]


def test_batches_of_a_git_import_start_small_and_double_up_to_their_bound():
    # The writer starts on a small batch while git log reads on; memory stays bounded by ``size``.
    batches = list(chunked(range(100), 30, first=4))

    assert [len(batch) for batch in batches] == [4, 8, 16, 30, 30, 12]
    assert [item for batch in batches for item in batch] == list(range(100))
    assert [len(batch) for batch in chunked(range(7), 3, first=10)] == [3, 3, 1]


def test_read_ahead_keeps_order_and_stays_bounded():
    produced = []

    def items():
        for n in range(100):
            produced.append(n)
            yield n

    with read_ahead(items(), ahead=2) as iterator:
        first = next(iterator)
        assert first == 0
        # The producer waits once it is `ahead` items in front (plus the one in its hands).
        threading.Event().wait(0.2)
        assert len(produced) <= 4
        assert [first, *iterator] == list(range(100))


def test_read_ahead_raises_the_producers_error_where_the_item_would_be():
    def items():
        yield 1
        yield 2
        raise ValueError("page 3 is bad")

    with read_ahead(items(), ahead=5) as iterator:
        assert next(iterator) == 1 and next(iterator) == 2
        with pytest.raises(ValueError, match="page 3 is bad"):
            next(iterator)


def test_leaving_early_stops_the_producer():
    def endless():
        n = 0
        while True:
            yield n
            n += 1

    with read_ahead(endless(), ahead=1, name="endless") as iterator:
        assert next(iterator) == 0
    assert not any(thread.name == "endless" for thread in threading.enumerate())


def test_leaving_early_closes_the_producers_generator_in_the_producers_thread():
    # What the generator opened for its thread (a database connection) is closed there, not left to the collector.
    closed_in = []

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed_in.append(threading.current_thread().name)

    with read_ahead(endless(), ahead=1, name="producer") as iterator:
        assert next(iterator) == 1
    assert closed_in == ["producer"]
