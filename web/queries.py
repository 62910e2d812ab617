"""What each page shows, read from the shared database.

Every function answers in a fixed number of queries, whatever the number of
locales, runs or pushes (the tests count them at two sizes), and returns plain
JSON-ready values: the HTML pages and their JSON twins show the same data.
Nothing here writes.
"""

import base64
import binascii
import statistics
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone

from l10n.models import COMPUTED, TASKCLUSTER, Active, Run, RunFile
from life.models import Changeset, File, Locale, Push, Repository, SyncState, Tree
from plumbing.urls import mask_secrets
from worker.models import DeadLetter

from .upstream import commit_url, file_url

TREND_DAYS = 90
# A locale's chart shows its newest runs, older ones a page away (?cursor=): a page costs the same whatever
# the history behind it. 30 runs: months of history at one run every few days.
RUNS_PER_PAGE = 30
PUSHES_PER_PAGE = 50
# A push log's path filter matching up to this many files reads from the files to their pushes.
RARE_PATH_FILES = 500
NEWEST_DEAD_LETTERS = 10
# What a locale's row is sorted by: ?sort=<key>, ties by locale code.
TREE_SORTS = {
    "locale": "locale__code",
    "completion": "run__completion",
    "translated": "run__changed",
    "missing": "run__missing",
    "errors": "run__errors",
    "total": "run__total",
    "changed": "run__srctime",
}


class BadRequest(ValueError):
    """A query parameter that means nothing (an unknown sort, a forged cursor)."""


def _newest(*moments):
    moments = [moment for moment in moments if moment is not None]
    return max(moments) if moments else None


def _revision(repository, revision):
    """A compared or pushed revision and its upstream page; ``repository`` a Repository or None."""
    if not revision:
        return None
    kind, url, name = (repository.kind, repository.url, repository.name) if repository else (None, None, None)
    return {"repository": name, "revision": revision, "url": commit_url(kind, url, revision) if url else None}


def _tree_summary(tree):
    return {
        "code": tree.code,
        "computed": tree.computed,
        "archived": tree.archived,
        "reference_repository": tree.config_repository.name if tree.config_repository else None,
        "reference_path": tree.config_path,
    }


# --- / ----------------------------------------------------------------------------------------


def _actives(**filters):
    """The active runs' rows, read by primary key: a join would make the database walk every run."""
    actives = list(Active.objects.filter(**filters).values("tree_id", "locale_id", "checked", "run_id",
                                                             "checked_reference_id"))
    runs = {run["id"]: run for run in Run.objects.filter(pk__in=[a["run_id"] for a in actives]).values(
        "id", "origin", "completion", "srctime", "created", "reference_revision_id")}
    for active in actives:
        active["run"] = runs[active["run_id"]]
    return actives


def overview():
    trees = list(Tree.objects.select_related("config_repository").order_by("archived", "code"))
    by_tree = defaultdict(list)
    for active in _actives():
        by_tree[active["tree_id"]].append(active)
    newest = {tree_id: max(rows, key=lambda row: (row["checked"] or row["run"]["srctime"], row["run"]["srctime"]))
              for tree_id, rows in by_tree.items()}
    revisions = dict(Changeset.objects.filter(pk__in={
        row["checked_reference_id"] or row["run"]["reference_revision_id"] for row in newest.values()
    } - {None}).values_list("id", "revision"))
    # A task's run names its revisions only among `revisions`: the reference's is the config repository's.
    published = defaultdict(dict)
    tasks = [row["run_id"] for row in newest.values() if row["run"]["origin"] == TASKCLUSTER]
    if tasks:
        for run_id, revision, repository_id in Run.revisions.through.objects.filter(run_id__in=tasks).values_list(
                "run_id", "changeset__revision", "changeset__repositories"):
            published[run_id][repository_id] = revision
    result = []
    for tree in trees:
        rows = by_tree.get(tree.pk, [])
        completions = [row["run"]["completion"] for row in rows]
        reference = None
        if tree.pk in newest:
            row = newest[tree.pk]
            revision = (revisions.get(row["checked_reference_id"] or row["run"]["reference_revision_id"])
                        or published[row["run_id"]].get(tree.config_repository_id))
            reference = _revision(tree.config_repository, revision)
        result.append({
            **_tree_summary(tree),
            "locales": len(rows),
            "median_completion": statistics.median(completions) if completions else None,
            "complete": sum(1 for value in completions if value >= 100),
            "below_half": sum(1 for value in completions if value < 50),
            "last_changed": max((row["run"]["srctime"] for row in rows), default=None),
            "last_checked": max((row["checked"] for row in rows if row["checked"]), default=None),
            "reference_revision": reference,
        })
    return {"trees": result}, _newest(*(t["last_changed"] for t in result), *(t["last_checked"] for t in result))


