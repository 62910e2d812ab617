"""./manage.py reprocess-repo NAME [--reclone]"""

import logging
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from life.ingest import reprocess_repository
from life.models import Repository
from plumbing.errors import PermanentError, TransientError

log = logging.getLogger("life.reprocess")


class Command(BaseCommand):
    help = "Re-pull (or re-clone) one repository and re-import its pushes and changesets idempotently."

    def add_arguments(self, parser):
        parser.add_argument("name", help="repository name, e.g. l10n-central/de")
        parser.add_argument("--reclone", action="store_true", help="remove the local clone and clone again")

    def handle(self, name, reclone, **options):
        try:
            repository = Repository.objects.get(name=name)
        except Repository.DoesNotExist:
            raise CommandError(f"unknown repository {name!r} (names are paths on the hg server)") from None
        with _progress(name) as progress:
            try:
                result = reprocess_repository(repository, reclone=reclone, progress=progress)
            except (TransientError, PermanentError) as error:
                raise CommandError(f"{name}: {error}") from None
        self.stdout.write(
            f"{name}: {result.pushes} new pushes, {result.changesets} new changesets, "
            f"{result.placeholders_filled} placeholders filled"
        )
        for rejection in result.rejected:
            self.stdout.write(f"{name}: rejected: {rejection}")


class _progress:
    """A progress bar on a terminal, plain log lines otherwise."""

    def __init__(self, name):
        self.name = name
        self.bar = None

    def __enter__(self):
        return self

    def __call__(self, done, total):
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = tqdm(total=total, unit="push", desc=self.name)
            self.bar.update(done - self.bar.n)
        else:
            log.info("%s: %d/%d pushes", self.name, done, total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
