"""./manage.py ingest-task TASK_ID [--run N] [--root-url URL]

The task counts only if its definition carries a route the configuration
binds for that deployment, as for the worker.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from l10n.ingest import configured_routes, ingest_task, latest_run
from plumbing.errors import PermanentError, TransientError
from plumbing.urls import normalise_root_url


class Command(BaseCommand):
    help = "Store a Taskcluster task's compare-locales results as if its completion message had arrived."

    def add_arguments(self, parser):
        parser.add_argument("task_id")
        parser.add_argument("--run", type=int, help="run id (default: the task's latest run)")
        parser.add_argument("--root-url", help=f"Taskcluster deployment (default: {settings.TASKCLUSTER_ROOT_URL})")

    def handle(self, task_id, run, root_url, **options):
        try:
            # The same form as the worker's, so both record the same Run.root_url for a deployment.
            root_url = normalise_root_url(root_url) if root_url else settings.TASKCLUSTER_ROOT_URL
        except ValueError as error:
            raise CommandError(f"--root-url {error}") from None
        try:
            if run is None:
                run = latest_run(root_url, task_id)
                if run is None:
                    raise CommandError(f"task {task_id} has no runs")
            result = ingest_task(root_url, task_id, run, routes=configured_routes(root_url))
        except (TransientError, PermanentError) as error:
            raise CommandError(f"{task_id}/{run}: {error}") from None
        self.stdout.write(f"{task_id}/{run}: {result.created} new runs, {result.activated} active")
