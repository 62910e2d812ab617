"""A worker killed while hg clones leaves nothing running and nothing that survives its next start (issue 12 §5)."""

import pytest

from life import storage
from life.models import Changeset, Push
from simulated.harness import WorkerProcess, declare_queues, queue_depth, wait_until
from tests.test_clones import make_repository, processes_with, revisions, staging_dirs
from tests.test_worker import publish, push_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_killed_while_hg_clones_leaves_no_hg_running_and_no_staging(hgmo, broker_url, worker_env, tmp_path):
    repo = make_repository(hgmo, "l10n-central/de")
    node, _ = hgmo.commit_and_push(repo.name, {"a.ftl": b"a = A\n"})
    declare_queues()
    hgmo.hang_seconds = 120
    hgmo.set_fault("slow-pull", repo.name)  # json-pushes answers; the clone hangs in its transfer
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))

    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    wait_until(lambda: processes_with(repo.url) and staging_dirs(), timeout=60)
    worker.kill()

    # No orphan hg goes on writing into the staging directory, with no timeout.
    wait_until(lambda: not processes_with(repo.url))
    assert len(staging_dirs()) == 1
    assert not (storage.clone_path(repo) / ".hg").exists()

    hgmo.set_fault(None)
    restarted = WorkerProcess("--idle-exit", "3", log_path=tmp_path / "restarted.log")
    assert restarted.wait() == 0, restarted.output()

    assert "left by a worker that was killed" in restarted.output()
    assert staging_dirs() == []
    assert revisions(storage.clone_path(repo)) == {node}
    assert Push.objects.filter(repository=repo).count() == 1
    assert Changeset.objects.filter(revision=node).count() == 1
    assert queue_depth(broker_url, "hgmo") == 0
