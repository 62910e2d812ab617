"""Computing a computed tree's comparisons from its repositories' stored tips.

``recompute(tree, locales)`` compares the reference at its repository's
current tip with each locale at its current tip, under a row lock on the
tree: whichever worker comes second sees what the first committed and
compares the newest of both (two pushes to one locale, or a locale push
racing a reference push, end with the comparison of both newest tips).
``recompute_trees`` does it for the trees one push concerns (six channels
over one locales repository) at the price of one: tips read once, results
stored together.

Locales are taken a batch at a time: their files are listed from the clone
(no content read), the contents never seen are parsed once
(``l10n.parsing``), each locale is compared (``l10n.comparison``, pure) and
the results stored (``l10n.results``).
"""

import logging
from dataclasses import dataclass, field

from django.db import transaction

from life.kinds import for_repository
from life.models import Changeset, Push, Repository, SyncState, Tree
from plumbing.errors import PermanentError
from plumbing.memo import Memo
from plumbing.names import validate_locale_code

from . import parsing, references, results
from .comparison import compare

log = logging.getLogger(__name__)

# Locales compared, and stored, together: the queries of a recompute do not grow with the locales up to
# this many (Firefox has 156), and neither does memory beyond it.
LOCALES_PER_BATCH = 200
# A revision's files never change: the trees of one push (six channels over one locales repository)
# list them once, and the next push to another locale reuses the reference's listing.
listings = Memo(16)


@dataclass
class Recomputed:
    """What one ``recompute`` did."""

    compared: list = field(default_factory=list)  # locale codes compared
    runs: int = 0  # Runs added (numbers changed)
    checked: int = 0  # comparisons that changed no number
    vanished: list = field(default_factory=list)  # locale codes whose folder or repository is gone
    learnt: parsing.Learnt = field(default_factory=parsing.Learnt)


@dataclass(frozen=True)
class LocaleSource:
    """Where a locale's files are: a repository at a revision, under a folder ("" for a repository per locale)."""

    code: str
    repository: Repository
    revision: str
    folder: str = ""
    files: dict = field(default_factory=dict, hash=False, compare=False)  # {path in the locale: content id}


# --- tips -----------------------------------------------------------------------


def current_tip(repository):
    """The newest stored revision of ``repository`` (40 hex), or None before its first push.

    git: the tracked branch's commit up to which everything is stored. Mercurial: the head of the
    newest push (its changeset no other changeset of the push descends from).
    """
    if repository.kind == Repository.GIT:
        return SyncState.objects.filter(repository=repository).values_list("stored_revision", flat=True).first() or None
    push = Push.objects.filter(repository=repository).order_by("-push_id").first()
    if push is None:
        return None
    revisions = dict(push.changesets.values_list("id", "revision"))
    parents = set(Changeset.parents.through.objects.filter(from_changeset_id__in=revisions)
                  .values_list("to_changeset_id", flat=True))
    heads = sorted(revision for pk, revision in revisions.items() if pk not in parents)
    return heads[-1] if heads else None


# --- locales ----------------------------------------------------------------------


def is_locale_code(name):
    if name.startswith((".", "_")):
        return False
    try:
        validate_locale_code(name)
    except PermanentError:
        return False
    return True


def locale_sources(tree, codes=None, locales_repository=None, tip=current_tip):
    """(LocaleSources of ``codes`` (default: every locale the tree has now), codes that have none).
    ``locales_repository``: the tree's, when the caller has it; ``tip(repository)``: its current tip."""
    wanted = None if codes is None else set(codes)
    if tree.locales_repository_id is not None:
        repository = locales_repository or tree.locales_repository
        revision = tip(repository)
        if revision is None:
            return [], sorted(wanted or ())
        if wanted is None:
            listing = list_files(repository, revision)
        else:
            listing = [entry for code in sorted(wanted) for entry in list_files(repository, revision, code)]
        by_code = {}
        folders = {}  # {folder: whether it is a wanted locale}, asked once per folder
        for path, content_id in listing:
            folder, _, rest = path.partition("/")
            if folder not in folders:
                folders[folder] = folder in wanted if wanted is not None else is_locale_code(folder)
            if rest and folders[folder]:
                by_code.setdefault(folder, {})[rest] = content_id
        sources = [LocaleSource(code, repository, revision, f"{code}/", by_code[code]) for code in sorted(by_code)]
        return sources, sorted((wanted or set()) - by_code.keys())
    if tree.l10n_id is None:
        raise PermanentError(f"tree {tree.code} has neither a locales repository nor a forest")
    repositories = Repository.objects.filter(forest_id=tree.l10n_id, archived=False, locale__isnull=False)
    if wanted is not None:
        repositories = repositories.filter(locale__code__in=wanted)
    sources = []
    for repository in repositories.select_related("locale").order_by("locale__code"):
        revision = tip(repository)
        if revision is not None:
            files = list_files(repository, revision)
            sources.append(LocaleSource(repository.locale.code, repository, revision, "", dict(files)))
    return sources, sorted((wanted or set()) - {source.code for source in sources})


