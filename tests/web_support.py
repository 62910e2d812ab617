"""A small world for the web head's tests, stored with the ORM: trees, locales, runs, pushes, sync states."""

from datetime import timedelta

from django.utils import timezone

from l10n.models import COMPUTED, Active, Run, RunFile
from life.models import Changeset, File, Forest, Locale, Push, Repository, SyncState, Tree
from worker.models import DeadLetter

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>\u202eevil\u202c"
LONG = "x" * 4000


def revision(*parts):
    return ("".join(f"{part:x}" if isinstance(part, int) else part for part in parts) + "0" * 40)[:40]


def build_world(locales=3, runs=4, pushes=5, hostile=False, now=None):
    """Two trees (a computed one on git, a forest one on hg) over ``locales`` locales, ``runs`` runs each
    (a day apart, the last the active one), ``pushes`` pushes per repository. Returns the names used."""
    assert runs <= pushes, "each run compares revisions of its own push"
    now = now or timezone.now()
    text = HOSTILE if hostile else ""
    source = Repository.objects.create(name="mozilla-l10n/firefox-l10n-source", kind="git", branch="main",
                                       url="https://github.com/mozilla-l10n/firefox-l10n-source/")
    mono = Repository.objects.create(name="mozilla-l10n/firefox-l10n", kind="git", branch="main",
                                     url="https://github.com/mozilla-l10n/firefox-l10n/")
    forest = Forest.objects.create(name="l10n-central", url="https://hg.mozilla.org/l10n-central/")
    computed = Tree.objects.create(code="fx-main", config_repository=source, config_path="_data/main.json",
                                   computed=True, locales_repository=mono)
    hg_tree = Tree.objects.create(code="fx-hg", config_repository=source, config_path="_data/beta.json",
                                  computed=True, l10n=forest)
    codes = [f"l{index:03d}" for index in range(locales)]
    locale_rows = [Locale.objects.create(code=code, name=(text + "x" * 30) if hostile else f"Locale {code}")
                   for code in codes]
    hg_repositories = [Repository.objects.create(name=f"l10n-central/{code}", url=f"https://hg.mozilla.org/l10n-central/{code}/",
                                                 forest=forest, locale=locale) for code, locale in zip(codes, locale_rows, strict=True)]
    files = [File.objects.create(path=f"{code}/browser/{text}menu.ftl") for code in codes]
    # Pushes: to the reference, the monorepo and each hg repository; every changeset a complete one, one placeholder.
    changesets = {}
    for repository in [source, mono, *hg_repositories]:
        for number in range(1, pushes + 1):
            cs = Changeset.objects.create(revision=revision(repository.pk, "f", number), user=f"{text}pusher{number} <p@x>",
                                          description=f"{text}bump {number}\n{LONG if hostile else 'more'}")
            cs.files.set(files[(number - 1) % len(files):][:1] or files[:1])
            push = Push.objects.create(repository=repository, push_id=number, user=f"{text}pusher{number % 2}@example.com",
                                       push_date=now - timedelta(hours=pushes - number + 1))
            push.changesets.add(cs)
            repository.changesets.add(cs)
            changesets[repository.pk, number] = cs
    placeholder = Changeset.objects.create(revision=revision("abc", 99), placeholder=True)
    Push.objects.get(repository=mono, push_id=pushes).changesets.add(placeholder)
    for tree, locale_repos in ((computed, [mono] * locales), (hg_tree, hg_repositories)):
        for index, (locale, locale_repo) in enumerate(zip(locale_rows, locale_repos, strict=True)):
            run = None
            for number in range(1, runs + 1):
                pushed = min(number, pushes)
                translated = 10 * number + index
                total = 10 * runs + locales + 5
                run = Run.objects.create(
                    tree=tree, locale=locale, origin=COMPUTED, computed_by="moz.l10n 0.15.0",
                    changed=translated, missing=total - translated - index % 2, errors=index % 2, total=total,
                    completion=int(translated * 100 / total), srctime=now - timedelta(days=runs - number, minutes=index),
                    reference_revision=changesets[source.pk, pushed], locale_revision=changesets[locale_repo.pk, pushed],
                )
            RunFile.objects.create(run=run, path=f"browser/{text}menu.ftl", missing=[f"{text}msg-{i}" for i in range(3)])
            RunFile.objects.create(run=run, path=f"toolkit/{text}gone.ftl", missing=["a", "b"], missing_file=True)
            Active.objects.create(tree=tree, locale=locale, run=run, checked=now,
                                  checked_reference=run.reference_revision, checked_locale=run.locale_revision)
    for position, repository in enumerate([source, mono, *hg_repositories]):
        failing = position == 1
        SyncState.objects.create(
            repository=repository, last_synced=now - timedelta(minutes=5 + position), last_attempt=now - timedelta(minutes=1),
            failures=7 if failing else 0, next_attempt=now + timedelta(hours=1) if failing else None,
            last_error=f"{text}HTTP 503 from upstream" if failing else "",
        )
    for number in range(3):
        DeadLetter.objects.create(body=b"secret body " + text.encode(), exchange="exchange/hgpushes/v2",
                                  routing_key=f"{text}l10n-central/x{number}", error=f"{text}not JSON {number}",
                                  source="hgmo")
    return {"trees": [computed.code, hg_tree.code], "locales": codes, "repositories": [source.name, mono.name,
            *(r.name for r in hg_repositories)], "failing": mono.name, "now": now,
            "user": f"{text}pusher1@example.com"}
