"""Ingesting one Taskcluster task's compare-locales results (DESIGN §1.2)."""

from django.conf import settings
from django.db import transaction

from plumbing.jsondoc import decode_json

from .elmo import parse_elmo, parse_task_definition
from .store import store_report
from .taskcluster import MAX_ARTIFACT_BYTES, QueueClient


def ingest_task(root_url, task_id, run_id, client=None):
    """Read the task and its elmo.json, then store every comparison in one transaction."""
    client = client or QueueClient(root_url)
    task = parse_task_definition(client.task(task_id))
    raw = client.artifact(task_id, run_id, settings.ELMO_ARTIFACT)
    report = parse_elmo(decode_json(raw, limit=MAX_ARTIFACT_BYTES), fallback_repository=task.source)
    with transaction.atomic():
        return store_report(report, root_url=root_url, task_id=task_id, run_id=run_id, srctime=task.created)


def latest_run(root_url, task_id, client=None):
    client = client or QueueClient(root_url)
    runs = client.status(task_id).get("status", {}).get("runs") or []
    if not runs:
        return None
    return runs[-1].get("runId")
