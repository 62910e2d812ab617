"""Storing an ElmoReport: runs, their revisions, and the active run per tree and locale.

Runs inside the caller's transaction, in a number of queries that does not
grow with the number of comparisons (bulk statements, chunked by the
database's limits). Idempotent: a run exists once per (task, run, tree,
locale); revisions not seen yet become placeholder changesets.
"""

import hashlib
import logging
import re
from dataclasses import dataclass

from life.models import Locale, Repository, Tree
from life.store import ensure_placeholders
from plumbing.bulk import chunk_size, chunked, ids_by
from plumbing.errors import PermanentError, TransientError
from plumbing.urls import enclosing_urls

from .models import STORED_COUNTS, Active, Run

log = logging.getLogger(__name__)


@dataclass
class StoredRuns:
    created: int = 0
    activated: int = 0


def config_repository(url):
    """The known Repository a report's configuration lives in; never created from a message.

    ``url`` is a repository's URL, or (a task's ``metadata.source``) the URL of a file in one:
    ``https://hg.mozilla.org/<repo>/file/<rev>/<path>`` (or ``raw-file``, ``rev``),
    ``https://github.com/<owner>/<repo>/blob/<sha>/<path>`` (or ``tree``, ``raw``). Mercurial
    repository names have several segments, so the longest known repository URL above it wins.
    """
    candidates = enclosing_urls(url)
    found = {}
    for pk, known_url in Repository.objects.filter(url__in=candidates).order_by("pk").values_list("pk", "url"):
        found.setdefault(known_url, pk)
    pk = next((found[candidate] for candidate in candidates if candidate in found), None)
    if pk is None:
        raise PermanentError(f"configuration repository {url[:300]} is not a known repository")
    return Repository.objects.get(pk=pk)


MAX_TREE_CODE = 50  # Tree.code's max_length


def _tree_codes(repository, config_path):
    """The codes a new tree may take, in order of preference.

    The plain code names the repository and the configuration's file stem
    (``gecko-strings-browser``); when another tree has it, the plain code
    gets a short hash of the repository's name and the configuration's path,
    which is the same in every run.
    """
    stem = config_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    plain = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{repository.name.rsplit('/', 1)[-1]}-{stem}")[:MAX_TREE_CODE]
    digest = hashlib.sha256(f"{repository.name}\n{config_path}".encode()).hexdigest()
    return [plain] + [f"{plain[: MAX_TREE_CODE - 1 - size]}-{digest[:size]}" for size in (8, 16, 32)]


def _assign_codes(repository, paths, taken):
    """{path: code} for new trees of ``paths``; configurations in sorted order pick the first free code."""
    codes = {}
    for path in sorted(paths):
        code = next((c for c in _tree_codes(repository, path) if c not in taken), None)
        if code is None:
            raise PermanentError(f"no free tree code for {repository.name} {path}")
        codes[path] = code
        taken.add(code)
    return codes


def _trees_of(repository, paths):
    trees = {}
    for chunk in chunked(paths, chunk_size()):
        trees.update((t.config_path, t) for t in Tree.objects.filter(config_repository=repository,
                                                                     config_path__in=chunk))
    return trees


def _taken_codes(codes):
    taken = set()
    for chunk in chunked(codes, chunk_size()):
        taken.update(Tree.objects.filter(code__in=chunk).values_list("code", flat=True))
    return taken


def trees_for(repository, config_paths):
    """{config path: Tree}, creating the trees not known yet, in a number of queries that does not
    grow with the number of configurations.

    A parallel worker may create the same trees (its rows are found), or take
    a code meant here (the configuration then takes its next code).
    """
    wanted = set(config_paths)
    trees = _trees_of(repository, wanted)
    for _ in range(3):
        new = wanted - trees.keys()
        if not new:
            break
        candidates = {code for path in new for code in _tree_codes(repository, path)}
        codes = _assign_codes(repository, new, _taken_codes(candidates))
        Tree.objects.bulk_create(
            [Tree(code=codes[path], config_repository=repository, config_path=path) for path in sorted(new)],
            ignore_conflicts=True,
            batch_size=chunk_size(3),
        )
        created = _trees_of(repository, new)
        Tree.repositories.through.objects.bulk_create(
            [Tree.repositories.through(tree_id=tree.pk, repository_id=repository.pk) for tree in created.values()],
            ignore_conflicts=True,
            batch_size=chunk_size(2),
        )
        for path, tree in sorted(created.items()):
            log.info("new tree %s for %s %s", tree.code, repository.name, path)
        trees.update(created)
    if wanted - trees.keys():
        raise TransientError(f"could not create the trees of {repository.name}: their codes kept being taken")
    return trees


