"""./manage.py consume-pulse [--max-messages N] [--idle-exit SECONDS]"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, connections
from django.db.migrations.executor import MigrationExecutor

from life.management.storage import prepare_storage
from plumbing.collector import freeze_startup_objects
from worker import exchanges, metrics
from worker.config import brokers
from worker.consumer import PulseWorker, connect

log = logging.getLogger("worker")


class Command(BaseCommand):
    help = "Consume Pulse until stopped, from every source: " + "; ".join(
        f"{what} ({exchange})" for exchange, what in exchanges.CARRIES.items()
    ) + "."

    def add_arguments(self, parser):
        parser.add_argument("--max-messages", type=int, metavar="N", help="stop after N messages")
        parser.add_argument(
            "--idle-exit", type=float, metavar="SECONDS", help="stop once the queues have been empty this long"
        )

    def handle(self, max_messages, idle_exit, **options):
        prepare_storage()
        freeze_startup_objects()
        check_migrations()
        workers = [
            PulseWorker(connect(broker), broker, max_messages=max_messages, idle_exit=idle_exit)
            for broker in brokers(settings)
        ]

        def stop(*_signal_args):
            for worker in workers:
                worker.stop()

        metrics.serve(settings.METRICS_PORT)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for worker in workers:
            log.info("starting; broker %s as %s, sources %s", worker.broker.safe_url, worker.broker.user,
                     ", ".join(source.name for source in worker.sources))
        # Other Taskcluster deployments are consumed in threads, each on its own connection.
        threads = [threading.Thread(target=_run_in_thread, args=(w,), daemon=True) for w in workers[1:]]
        for thread in threads:
            thread.start()
        workers[0].run()
        stop()
        for thread in threads:
            thread.join()
        log.info("stopped after %d messages", sum(worker.handled for worker in workers))


def check_migrations():
    """A database without the worker's tables would make every dead letter wait for ever: stop at once."""
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        log.warning("could not check the database's migrations (%s); starting anyway", error)
        return
    if unapplied:
        raise CommandError(f"the database lacks {len(unapplied)} migrations: run ./manage.py migrate first")


def _run_in_thread(worker):
    try:
        worker.run()
    finally:
        connections.close_all()
