"""Storing computed comparisons: a Run when a result changed, else only the check on Active.

Runs inside the caller's transaction (``computation.recompute``, under the
tree's row lock), in a number of queries that does not grow with the number
of locales. Active follows the compared revisions' order in their
repositories (push ids), never arrival: a comparison of older tips than the
ones already checked is dropped. The active run's per-file detail is kept
in RunFile rows; a run that stops being active loses them.
"""

import logging
from dataclasses import dataclass

from django.db.models import Min, OuterRef, Subquery
from django.utils import timezone

from life.models import Locale, Push
from life.store import ensure_placeholders
from plumbing import bulk

from . import parsing
from .models import COMPUTED, Active, Run, RunFile

log = logging.getLogger(__name__)


@dataclass
class Stored:
    runs: int = 0  # Runs added
    checked: int = 0  # comparisons that changed nothing but the check
    stale: int = 0  # comparisons of revisions older than the ones already checked


def _lock_active(keys):
    """{(tree id, locale id): Active} for those of ``keys`` (all of one tree, whose row the caller has
    locked) that have one, locked for update by primary key.

    Found first without locks, then locked by id: a locking scan of an index over (locale) would touch,
    on InnoDB, other trees' rows that other workers hold, and deadlock with them.
    """
    if not keys:
        return {}
    tree_ids = {tree for tree, _ in keys}
    pks = list(Active.objects.filter(tree_id__in=tree_ids, locale_id__in={locale for _, locale in keys})
               .values_list("pk", flat=True))
    rows = Active.objects.select_for_update().filter(pk__in=pks).order_by("pk")
    return {(a.tree_id, a.locale_id): a for a in rows if (a.tree_id, a.locale_id) in keys}


def vanished_locales(tree, present, among=None):
    """Codes of the locales with a result in ``tree`` that are not in ``present``."""
    actives = Active.objects.filter(tree=tree)
    if among is not None:
        actives = actives.filter(locale__code__in=among)
    return sorted(set(actives.values_list("locale__code", flat=True)) - set(present))


def _positions(pairs):
    """{(repository id, changeset id): (push id, push date)} of the first push holding each."""
    positions = {}
    by_repository = {}
    for repository_id, changeset_id in pairs:
        by_repository.setdefault(repository_id, set()).add(changeset_id)
    for repository_id, changesets in by_repository.items():
        rows = (Push.changesets.through.objects
                .filter(push__repository_id=repository_id, changeset_id__in=changesets)
                .values("changeset_id").annotate(push_id=Min("push__push_id"), date=Min("push__push_date")))
        for row in rows:
            positions[(repository_id, row["changeset_id"])] = (row["push_id"], row["date"])
    return positions


@dataclass(frozen=True)
class TreeComparisons:
    """The comparisons of some of ``tree``'s locales ([(LocaleSource, Comparison)]) against its reference
    at ``reference_revision``."""

    tree: object
    reference_repository: object
    reference_revision: str
    compared: list


def store(batches):
    """Store the ``batches`` (TreeComparisons, of distinct trees): {tree id: Stored}.

    The trees of one push (six channels over one locales repository) are stored together: the queries
    do not grow with the trees nor with the locales.
    """
    stored = {batch.tree.pk: Stored() for batch in batches}
    batches = [batch for batch in batches if batch.compared]
    if not batches:
        return stored
    now = timezone.now()
    locale_ids = bulk.ids_by(Locale, "code", {source.code for batch in batches for source, _ in batch.compared})
    revision_ids = ensure_placeholders({batch.reference_revision for batch in batches}
                                       | {source.revision for batch in batches for source, _ in batch.compared})
    current = _lock_active({(batch.tree.pk, locale_ids[source.code])
                            for batch in batches for source, _ in batch.compared})
    runs = Run.objects.only("digest", "reference_revision_id", "locale_revision_id").in_bulk(
        {active.run_id for active in current.values()})
    # Whose order is asked: each comparison's revisions and what each Active last checked.
    pairs = set()
    checked = {}  # {(tree id, locale id): (reference changeset id, locale changeset id)}
    for batch in batches:
        reference_id = revision_ids[batch.reference_revision]
        pairs.add((batch.reference_repository.pk, reference_id))
        for source, _ in batch.compared:
            key = (batch.tree.pk, locale_ids[source.code])
            pairs.add((source.repository.pk, revision_ids[source.revision]))
            active = current.get(key)
            if active is not None:
                run = runs[active.run_id]
                checked[key] = (active.checked_reference_id or run.reference_revision_id,
                                active.checked_locale_id or run.locale_revision_id)
                pairs.update({(batch.reference_repository.pk, checked[key][0]),
                              (source.repository.pk, checked[key][1])})
    positions = _positions(pair for pair in pairs if pair[1] is not None)

    def position(repository_id, changeset_id):
        return positions.get((repository_id, changeset_id), (0, None))[0]

    new_runs = []
    rechecked = {}  # {(reference changeset id, locale changeset id): [Active ids]}
    for batch in batches:
        tree, reference_repository = batch.tree, batch.reference_repository
        reference_id = revision_ids[batch.reference_revision]
        for source, comparison in batch.compared:
            key = (tree.pk, locale_ids[source.code])
            locale_id = revision_ids[source.revision]
            active = current.get(key)
            if active is not None:
                old_reference, old_locale = checked[key]
                if (position(reference_repository.pk, reference_id) < position(reference_repository.pk, old_reference)
                        or position(source.repository.pk, locale_id) < position(source.repository.pk, old_locale)):
                    stored[tree.pk].stale += 1
                    log.info("tree %s %s: a comparison of older revisions is dropped", tree.code, source.code)
                    continue
                if runs[active.run_id].digest == comparison.digest:
                    rechecked.setdefault((reference_id, locale_id), []).append(active.pk)
                    stored[tree.pk].checked += 1
                    continue
            dates = [positions.get((reference_repository.pk, reference_id), (0, None))[1],
                     positions.get((source.repository.pk, locale_id), (0, None))[1]]
            srctime = max((date for date in dates if date is not None), default=now)
            new_runs.append((key, comparison, Run(
                tree_id=tree.pk, locale_id=key[1], origin=COMPUTED, computed_by=parsing.PARSER,
                reference_revision_id=reference_id, locale_revision_id=locale_id,
                total=comparison.total, changed=comparison.changed, missing=comparison.missing,
                errors=comparison.errors, obsolete=comparison.obsolete, completion=comparison.completion,
                digest=comparison.digest, srctime=srctime,
            )))
            stored[tree.pk].runs += 1
    _recheck(rechecked, now)
    if new_runs:
        _store_runs(new_runs, current, now)
    return stored


