"""No secret leaves (issue 19 §2): a repository URL carrying user:token, through every path that shows text."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from kombu import Connection
from prometheus_client import REGISTRY, generate_latest

from life.models import Repository, SyncState
from plumbing.urls import mask_secrets
from simulated.github import SimulatedGitHub, publish_webhook, push_payload, webhook_message
from simulated.harness import WorkerProcess, declare_queues, queue_depth, wait_until
from worker.models import DeadLetter

pytestmark = pytest.mark.django_db(transaction=True)

L10N = "mozilla-l10n/firefox-l10n"
TOKEN = "ghp_s3cr3tT0ken"


def test_mask_secrets_masks_every_url_password_in_a_text():
    text = f"git fetch https://user:{TOKEN}@host/org/repo main failed: fatal: 'http://a:{TOKEN}@h/x' and amqp://u:p@h"
    masked = mask_secrets(text)
    assert TOKEN not in masked and ":p@" not in masked
    assert "https://user:***@host/org/repo" in masked and "amqp://u:***@h" in masked
    assert mask_secrets("a@b.c user@example.com https://host/path") == "a@b.c user@example.com https://host/path"


def test_a_token_in_a_repository_url_never_shows(tmp_path, broker_url, worker_env, admin_client, monkeypatch):
    checked = []

    def no_token(place, text):
        checked.append(place)
        assert TOKEN not in text, f"{place} shows the token: {text[:500]}"

    with SimulatedGitHub(tmp_path / "github") as github:
        github.create_repo(L10N)
        github.build_history(L10N, 2, locales=["de"])
        url = github.repo_url(L10N).replace("://", f"://mirror-user:{TOKEN}@", 1)

        out = io.StringIO()
        call_command("track", url, stdout=out)
        no_token("track's output", out.getvalue())
        repository = Repository.objects.get(name=L10N)
        assert repository.url == url  # kept whole: it is how the mirror is reached

        github.set_fault("error", L10N)  # every fetch fails from now on
        out = io.StringIO()
        call_command("backfill", stdout=out)
        no_token("backfill's output", out.getvalue())
        state = SyncState.objects.get(repository=repository)
        assert state.failures == 1 and "***@" in state.last_error
        no_token("SyncState.last_error", state.last_error)

        with pytest.raises(CommandError) as failed:
            call_command("reprocess-repo", L10N, stdout=io.StringIO())
        no_token("reprocess-repo's error", str(failed.value))

        # A push message whose fetch keeps failing: retried, then a dead letter, in the real worker.
        declare_queues()
        tip = github.commit(L10N, {"de/a.ftl": b"a = b\n"})
        payload = push_payload(github, L10N, tip, tip)
        with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
            publish_webhook(conn, *webhook_message(payload))
        monkeypatch.setenv("PULSE_MAX_RETRIES", "1")
        worker = WorkerProcess("--idle-exit", "4", log_path=tmp_path / "worker.log")
        wait_until(lambda: DeadLetter.objects.exists(), timeout=60)
        assert worker.wait() == 0
        assert "git fetch" in worker.output()
        no_token("the worker's log", worker.output())
        letter = DeadLetter.objects.get()
        no_token("DeadLetter.error", letter.error)
        assert queue_depth(broker_url, "github-webhooks") == 0

        for name, path in (
            ("the repository list", reverse("admin:life_repository_changelist")),
            ("the repository page", reverse("admin:life_repository_change", args=[repository.pk])),
            ("the sync state list", reverse("admin:life_syncstate_changelist")),
            ("the sync state page", reverse("admin:life_syncstate_change", args=[state.pk])),
            ("the dead letter list", reverse("admin:worker_deadletter_changelist")),
            ("the dead letter page", reverse("admin:worker_deadletter_change", args=[letter.pk])),
            ("the web's repositories", "/api/pushes/"),
            ("the web's status", "/api/status/"),
        ):
            page = admin_client.get(path)
            assert page.status_code == 200, path
            no_token(f"admin: {name}" if path.startswith("/admin") else name, page.content.decode())
        no_token("metrics labels", generate_latest(REGISTRY).decode())

    assert len(checked) == 15
