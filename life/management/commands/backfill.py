"""./manage.py backfill [--limit N] [--repo NAME …]"""

from django.core.management.base import BaseCommand, CommandError

from life.backfill import backfill
from life.management.storage import prepare_storage
from life.models import Repository
from plumbing.collector import freeze_startup_objects


class Command(BaseCommand):
    help = "Bring known repositories up to date from json-pushes, without waiting for Pulse messages."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, help="at most this many repositories in this run")
        parser.add_argument("--repo", action="append", dest="names", metavar="NAME", help="only these (repeatable)")

    def handle(self, limit, names, **options):
        prepare_storage()
        freeze_startup_objects()
        if names:
            unknown = sorted(set(names) - set(Repository.objects.filter(name__in=names).values_list("name", flat=True)))
            if unknown:
                raise CommandError(f"unknown repository {', '.join(unknown)}")
        report = backfill(
            limit=limit,
            names=names,
            on_outcome=lambda o: self.stdout.write(f"{o.name}: {o.status}{': ' + o.detail if o.detail else ''}"),
        )
        self.stdout.write(report.summary())
