"""Ingesting one Taskcluster task's compare-locales results (DESIGN §1.2)."""

from django.conf import settings
from django.db import transaction

from plumbing.jsondoc import decode_json

from .elmo import parse_elmo, parse_task_definition, require_configured_route
from .store import store_report
from .taskcluster import MAX_ARTIFACT_BYTES, QueueClient


def configured_routes(root_url):
    """The routing keys the configuration binds for the deployment ``root_url``.

    TASKCLUSTER_ROUTES for the main deployment, an extra source's own routes
    for its deployment; TASKCLUSTER_ROUTES too for a deployment the
    configuration does not name (an operator's ``ingest-task --root-url``).
    """
    routes = [source["routes"] for source in settings.TASKCLUSTER_EXTRA_SOURCES if source["root_url"] == root_url]
    if root_url == settings.TASKCLUSTER_ROOT_URL or not routes:
        routes.insert(0, settings.TASKCLUSTER_ROUTES)
    return tuple(dict.fromkeys(route for group in routes for route in group))


def ingest_task(root_url, task_id, run_id, routes=None, client=None):
    """Read the task and its elmo.json, then store every comparison in one transaction.

    The task counts only if its definition carries one of ``routes`` (default:
    the routes configured for ``root_url``); else nothing is downloaded.
    """
    client = client or QueueClient(root_url)
    task = parse_task_definition(client.task(task_id))
    require_configured_route(task_id, task, configured_routes(root_url) if routes is None else routes)
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