def list_files(repository, revision, prefix=""):
    """[(path, content id)] of ``repository``'s files under ``prefix`` at ``revision``, listed once."""
    key = (repository.pk, revision, prefix)
    listing = listings.get(key)
    if listing is None:
        listing = tuple(for_repository(repository).list_files(repository, revision, prefix))
        listings.put(key, listing)
    return listing


# --- recomputing -------------------------------------------------------------------


def recompute(tree, locales=None, progress=None):
    """Compare ``locales`` (codes; default: all) of the computed ``tree`` at the current tips, and store
    what changed. Raises ReferenceInvalid (ReferenceMissing) when the reference cannot be read.
    ``progress(done, total)`` counts locales."""
    (outcome,) = recompute_trees([(tree, locales)], progress)
    if isinstance(outcome, references.ReferenceInvalid):
        raise outcome
    return outcome


@dataclass
class _Plan:
    tree: Tree
    reference_repository: Repository
    reference_revision: str
    reference: references.Reference
    sources: list
    result: Recomputed


def recompute_trees(work, progress=None):
    """Recompute each (tree, locale codes or None for all) of ``work`` in one unit of work: the trees
    locked in one order, each repository's tip read once, the results of every tree stored together.
    Returns, in ``work``'s order, a Recomputed per tree, or the ReferenceInvalid that left it as it was
    (the other trees go on). ``progress(done, total)`` counts locales over all the trees."""
    outcomes, plans = [], []
    with transaction.atomic():
        # Locked alone: PostgreSQL cannot lock the nullable side of a join.
        trees = {tree.pk: tree for tree in Tree.objects.select_for_update()
                 .filter(pk__in=[tree.pk for tree, _ in work]).order_by("pk")}
        repositories = Repository.objects.in_bulk({pk for tree in trees.values()
                                                   for pk in (tree.config_repository_id, tree.locales_repository_id)})
        tips = {}

        def tip(repository):
            if repository.pk not in tips:
                tips[repository.pk] = current_tip(repository)
            return tips[repository.pk]

        for given, locales in work:
            tree = trees.get(given.pk)
            result = Recomputed()
            if tree is None:  # deleted meanwhile
                outcomes.append(result)
                continue
            try:
                plan = _plan(tree, locales, repositories, tip, result)
            except references.ReferenceInvalid as error:
                outcomes.append(error)
                continue
            outcomes.append(result)
            if plan is not None:
                plans.append(plan)
        total = sum(len(plan.sources) for plan in plans)
        done = 0
        for start in range(0, max((len(plan.sources) for plan in plans), default=0), LOCALES_PER_BATCH):
            batches = []
            for plan in plans:
                batch = plan.sources[start:start + LOCALES_PER_BATCH]
                compared = _compare_batch(plan.reference, batch, plan.result.learnt)
                batches.append(results.TreeComparisons(plan.tree, plan.reference_repository, plan.reference_revision,
                                                       compared))
                plan.result.compared += [source.code for source in batch]
                done += len(batch)
            for plan, stored in zip(plans, results.store(batches).values(), strict=True):
                plan.result.runs += stored.runs
                plan.result.checked += stored.checked
            if progress:
                progress(done, total)
    return outcomes


def _plan(tree, locales, repositories, tip, result):
    """What recomputing ``tree`` compares (None: nothing yet); ReferenceInvalid if its reference cannot be read."""
    reference_repository = repositories.get(tree.config_repository_id)
    reference_revision = tip(reference_repository) if reference_repository else None
    if reference_revision is None:
        log.info("tree %s: its reference has no stored push yet", tree.code)
        return None
    reference = references.load(reference_repository, reference_revision, tree.config_path)
    sources, result.vanished = locale_sources(tree, locales, repositories.get(tree.locales_repository_id), tip)
    if locales is None:
        result.vanished = results.vanished_locales(tree, {source.code for source in sources})
    for code in result.vanished:
        log.warning("tree %s: locale %s is gone from its locales; its history is kept", tree.code, code)
    return _Plan(tree, reference_repository, reference_revision, reference, sources, result)


def _compare_batch(reference, sources, learnt):
    """[(LocaleSource, Comparison)] for ``sources``, parsing each content not seen yet once."""
    listed = []
    wanted = {}  # {repository id: (repository, [(path in the repository, content id)])}
    for source in sources:
        messages = reference.for_locale(source.code)
        present = source.files
        listed.append((source, messages, present))
        entries = wanted.setdefault(source.repository.pk, (source.repository, []))[1]
        entries += [(source.folder + path, present[path]) for path, ids in messages.items() if ids and path in present]
    parsed = {}
    for repository, entries in wanted.values():
        parsed.update(parsing.learn(repository, entries, learnt))
    compared = []
    for source, messages, present in listed:
        found = {path: parsed[parsing.cache_key(source.folder + path, content_id)]
                 for path, ids in messages.items() if ids and (content_id := present.get(path)) is not None}
        compared.append((source, compare(messages, found)))
    return compared
