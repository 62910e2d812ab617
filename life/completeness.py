"""Is a repository's stored history what upstream says it is? The proof that lets a reprocess write nothing.

A push is proven when its row matches json-pushes (same id, user and date,
the same set of changesets) and every one of its changesets is stored
complete (not a placeholder) and linked to the repository. A repository is
proven when all its pushes are, and every changeset of its clone is stored
complete and linked to it.

Why the changesets need not be re-read from the clone: a changeset row is
content-addressed by its revision (the hash covers user, description,
branch, parents and files), and a row stops being a placeholder only in the
transaction that also writes its files and parents (``store.store_changesets``);
nothing removes those links afterwards. So a complete row for a revision
holds exactly what the clone would give again.

The schema stores a push's changesets as a set, not a list: their order is
the DAG order of the changesets themselves, which parents already record.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredPush:
    user: str
    date: int  # seconds since the epoch, UTC
    changesets: frozenset[str]
    # Every changeset linked to the push is complete and linked to the repository.
    sound: bool


def unproven(pushes, stored):
    """The PushRecords among ``pushes`` that ``stored`` ({push id: StoredPush}) does not hold exactly."""
    return [push for push in pushes if not _holds(stored.get(push.push_id), push)]


def _holds(stored, push):
    return (
        stored is not None
        and stored.sound
        and stored.user == push.user
        and stored.date == push.date
        and stored.changesets == frozenset(push.changesets)
    )
