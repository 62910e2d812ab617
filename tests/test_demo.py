"""The README's first command, run in-process: its report matches the database."""

import json

import pytest

from l10n.models import COMPUTED, Active, Run
from life.models import Changeset, Push, Repository, SyncState, Tree
from simulated import firefox
from simulated.demo import (
    CHANNEL_PREFIX,
    DEMO_LOCALES,
    FIREFOX_WORLD,
    GITHUB_L10N,
    GITHUB_LOCALES,
    GITHUB_SOURCE,
    TRANSLATED_LOCALE,
    run_demo,
)
from worker.models import DeadLetter


@pytest.mark.django_db
def test_demo_report_matches_the_database(tmp_path, monkeypatch):
    for name in ("PULSE_URL", "PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "TASKCLUSTER_EXTRA_SOURCES"):
        monkeypatch.delenv(name, raising=False)

    report = run_demo(tmp_path)

    # hg: 9 stored, 3 skipped, 1 dead letter. GitHub: 6 stored (three pushes, the force push, two
    # comparisons); 5 skipped (the second format of three pushes, both formats of a push to another branch).
    assert report["messages"] == {"stored": 15, "skipped": 8, "dead-lettered": 1}
    assert report["repositories"] == Repository.objects.count() == 1 + len(DEMO_LOCALES) + 2
    assert report["git_repositories"] == 2
    # en-US: 3 pushes (the second task re-pushes the reference); de: 2 (newrepo stores no pushes);
    # GitHub: the source's history, the monorepo's history and its four pushes.
    assert report["pushes"] == Push.objects.count() == 5 + 1 + 5
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
                                                     (4, "mozilla-pontoon"), (5, "mozilla-pontoon")]
    assert report["github_pushes"][1:] == [(2, "mozilla-pontoon", ["de: complete"]),
                                           (3, "flod", ["it: fix a typo [ci skip]"]),
                                           (4, "mozilla-pontoon", ["it: fix a typo"]),
                                           (5, "mozilla-pontoon", [f"Pontoon: Update {TRANSLATED_LOCALE} localization"])]
    # The force push rewrote push 3's commit: push 4 holds only its replacement, on push 2's commit.
    (amended,) = pushes[3].changesets.all()
    assert [p.revision for p in amended.parents.all()] == [pushes[1].changesets.get().revision]
    assert [f.path for f in amended.files.all()] == ["it/browser/menu.ftl"]
    assert SyncState.objects.get(repository=l10n).stored_revision == pushes[4].changesets.get().revision
    # The comparisons name the monorepo and its source; the configuration lives in the source.
    tree = Tree.objects.get(config_repository__name=GITHUB_SOURCE, computed=False)
    assert report["runs"][tree.code] == {code: 100 for code in GITHUB_LOCALES}
    active = Active.objects.get(tree=tree, locale__code="it").run
    assert amended in active.revisions.all()

    # Computed trees: one per _data/<channel>.json of the source, over every locale folder of the monorepo.
    codes = firefox.LOCALE_CODES[:FIREFOX_WORLD["locales"]]
    trees = {f"{CHANNEL_PREFIX}-{channel}": channel for channel in firefox.CHANNELS}
    assert set(Tree.objects.filter(computed=True).values_list("code", flat=True)) == set(trees)
    computed = {}
    for run in Run.objects.filter(origin=COMPUTED).select_related("tree", "locale").order_by("id"):
        computed.setdefault(run.tree.code, {}).setdefault(run.locale.code, []).append(run.completion)
    assert report["computed"] == computed
    assert all(set(history) == set(codes) for history in computed.values())
    assert {code: completion for code, completion in report["runs"]["firefox-main"].items()} == {
        code: history[-1] for code, history in computed["firefox-main"].items()}

    # Truth: the real moz-l10n over checkouts of the compared commits, before and after the push translating
    # three files of one locale (through consume-pulse, like every push of the demo).
    translated = report["translated"]
    assert translated["locale"] == TRANSLATED_LOCALE and translated["push_id"] == 5
    github = tmp_path / "github"
    source = firefox.checkout(github / f"{GITHUB_SOURCE}.git", "main", tmp_path / "source")
    before = firefox.checkout(github / f"{GITHUB_L10N}.git", translated["before"], tmp_path / "before")
    after = firefox.checkout(github / f"{GITHUB_L10N}.git", translated["after"], tmp_path / "after")
    changed_somewhere = False
    for code_of_tree, channel in trees.items():
        data_file = source / "_data" / f"{channel}.json"
        truth_before = firefox.moz_l10n_compare(data_file, [before / code for code in codes])
        truth_after = firefox.moz_l10n_compare(data_file, [after / code for code in codes])
        for code in codes:
            numbers = moz_l10n_numbers(data_file, truth_after[code])
            active = Active.objects.select_related("run").get(tree__code=code_of_tree, locale__code=code)
            run = active.run
            assert (run.total, run.missing, run.changed, run.errors, run.completion) == numbers, (code_of_tree, code)
            # Storage grows with changes in the numbers, not with pushes: the pushes of de and it touched no
            # file of the channels, and the translating push adds a run only where a number changed.
            changed = moz_l10n_numbers(data_file, truth_before[code]) != numbers
            assert computed[code_of_tree][code][0] == moz_l10n_numbers(data_file, truth_before[code])[-1]
            assert len(computed[code_of_tree][code]) == 1 + changed, (code_of_tree, code)
            changed_somewhere |= changed
            if code == TRANSLATED_LOCALE:
                assert active.checked_locale.revision == translated["after"]
    assert changed_somewhere
    assert computed["firefox-main"][TRANSLATED_LOCALE][-1] > computed["firefox-main"][TRANSLATED_LOCALE][0]


def moz_l10n_numbers(data_file, result):
    """(total, missing, changed, errors, completion) from moz-l10n's result for a locale: the ids of a file
    that does not parse count neither missing nor translated; errors counts such files."""
    data = json.loads(data_file.read_text())
    total = sum(len(ids) for ids in data.values())
    missing = sum(len(ids) for ids in (result["missing"] or {}).values())
    errors = result["errors"] or {}
    changed = total - missing - sum(len(data[path]) for path in errors)
    return total, missing, changed, len(errors), int(changed * 100 / total)