def _newer(run, than):
    return (run.srctime, run.pk) > (than.srctime, than.pk)


def store_report(report, *, root_url, task_id, run_id, srctime):
    repository = config_repository(report.repository)
    trees = trees_for(repository, [c.config for c in report.comparisons])
    locales = ids_by(Locale, "code", (c.locale for c in report.comparisons))
    revision_ids = ensure_placeholders({rev for c in report.comparisons for _, rev in c.revisions})

    def key(comparison):
        return trees[comparison.config].pk, locales[comparison.locale]

    existing = set(Run.objects.filter(task_id=task_id, run_id=run_id).values_list("tree_id", "locale_id"))
    Run.objects.bulk_create(
        [
            Run(
                tree_id=key(c)[0],
                locale_id=key(c)[1],
                **{name: c.counts[name] for name in STORED_COUNTS},
                total=c.total,
                completion=c.completion,
                srctime=srctime,
                root_url=root_url,
                task_id=task_id,
                run_id=run_id,
                artifact=c.artifact,
            )
            for c in report.comparisons
            if key(c) not in existing
        ],
        ignore_conflicts=True,
        batch_size=chunk_size(25),
    )
    runs = {(r.tree_id, r.locale_id): r for r in Run.objects.filter(task_id=task_id, run_id=run_id)}
    RevisionLink = Run.revisions.through
    Run.revisions.through.objects.bulk_create(
        [RevisionLink(run_id=runs[key(c)].pk, changeset_id=revision_ids[rev]) for c in report.comparisons for _, rev in c.revisions],
        ignore_conflicts=True,
        batch_size=chunk_size(2),
    )
    return StoredRuns(
        created=len(set(runs) - existing),
        activated=activate_runs([runs[key(c)] for c in report.comparisons]),
    )


def _lock_active(keys):
    """{(tree id, locale id): Active} for those of ``keys`` that have one, locked for update.

    Only the Active rows are read: with a join (select_related), PostgreSQL
    re-checks a row another worker has just re-pointed against the old run
    row and silently drops it from the result.
    """
    if not keys:
        return {}
    rows = (
        Active.objects.select_for_update()
        .filter(tree_id__in={tree for tree, _ in keys}, locale_id__in={locale for _, locale in keys})
        .order_by("tree_id", "locale_id")  # one lock order for every worker: no deadlock
    )
    return {(a.tree_id, a.locale_id): a for a in rows if (a.tree_id, a.locale_id) in keys}


def activate_runs(runs):
    """Make each run the active one of its tree and locale, unless a newer one already is."""
    def key(run):
        return run.tree_id, run.locale_id

    # Lock before inserting: on MySQL an insert that finds the row takes a shared lock,
    # and two workers upgrading theirs to update it would deadlock.
    current = _lock_active({key(r) for r in runs})
    first = sorted((r for r in runs if key(r) not in current), key=key)
    if first:
        Active.objects.bulk_create([Active(tree_id=r.tree_id, locale_id=r.locale_id, run=r) for r in first],
                                   ignore_conflicts=True)
        current.update(_lock_active({key(r) for r in first}))
    # Read once the locks are held: these are the runs the rows point to now.
    active_runs = Run.objects.only("srctime").in_bulk({a.run_id for a in current.values()})
    changed = []
    for run in runs:
        active = current[key(run)]
        if active.run_id != run.pk and _newer(run, active_runs[active.run_id]):
            active.run = run
            changed.append(active)
    if changed:
        Active.objects.bulk_update(changed, ["run"], batch_size=chunk_size(3))
    return sum(1 for run in runs if current[key(run)].run_id == run.pk)