def _recheck(actives, now):
    """Mark the Active ids of ``actives`` ({(reference id, locale id): [ids]}) checked at those revisions:
    one query per pair (a push's locales share their tips)."""
    for (reference_id, locale_id), ids in actives.items():
        for chunk in bulk.chunked(ids, bulk.chunk_size()):
            Active.objects.filter(pk__in=chunk).update(checked_reference_id=reference_id,
                                                       checked_locale_id=locale_id, checked=now)


def _store_runs(new_runs, current, now):
    # The same revisions compared again (a new parser, a recomputation): that run is updated.
    Run.objects.bulk_create([run for _, _, run in new_runs], ignore_conflicts=True, batch_size=bulk.chunk_size(25))
    found = {}
    for row in Run.objects.filter(tree_id__in={run.tree_id for *_, run in new_runs},
                                  locale_id__in={run.locale_id for *_, run in new_runs},
                                  reference_revision_id__in={run.reference_revision_id for *_, run in new_runs},
                                  origin=COMPUTED):
        found[(row.tree_id, row.locale_id, row.reference_revision_id, row.locale_revision_id)] = row
    rows = []
    for key, comparison, run in new_runs:
        row = found[(run.tree_id, run.locale_id, run.reference_revision_id, run.locale_revision_id)]
        if row.digest != run.digest:
            for name in ("total", "changed", "missing", "errors", "obsolete", "completion", "digest", "computed_by"):
                setattr(row, name, getattr(run, name))
            row.save()
        rows.append((key, comparison, row))
    Run.revisions.through.objects.bulk_create(
        [Run.revisions.through(run_id=row.pk, changeset_id=changeset)
         for _, _, row in rows for changeset in {row.reference_revision_id, row.locale_revision_id}],
        ignore_conflicts=True, batch_size=bulk.chunk_size(2))
    # Active rows: made for new locales, re-pointed for the others; per-file detail follows the active run.
    missing = [Active(tree_id=key[0], locale_id=key[1], run=row, checked_reference_id=row.reference_revision_id,
                      checked_locale_id=row.locale_revision_id, checked=now)
               for key, _, row in rows if key not in current]
    if missing:
        Active.objects.bulk_create(missing, ignore_conflicts=True)
        current.update(_lock_active({key for key, _, _ in rows if key not in current}))
    retired = [current[key].run_id for key, _, row in rows if current[key].run_id != row.pk]
    repointed = {}
    for key, _, row in rows:
        repointed.setdefault((row.reference_revision_id, row.locale_revision_id), []).append(current[key].pk)
    _recheck(repointed, now)
    # Each re-pointed Active takes the run of what it now says it checked (unique per tree, locale and
    # revisions): one query, where a CASE per row would cost Django as much again to build.
    run_of_checked = Run.objects.filter(
        tree_id=OuterRef("tree_id"), locale_id=OuterRef("locale_id"), origin=COMPUTED,
        reference_revision_id=OuterRef("checked_reference_id"), locale_revision_id=OuterRef("checked_locale_id"),
    ).values("pk")[:1]
    for chunk in bulk.chunked([active_id for ids in repointed.values() for active_id in ids], bulk.chunk_size()):
        Active.objects.filter(pk__in=chunk).update(run_id=Subquery(run_of_checked))
    # Deleted by id, found without locks: see _lock_active.
    stale_files = bulk.select_in(RunFile, ["id"], "run", retired + [row.pk for *_, row in rows])
    bulk.delete_ids(RunFile, [pk for pk, in stale_files])
    # The bulk of a reference push's writes (every locale's missing ids, per file): appended, not inserted.
    bulk.append_rows(RunFile, ["run", "path", "missing", "missing_file", "error"], [
        (row.pk, f.path, f.missing_json, f.missing_file, f.error)
        for _, comparison, row in rows for f in comparison.files
    ])
