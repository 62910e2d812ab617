"""Recomputing, on every stored push, the comparisons it can change (``life.signals.pushes_stored``).

Runs in the transaction that stored the pushes, so the message is acked
only after the comparisons are stored too. What a push can change:

- a push to a tree's locales repository (a folder per locale): the locales
  whose folders it touched, in every tree over that repository;
- a push to a locale's repository in a tree's forest: that locale;
- a push to a tree's reference repository that touched the reference
  (the channel file, or the configurations and reference files it names):
  every locale of that tree.

A tree whose reference cannot be read is left as it was, with the reason in
the reference repository's SyncState and the log; the other trees go on.
A reference file that is gone (a channel that ended) archives its tree.
"""

import logging
import time

from django.db.models import Q

from life.models import SyncState, Tree
from life.sync import ERROR_LENGTH
from plumbing.text import storable

from . import computation, references

log = logging.getLogger(__name__)


def trees_over(repository):
    """The active computed trees that read ``repository`` (one query)."""
    over = Q(config_repository=repository) | Q(locales_repository=repository)
    if repository.forest_id is not None:
        over |= Q(l10n_id=repository.forest_id, locales_repository__isnull=True)
    return list(Tree.objects.filter(over, computed=True, archived=False).order_by("pk"))


def touched_locales(paths):
    """The locale codes of the top folders ``paths`` are in."""
    folders = {path.split("/", 1)[0] for path in paths if "/" in path}
    return sorted(folder for folder in folders if computation.is_locale_code(folder))


def on_pushes_stored(sender, repository, paths, tip, **kwargs):
    work = [(tree, locales) for tree in trees_over(repository)
            if (locales := _what_to_recompute(tree, repository, paths)) != []]
    if not work:
        return
    started = time.perf_counter()
    for (tree, _), outcome in zip(work, computation.recompute_trees(work), strict=True):
        if isinstance(outcome, references.ReferenceMissing):
            log.warning("tree %s: archived, its reference is gone (%s)", tree.code, outcome)
            Tree.objects.filter(pk=tree.pk).update(archived=True)
        elif isinstance(outcome, references.ReferenceInvalid):
            log.error("tree %s: not updated: %s", tree.code, outcome)
            _record_reference_error(tree, outcome)
        else:
            log.info("tree %s: %d locales compared after a push to %s (%d new runs, %d parsed)", tree.code,
                     len(outcome.compared), repository.name, outcome.runs, outcome.learnt.parsed)
    event = {"repository": repository.name, "trees": len(work), "compare_seconds": round(time.perf_counter() - started, 4)}
    log.info("comparisons after a push to %(repository)s: %(trees)d trees in %(compare_seconds).3fs", event,
             extra={"event": event})


def _what_to_recompute(tree, repository, paths):
    """None for every locale, else the codes (an empty list: nothing)."""
    if tree.config_repository_id == repository.pk:
        watched = _watched(tree)
        if watched is None or watched & paths:
            return None
    if tree.locales_repository_id == repository.pk:
        return touched_locales(paths)
    if tree.locales_repository_id is None and repository.forest_id == tree.l10n_id and repository.locale_id:
        return [repository.locale.code]
    return []


def _watched(tree):
    """The reference repository paths the tree's reference depends on, as of its last stored tip (None
    when unknown: then every push to it recomputes)."""
    if tree.config_path.endswith(".json"):
        return frozenset([tree.config_path])
    revision = computation.current_tip(tree.config_repository)
    try:
        return references.load(tree.config_repository, revision, tree.config_path).watched if revision else None
    except references.ReferenceInvalid:
        return None


def _record_reference_error(tree, error):
    reason = storable(f"tree {tree.code}: reference not usable: {error}"[:ERROR_LENGTH])
    if not SyncState.objects.filter(repository_id=tree.config_repository_id).update(last_error=reason):
        SyncState.objects.get_or_create(repository_id=tree.config_repository_id, defaults={"last_error": reason})
