"""Computing a computed tree's comparisons from its repositories' stored tips.

``recompute(tree, locales)`` compares the reference at its repository's
current tip with each locale at its current tip, under a row lock on the
tree: whichever worker comes second sees what the first committed and
compares the newest of both (two pushes to one locale, or a locale push
racing a reference push, end with the comparison of both newest tips).

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


def locale_sources(tree, codes=None):
    """(LocaleSources of ``codes`` (default: every locale the tree has now), codes that have none)."""
    wanted = None if codes is None else set(codes)
    if tree.locales_repository_id is not None:
        repository = tree.locales_repository
        tip = current_tip(repository)
        if tip is None:
            return [], sorted(wanted or ())
        if wanted is None:
            listing = list_files(repository, tip)
        else:
            listing = [entry for code in sorted(wanted) for entry in list_files(repository, tip, code)]
        by_code = {}
        for path, content_id in listing:
            folder, _, rest = path.partition("/")
            if rest and (folder in wanted if wanted is not None else is_locale_code(folder)):
                by_code.setdefault(folder, {})[rest] = content_id
        sources = [LocaleSource(code, repository, tip, f"{code}/", by_code[code]) for code in sorted(by_code)]
        return sources, sorted((wanted or set()) - by_code.keys())
    if tree.l10n_id is None:
        raise PermanentError(f"tree {tree.code} has neither a locales repository nor a forest")
    repositories = Repository.objects.filter(forest_id=tree.l10n_id, archived=False, locale__isnull=False)
    if wanted is not None:
        repositories = repositories.filter(locale__code__in=wanted)
    sources = []
    for repository in repositories.select_related("locale").order_by("locale__code"):
        tip = current_tip(repository)
        if tip is not None:
            files = list_files(repository, tip)
            sources.append(LocaleSource(repository.locale.code, repository, tip, "", dict(files)))
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
    result = Recomputed()
    with transaction.atomic():
        # Locked alone: PostgreSQL cannot lock the nullable side of a join.
        tree = Tree.objects.select_for_update().get(pk=tree.pk)
        reference_repository = tree.config_repository
        reference_revision = current_tip(reference_repository) if reference_repository else None
        if reference_revision is None:
            log.info("tree %s: its reference has no stored push yet", tree.code)
            return result
        reference = references.load(reference_repository, reference_revision, tree.config_path)
        sources, result.vanished = locale_sources(tree, locales)
        if locales is None:
            result.vanished = results.vanished_locales(tree, {source.code for source in sources})
        for code in result.vanished:
            log.warning("tree %s: locale %s is gone from its locales; its history is kept", tree.code, code)
        for start in range(0, len(sources), LOCALES_PER_BATCH):
            batch = sources[start:start + LOCALES_PER_BATCH]
            compared = _compare_batch(reference, batch, result.learnt)
            stored = results.store(tree, reference_repository, reference_revision, compared)
            result.runs += stored.runs
            result.checked += stored.checked
            result.compared += [source.code for source in batch]
            if progress:
                progress(len(result.compared), len(sources))
    return result


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
        found = {path: parsed[parsing.cache_key(source.folder + path, present[path])]
                 for path, ids in messages.items() if ids and path in present}
        compared.append((source, compare(messages, found)))
    return compared
