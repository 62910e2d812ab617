"""./manage.py prune-dead-letters [--dry-run]"""

from django.core.management.base import BaseCommand

from plumbing.text import printable
from worker.retention import prune


class Command(BaseCommand):
    help = ("Delete dead letters past their retention: resolved ones DEAD_LETTER_RETENTION days after they were "
            "resolved, unresolved ones DEAD_LETTER_RETENTION_UNRESOLVED days after they arrived.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")

    def handle(self, dry_run, **options):
        pruned = prune(dry_run=dry_run, listing=True)
        for pk, created, resolved, exchange, routing_key in pruned.rows:
            state = "resolved" if resolved else "unresolved"
            self.stdout.write(f"#{pk} {created:%Y-%m-%d} {state} {printable(exchange, 255)} {printable(routing_key, 255)}")
        self.stdout.write(pruned.summary())
