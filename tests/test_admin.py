"""The operators' admin: every registered model renders with data; dead letters replay."""

import json
from datetime import datetime, timezone

import pytest
from django.contrib import admin
from django.urls import reverse

from l10n.models import Active, Run
from life.models import Branch, Changeset, File, Forest, Locale, Push, Repository, SyncState, Tree
from simulated import pulse
from worker.models import DeadLetter, QueueBinding

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    locale = Locale.objects.create(code="de", name="German")
    forest = Forest.objects.create(name="l10n-central", url="https://hg.example/l10n-central/")
    repo = Repository.objects.create(name="l10n-central/de", url="https://hg.example/l10n-central/de/",
                                     forest=forest, locale=locale)
    changeset = Changeset.objects.create(revision="a" * 40, user="Zoë <z@example.com>",
                                         description="Übersetzung 🦊\n\nmore", branch=Branch.objects.get())
    changeset.files.add(File.objects.create(path="browser/über.ftl"))
    push = Push.objects.create(repository=repo, push_id=1, user="z@example.com", push_date=datetime.now(timezone.utc))
    push.changesets.add(changeset)
    tree = Tree.objects.create(code="gecko-strings-browser", config_repository=repo, config_path="_configs/b.toml")
    run = Run.objects.create(tree=tree, locale=locale, changed=9, missing=1, total=10, completion=90,
                             srctime=datetime.now(timezone.utc), root_url="https://tc.example", task_id="x" * 22,
                             run_id=0, artifact="public/x.json")
    Active.objects.create(tree=tree, locale=locale, run=run)
    SyncState.objects.create(repository=repo, last_synced=datetime.now(timezone.utc), stored_push_id=1,
                             upstream_push_id=1)
    QueueBinding.objects.create(queue="queue/u/hgmo", exchange="exchange/hgpushes/v2", routing_key="#")
    DeadLetter.objects.create(body=b"{nope", exchange="exchange/hgpushes/v2", routing_key="l10n-central/de",
                              error="body is not JSON")


def test_every_registered_model_renders_its_list_and_detail(world, admin_client):
    for model in admin.site._registry:
        if model._meta.app_label not in ("life", "l10n", "worker"):
            continue
        opts = model._meta
        listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert listing.status_code == 200, opts.label
        obj = model.objects.first()
        assert obj is not None, f"no {opts.label} row to show"
        detail = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert detail.status_code == 200, opts.label
    page = admin_client.get(reverse("admin:life_changeset_changelist") + "?q=Übersetzung").content.decode()
    assert "Übersetzung 🦊" in page and "aaaaaaaaaaaa" in page


def test_models_are_read_only(world, admin_client):
    assert admin_client.get(reverse("admin:life_repository_add")).status_code == 403
    repo = Repository.objects.get()
    response = admin_client.post(reverse("admin:life_repository_delete", args=[repo.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Repository.objects.filter(pk=repo.pk).exists()


def test_replay_action_re_runs_a_fixed_dead_letter(world, admin_client):
    body = json.dumps(pulse.obsolete("l10n-central/de", "https://hg.example/l10n-central/de/")).encode()
    fixed = DeadLetter.objects.create(body=body, exchange="exchange/hgpushes/v2", routing_key="l10n-central/de",
                                      error="was broken once")
    broken = DeadLetter.objects.get(error="body is not JSON")

    response = admin_client.post(
        reverse("admin:worker_deadletter_changelist"),
        {"action": "replay_selected", "_selected_action": [fixed.pk, broken.pk]},
        follow=True,
    )

    assert response.status_code == 200
    fixed.refresh_from_db()
    broken.refresh_from_db()
    assert fixed.resolved and fixed.replays == 1
    assert not broken.resolved and broken.replays == 1 and "not JSON" in broken.error
