"""./manage.py reprocess-repo NAME [--reclone]"""

from django.core.management.base import BaseCommand, CommandError

from life.kinds import for_repository
from life.management.progress import Progress
from life.management.storage import prepare_storage
from life.models import Repository
from plumbing.collector import freeze_startup_objects
from plumbing.errors import PermanentError, TransientError


class Command(BaseCommand):
    help = "Re-pull (or re-clone) one repository and re-import its pushes and changesets idempotently."

    def add_arguments(self, parser):
        parser.add_argument("name", help="repository name, e.g. l10n-central/de or mozilla-l10n/firefox-l10n")
        parser.add_argument(
            "--reclone", action="store_true", help="clone again beside the local clone; swap the new one in once complete"
        )

    def handle(self, name, reclone, **options):
        prepare_storage()
        freeze_startup_objects()
        try:
            repository = Repository.objects.get(name=name)
        except Repository.DoesNotExist:
            raise CommandError(f"unknown repository {name!r} (names are paths on the repository's server)") from None
        kind = for_repository(repository)
        with Progress(name, kind.progress_unit) as progress:
            try:
                result = kind.reprocess(repository, reclone=reclone, progress=progress)
            except (TransientError, PermanentError) as error:
                raise CommandError(f"{name}: {error}") from None
        self.stdout.write(
            f"{name}: {result.pushes} new pushes, {result.changesets} new changesets, "
            f"{result.placeholders_filled} placeholders filled"
        )
        for rejection in result.rejected:
            self.stdout.write(f"{name}: rejected: {rejection}")
