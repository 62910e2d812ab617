"""The README's first command, run in-process: its report matches the database."""

import pytest

from l10n.models import Active, Run
from life.models import Changeset, Push, Repository, SyncState, Tree
from simulated.demo import DEMO_LOCALES, GITHUB_L10N, GITHUB_LOCALES, GITHUB_SOURCE, run_demo
from worker.models import DeadLetter


@pytest.mark.django_db
def test_demo_report_matches_the_database(tmp_path, monkeypatch):
    for name in ("PULSE_URL", "PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "TASKCLUSTER_EXTRA_SOURCES"):
        monkeypatch.delenv(name, raising=False)

    report = run_demo(tmp_path)

    # hg: 9 stored, 3 skipped, 1 dead letter. GitHub: 5 stored (two pushes, the force push, two
    # comparisons); 4 skipped (the second format of two pushes, both formats of a push to another branch).
    assert report["messages"] == {"stored": 14, "skipped": 7, "dead-lettered": 1}
    assert report["repositories"] == Repository.objects.count() == 1 + len(DEMO_LOCALES) + 2
    assert report["git_repositories"] == 2
    # en-US: 3 pushes (the second task re-pushes the reference); de: 2 (newrepo stores no pushes);
    # GitHub: the source's history, the monorepo's history and its three pushes.
    assert report["pushes"] == Push.objects.count() == 5 + 1 + 4
    assert report["changesets"] == Changeset.objects.complete().count() - 1  # not the null revision
    # German's hg compare task came before its push; so did the comparison of the force-pushed commit.
    assert report["placeholders_filled"] == 2
    assert report["placeholders_waiting"] == Changeset.objects.placeholders().count() == 0
    assert set(report["runs"]) == set(Tree.objects.values_list("code", flat=True))
    assert set(report["runs"]["gecko-strings-browser"]) == set(DEMO_LOCALES)
    assert report["runs"]["gecko-strings-browser"]["de"] == 100
    assert report["runs"]["gecko-strings-browser"]["ja-JP-mac"] < 100
    assert Run.objects.filter(locale__code="de", tree__code="gecko-strings-browser").count() == 2
    assert report["dead_letters"] == [f"{d.routing_key}: {d.error}" for d in DeadLetter.objects.all()]
    assert len(report["dead_letters"]) == 1

    # The GitHub monorepo: tracked history, pushes in both formats, a force push, a comparison naming it.
    l10n = Repository.objects.get(name=GITHUB_L10N)
    assert (l10n.kind, l10n.branch) == ("git", "main")
    pushes = list(Push.objects.filter(repository=l10n).order_by("push_id"))
    assert [(p.push_id, p.user) for p in pushes] == [(1, ""), (2, "mozilla-pontoon"), (3, "flod"),
                                                     (4, "mozilla-pontoon")]
    assert report["github_pushes"][1:] == [(2, "mozilla-pontoon", ["de: complete"]),
                                           (3, "flod", ["it: fix a typo [ci skip]"]),
                                           (4, "mozilla-pontoon", ["it: fix a typo"])]
    # The force push rewrote push 3's commit: push 4 holds only its replacement, on push 2's commit.
    (amended,) = pushes[3].changesets.all()
    assert [p.revision for p in amended.parents.all()] == [pushes[1].changesets.get().revision]
    assert [f.path for f in amended.files.all()] == ["it/browser/menu.ftl"]
    assert SyncState.objects.get(repository=l10n).stored_revision == amended.revision
    # The comparisons name the monorepo and its source; the configuration lives in the source.
    tree = Tree.objects.get(config_repository__name=GITHUB_SOURCE)
    assert report["runs"][tree.code] == {code: 100 for code in GITHUB_LOCALES}
    active = Active.objects.get(tree=tree, locale__code="it").run
    assert amended in active.revisions.all()
