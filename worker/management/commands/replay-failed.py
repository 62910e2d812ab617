"""./manage.py replay-failed [ID …]"""

from django.core.management.base import BaseCommand, CommandError

from worker.models import DeadLetter
from worker.replay import replay


class Command(BaseCommand):
    help = "Re-run dead-lettered messages (all unresolved ones, or the given ids)."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, metavar="ID")

    def handle(self, ids, **options):
        letters = DeadLetter.objects.filter(pk__in=ids) if ids else DeadLetter.objects.unresolved()
        if ids and len(letters) != len(set(ids)):
            missing = sorted(set(ids) - {letter.pk for letter in letters})
            raise CommandError(f"no dead letter with id {', '.join(map(str, missing))}")
        failed = 0
        for letter in letters.order_by("created"):
            outcome = replay(letter)
            failed += outcome.status not in ("stored", "skipped")
            self.stdout.write(f"#{letter.pk} {letter.exchange} {letter.routing_key}: {outcome.status} {outcome.detail}")
        if failed:
            raise CommandError(f"{failed} dead letter(s) still failing")
