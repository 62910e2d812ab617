"""What life tells other apps, without knowing them (life never imports l10n).

``pushes_stored`` is sent inside the transaction that stored pushes of a
repository, by every path that stores them (a message, the backfill,
``reprocess-repo``, ``track``), with:

- ``repository``: the Repository;
- ``paths``: the file paths the stored pushes changed (a frozenset);
- ``tip``: the repository's newest stored revision after them (40 hex).

A receiver's work commits or rolls back with the pushes, so the message
that caused them is acked only after it. A receiver that raises fails the
ingestion.
"""

from django.dispatch import Signal

pushes_stored = Signal()