# --- /trees/<code>/ -----------------------------------------------------------------------------


def _tree(code):
    tree = Tree.objects.select_related("config_repository", "locales_repository").filter(code=code).first()
    if tree is None:
        raise Http404("no such tree")
    return tree


def _locale_repositories(tree, locale_ids):
    """locale id -> (the repository holding its files, the folder of its files in there)."""
    if tree.locales_repository is not None:
        return {locale_id: (tree.locales_repository, None) for locale_id in locale_ids}
    if tree.l10n_id is None:
        return {}
    return {repository.locale_id: (repository, "")
            for repository in Repository.objects.filter(forest_id=tree.l10n_id, locale_id__in=locale_ids)}


def _taskcluster_revisions(runs):
    """run id -> its compared revisions, for runs published by a task (they name them only in ``revisions``)."""
    ids = [run.pk for run in runs if run.origin == TASKCLUSTER]
    found = defaultdict(list)
    if not ids:
        return found
    seen = set()
    rows = Run.revisions.through.objects.filter(run_id__in=ids).order_by("id").values_list(
        "run_id", "changeset__revision", "changeset__repositories__name", "changeset__repositories__kind",
        "changeset__repositories__url",
    )
    for run_id, revision, name, kind, url in rows:
        if (run_id, revision) in seen:  # a revision in several repositories (forks): the first one
            continue
        seen.add((run_id, revision))
        found[run_id].append({"repository": name, "revision": revision,
                              "url": commit_url(kind, url, revision) if url else None})
    return found


def _compared(run, tree, locale_repository, taskcluster_revisions):
    if run.origin == COMPUTED or run.reference_revision_id or run.locale_revision_id:
        return [revision for revision in (
            _revision(tree.config_repository, run.reference_revision.revision if run.reference_revision else None),
            _revision(locale_repository, run.locale_revision.revision if run.locale_revision else None),
        ) if revision]
    return taskcluster_revisions.get(run.pk, [])


def _counts(run):
    return {
        "completion": run.completion,
        "translated": run.changed,
        "missing": run.missing + run.missingInFiles,
        "errors": run.errors,
        "warnings": run.warnings,
        "obsolete": run.obsolete,
        "total": run.total,
    }


