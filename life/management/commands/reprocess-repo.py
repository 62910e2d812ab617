"""./manage.py reprocess-repo NAME [--reclone]"""

from django.core.management.base import BaseCommand, CommandError

from life import storage
from life.management.progress import Progress
from life.models import Repository
from life.repositories import progress_unit, reprocess
from plumbing.errors import PermanentError, TransientError


class Command(BaseCommand):
    help = "Re-pull (or re-clone) one repository and re-import its pushes and changesets idempotently."

    def add_arguments(self, parser):
        parser.add_argument("name", help="repository name, e.g. l10n-central/de or mozilla-l10n/firefox-l10n")
        parser.add_argument(
            "--reclone", action="store_true", help="clone again beside the local clone; swap the new one in once complete"
        )

    def handle(self, name, reclone, **options):
        try:
            storage.prepare()  # REPOSITORY_BASE usable; what killed workers left removed
        except storage.StorageError as error:
            raise SystemExit(f"configuration: {error}") from None
        try:
            repository = Repository.objects.get(name=name)
        except Repository.DoesNotExist:
            raise CommandError(f"unknown repository {name!r} (names are paths on the repository's server)") from None
        with Progress(name, progress_unit(repository)) as progress:
            try:
                result = reprocess(repository, reclone=reclone, progress=progress)
            except (TransientError, PermanentError) as error:
                raise CommandError(f"{name}: {error}") from None
        self.stdout.write(
            f"{name}: {result.pushes} new pushes, {result.changesets} new changesets, "
            f"{result.placeholders_filled} placeholders filled"
        )
        for rejection in result.rejected:
            self.stdout.write(f"{name}: rejected: {rejection}")
