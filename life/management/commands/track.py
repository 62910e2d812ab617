"""./manage.py track URL [--name NAME] [--branch BRANCH] [--forest NAME] [--kind hg|git]"""

from django.core.management.base import BaseCommand, CommandError

from life.kinds import for_repository
from life.management.progress import Progress
from life.management.storage import prepare_storage
from life.models import Repository
from life.repositories import start_tracking
from plumbing.collector import freeze_startup_objects
from plumbing.errors import PermanentError, TransientError
from plumbing.urls import mask_secrets


class Command(BaseCommand):
    help = ("Start tracking a Mercurial or git (GitHub) repository: create it, clone it and import its history. "
            "Its kind is asked of the server unless --kind says it.")

    def add_arguments(self, parser):
        parser.add_argument("url", help="e.g. https://hg.mozilla.org/l10n-central/de/ or "
                                        "https://github.com/mozilla-l10n/firefox-l10n")
        parser.add_argument("--name", help="the repository's name (default: the URL's path)")
        parser.add_argument("--branch", help="git: the branch to track (default: the remote's default branch)")
        parser.add_argument("--forest", help="the forest it belongs to (made if needed); "
                                             "a last path segment that is a locale code sets its locale")
        parser.add_argument("--kind", choices=[kind for kind, _ in Repository.KINDS],
                            help="skip asking the server which kind it is")

    def handle(self, url, name, branch, forest, kind, **options):
        prepare_storage()
        freeze_startup_objects()
        try:
            repository = start_tracking(url, name=name, branch=branch, forest=forest, kind=kind)
            with Progress(repository.name, for_repository(repository).progress_unit) as progress:
                result = for_repository(repository).reprocess(repository, progress=progress)
        except (TransientError, PermanentError) as error:
            raise CommandError(mask_secrets(f"{name or url}: {error}")) from None
        what = f"{repository.kind} repository {repository.name} at {mask_secrets(repository.url)}"
        if repository.branch:
            what += f", branch {repository.branch}"
        self.stdout.write(
            f"tracking {what}: {result.pushes} new pushes, {result.changesets} new changesets, "
            f"{result.placeholders_filled} placeholders filled"
        )