def tree_page(code, sort="locale", descending=False, now=None):
    if sort not in TREE_SORTS:
        raise BadRequest(f"sort must be one of {', '.join(TREE_SORTS)}")
    tree = _tree(code)
    order = ("-" if descending else "") + TREE_SORTS[sort]
    actives = list(
        Active.objects.filter(tree=tree)
        .select_related("locale", "run", "run__reference_revision", "run__locale_revision")
        .order_by(order, "locale__code")
    )
    repositories = _locale_repositories(tree, [active.locale_id for active in actives])
    published = _taskcluster_revisions([active.run for active in actives])
    # From the start of a day: the answer (and its ETag) stays the same all day unless the data changes.
    since = ((now or timezone.now()) - timedelta(days=TREND_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    trends = defaultdict(list)
    for locale_id, srctime, completion in (
        Run.objects.filter(tree=tree, srctime__gte=since).order_by("srctime", "id")
        .values_list("locale_id", "srctime", "completion")
    ):
        trends[locale_id].append({"srctime": srctime, "completion": completion})
    locales = []
    for active in actives:
        run = active.run
        repository = repositories.get(active.locale_id, (None, None))[0]
        locales.append({
            "locale": active.locale.code,
            "name": active.locale.name,
            **_counts(run),
            "last_changed": run.srctime,
            "checked": active.checked,
            "origin": run.origin,
            "compared": _compared(run, tree, repository, published),
            "trend": trends.get(active.locale_id, []),
        })
    modified = _newest(*(row["last_changed"] for row in locales), *(row["checked"] for row in locales))
    data = {"tree": _tree_summary(tree), "sort": sort, "order": "desc" if descending else "asc",
            "trend_since": since, "locales": locales}
    return data, modified


# --- /trees/<code>/<locale>/ ---------------------------------------------------------------------


def _changed_revisions(runs, before=None):
    """Changeset ids a run compared that the run before it did not: the pushes that moved the numbers."""
    changed = set()
    for previous, run in zip([before, *runs], runs, strict=False):
        for field in ("reference_revision_id", "locale_revision_id"):
            if run[field] and (previous is None or previous[field] != run[field]):
                changed.add(run[field])
    return changed


def encode_run_cursor(run_id):
    return base64.urlsafe_b64encode(f"run:{run_id}".encode()).decode().rstrip("=")


def _window(runs, cursor):
    """The runs on a page of a locale's chart: RUNS_PER_PAGE, newest first, before ``cursor``'s run if given.

    One more is read: it tells whether there is an older page and which pushes moved the oldest run shown.
    """
    if cursor:
        before = decode_cursor(cursor, "run")
        at = Run.objects.filter(pk=before).values("srctime")[:1]
        runs = runs.filter(Q(srctime__lt=Subquery(at)) | Q(srctime=Subquery(at), id__lt=before))
    rows = list(runs.order_by("-srctime", "-id").values(
        "id", "srctime", "created", "origin", "completion", "changed", "missing", "missingInFiles", "errors",
        "total", "reference_revision_id", "locale_revision_id",
    )[: RUNS_PER_PAGE + 1])
    rows.reverse()  # oldest first
    if len(rows) > RUNS_PER_PAGE:
        return rows[0], rows[1:]
    return None, rows


def locale_page(code, locale_code, cursor=None):
    tree = _tree(code)
    locale = Locale.objects.filter(code=locale_code).first()
    if locale is None:
        raise Http404("no such locale")
    active = (Active.objects.filter(tree=tree, locale=locale)
              .select_related("run", "run__reference_revision", "run__locale_revision").first())
    if active is None:
        raise Http404("no comparison of this locale in this tree")
    before, runs = _window(Run.objects.filter(tree=tree, locale=locale), cursor)
    # Read by primary key, never joined: a join would make the database walk every changeset and push.
    revisions = dict(Changeset.objects.filter(
        pk__in={row[field] for row in runs for field in ("reference_revision_id", "locale_revision_id")} - {None}
    ).values_list("id", "revision"))
    for row in runs:
        row["reference_revision__revision"] = revisions.get(row["reference_revision_id"])
        row["locale_revision__revision"] = revisions.get(row["locale_revision_id"])
    repository, folder = _locale_repositories(tree, [locale.pk]).get(locale.pk, (None, None))
    watched = {r.pk: r for r in (tree.config_repository, repository) if r is not None}
    pushes = []
    changed = _changed_revisions(runs, before)
    if changed and watched:
        containing = defaultdict(list)
        for push_id, changeset_id in Push.changesets.through.objects.filter(changeset_id__in=changed).values_list(
                "push_id", "changeset_id"):
            containing[push_id].append(changeset_id)
        rows = (Push.objects.filter(pk__in=list(containing), repository_id__in=list(watched))
                .order_by("push_date", "push_id").values("id", "push_id", "user", "push_date", "repository_id"))
        for row in rows:
            pushed = watched[row["repository_id"]]
            for changeset_id in containing[row["id"]]:
                pushes.append({
                    "repository": pushed.name,
                    "push_id": row["push_id"],
                    "user": row["user"],
                    "push_date": row["push_date"],
                    "revision": revisions[changeset_id],
                    "url": commit_url(pushed.kind, pushed.url, revisions[changeset_id]),
                })
    run = active.run
    reference_at = run.reference_revision.revision if run.reference_revision else None
    locale_at = run.locale_revision.revision if run.locale_revision else None
    files = []
    for item in RunFile.objects.filter(run=run).order_by("path"):
        if repository is not None and not item.missing_file:
            path = f"{locale.code}/{item.path}" if folder is None else item.path
            url = file_url(repository.kind, repository.url, locale_at, path)
        elif tree.config_repository is not None:
            url = file_url(tree.config_repository.kind, tree.config_repository.url, reference_at, item.path)
        else:
            url = None
        files.append({"path": item.path, "url": url, "missing_file": item.missing_file, "error": item.error,
                      "missing": item.missing})
    data = {
        "tree": _tree_summary(tree),
        "locale": {"code": locale.code, "name": locale.name, "native": locale.native},
        "active": {**_counts(run), "last_changed": run.srctime, "checked": active.checked, "origin": run.origin,
                   "computed_by": run.computed_by,
                   "compared": _compared(run, tree, repository, _taskcluster_revisions([run]))},
        "runs": [{
            "srctime": row["srctime"],
            "completion": row["completion"],
            "translated": row["changed"],
            "missing": row["missing"] + row["missingInFiles"],
            "errors": row["errors"],
            "total": row["total"],
            "origin": row["origin"],
            "reference_revision": row["reference_revision__revision"],
            "locale_revision": row["locale_revision__revision"],
        } for row in runs],
        "next_cursor": encode_run_cursor(runs[0]["id"]) if before else None,
        "pushes": pushes,
        "files": files,
    }
    return data, _newest(active.checked, *(row["created"] for row in runs))


# --- /pushes/ ------------------------------------------------------------------------------------


def repositories():
    rows = Repository.objects.order_by("archived", "name").values("name", "kind", "url", "archived")
    return {"repositories": [dict(row, url=mask_secrets(row["url"])) for row in rows]}, None


def encode_cursor(push_id):
    return base64.urlsafe_b64encode(f"push:{push_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor, expected="push"):
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":", 1)
        if kind != expected or not value.isdigit():
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this server gave") from None


def pushes_page(name, cursor=None, path="", user=""):
    repository = Repository.objects.filter(name=name).first()
    if repository is None:
        raise Http404("no such repository")
    pushes = Push.objects.filter(repository=repository)
    if cursor:
        pushes = pushes.filter(push_id__lt=decode_cursor(cursor))
    if user:
        pushes = pushes.filter(user=user)
    if path:
        files = list(File.objects.filter(path__startswith=path).values_list("id", flat=True)[:RARE_PATH_FILES + 1])
        if len(files) <= RARE_PATH_FILES:
            # A path few files match, so few pushes touch: read from its files to their pushes. Asked to
            # check each push instead, MariaDB walks the repository's pushes, newest first, until it has a
            # page: most of them (it cannot tell how rare the path is).
            pushes = pushes.filter(pk__in=Push.changesets.through.objects.filter(
                changeset__files__in=files).values("push_id"))
        else:
            # A common path: the newest pushes soon fill a page.
            touching = Push.changesets.through.objects.filter(push_id=OuterRef("pk"),
                                                              changeset__files__path__startswith=path)
            pushes = pushes.filter(Exists(touching))
    page = list(pushes.order_by("-push_id").values("id", "push_id", "user", "push_date")[: PUSHES_PER_PAGE + 1])
    more, page = len(page) > PUSHES_PER_PAGE, page[:PUSHES_PER_PAGE]
    members = list(
        Push.changesets.through.objects.filter(push_id__in=[push["id"] for push in page]).order_by("id").values(
            "push_id", "changeset_id", "changeset__revision", "changeset__user", "changeset__description",
            "changeset__placeholder",
        )
    )
    files = defaultdict(list)
    for changeset_id, file_path in (Changeset.files.through.objects
                                    .filter(changeset_id__in={row["changeset_id"] for row in members})
                                    .order_by("file__path").values_list("changeset_id", "file__path")):
        files[changeset_id].append(file_path)
    changesets = defaultdict(list)
    for row in members:
        revision = row["changeset__revision"]
        changesets[row["push_id"]].append({
            "revision": revision,
            "url": commit_url(repository.kind, repository.url, revision),
            "placeholder": row["changeset__placeholder"],
            "user": row["changeset__user"],
            "description": row["changeset__description"],
            "files": files.get(row["changeset_id"], []),
        })
    data = {
        "repository": {"name": repository.name, "kind": repository.kind, "url": mask_secrets(repository.url),
                       "archived": repository.archived},
        "filters": {"path": path, "user": user},
        "pushes": [{"push_id": push["push_id"], "user": push["user"], "push_date": push["push_date"],
                    "changesets": changesets.get(push["id"], [])} for push in page],
        "next_cursor": encode_cursor(page[-1]["push_id"]) if more else None,
    }
    return data, _newest(*(push["push_date"] for push in page))


# --- /status/ ------------------------------------------------------------------------------------


def _newest_push(kind):
    """The newest stored push of a kind of repository: among each repository's newest (its unique index)."""
    newest_each = Repository.objects.filter(kind=kind).annotate(
        newest=Subquery(Push.objects.filter(repository=OuterRef("pk")).order_by("-push_id").values("pk")[:1])
    ).values("newest")
    push = (Push.objects.filter(pk__in=newest_each).order_by("-push_date")
            .values("push_date", "push_id", "repository__name").first())
    return push and {"at": push["push_date"], "repository": push["repository__name"], "push_id": push["push_id"]}


def _newest_runs(actives):
    """origin -> the newest active run of that origin (the newest run of each tree and locale is the active one)."""
    trees = dict(Tree.objects.values_list("id", "code"))
    locales = dict(Locale.objects.filter(pk__in={a["locale_id"] for a in actives}).values_list("id", "code"))
    newest = {}
    for active in actives:
        run = active["run"]
        if run["origin"] not in newest or run["created"] > newest[run["origin"]]["at"]:
            newest[run["origin"]] = {"at": run["created"], "tree": trees[active["tree_id"]],
                                     "locale": locales[active["locale_id"]]}
    return newest


def status_page(now=None):
    now = now or timezone.now()
    rows = list(Repository.objects.order_by("name").values(
        "id", "name", "kind", "archived", "sync_state__last_synced", "sync_state__last_attempt",
        "sync_state__failures", "sync_state__next_attempt", "sync_state__last_error",
        "sync_state__upstream_push_id", "sync_state__stored_push_id",
    ))
    repos = []
    for row in rows:
        until = row["sync_state__next_attempt"]
        repos.append({
            "name": row["name"],
            "kind": row["kind"],
            "archived": row["archived"],
            "last_synced": row["sync_state__last_synced"],
            "last_attempt": row["sync_state__last_attempt"],
            "failures": row["sync_state__failures"] or 0,
            "backing_off_until": until if until and until > now else None,
            "last_error": (row["sync_state__last_error"] or "").split("\n", 1)[0][:500],
            "upstream_push_id": row["sync_state__upstream_push_id"],
            "stored_push_id": row["sync_state__stored_push_id"],
        })
    repos.sort(key=lambda repo: (repo["backing_off_until"] is None, -repo["failures"], repo["name"]))
    liveness = SyncState.objects.aggregate(last_attempt=Max("last_attempt"), last_synced=Max("last_synced"))
    interval = settings.BACKFILL_INTERVAL
    stale_after = 2 * interval + settings.VCS_TIMEOUT if interval else None
    heard = _newest(liveness["last_attempt"], liveness["last_synced"])
    alive = None if stale_after is None or heard is None else (now - heard).total_seconds() <= stale_after
    newest_runs = _newest_runs(_actives())
    letters = DeadLetter.objects.unresolved()
    newest_letters = [{
        "time": letter["created"],
        "source": letter["source"],
        "exchange": letter["exchange"],
        "routing_key": letter["routing_key"],
        "retries": letter["retries"],
        "error": letter["error"].split("\n", 1)[0][:500],
    } for letter in letters.order_by("-created").values(
        "created", "source", "exchange", "routing_key", "retries", "error")[:NEWEST_DEAD_LETTERS]]
    data = {
        "consumer": {"last_attempt": liveness["last_attempt"], "last_synced": liveness["last_synced"],
                     "stale_after_seconds": stale_after, "alive": alive},
        "sources": {
            "hg.mozilla.org": _newest_push(Repository.HG),
            "github": _newest_push(Repository.GIT),
            "taskcluster": newest_runs.get(TASKCLUSTER),
            "computed": newest_runs.get(COMPUTED),
        },
        "dead_letters": {"unresolved": letters.count(), "newest": newest_letters},
        "repositories": repos,
    }
    return data, _newest(heard, *(letter["time"] for letter in newest_letters))
