"""The README's first command, run in-process: its report matches the database."""

import pytest

from l10n.models import Active, Run
from life.models import Changeset, Push, Repository
from simulated.demo import DEMO_LOCALES, run_demo
from worker.models import DeadLetter


@pytest.mark.django_db
def test_demo_report_matches_the_database(tmp_path, monkeypatch):
    for name in ("PULSE_URL", "PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "TASKCLUSTER_EXTRA_SOURCES"):
        monkeypatch.delenv(name, raising=False)

    report = run_demo(tmp_path)

    assert report["messages"] == {"stored": 9, "skipped": 3, "dead-lettered": 1}
    assert report["repositories"] == Repository.objects.count() == 1 + len(DEMO_LOCALES)
    # en-US: 3 pushes (the second task re-pushes the reference); de: 2 (newrepo stores no pushes)
    assert report["pushes"] == Push.objects.count() == 5
    assert report["changesets"] == Changeset.objects.complete().count() - 1  # not the null revision
    assert report["placeholders_filled"] == 1  # German's compare task came before its push
    assert report["placeholders_waiting"] == Changeset.objects.placeholders().count() == 0
    assert set(report["runs"]) == set(DEMO_LOCALES) == {a.locale.code for a in Active.objects.all()}
    assert report["runs"]["de"] == 100 and report["runs"]["ja-JP-mac"] < 100
    assert Run.objects.filter(locale__code="de").count() == 2
    assert report["dead_letters"] == [f"{d.routing_key}: {d.error}" for d in DeadLetter.objects.all()]
    assert len(report["dead_letters"]) == 1
