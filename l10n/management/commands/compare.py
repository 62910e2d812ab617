"""./manage.py compare CODE [--locale L ...]"""

from django.core.management.base import BaseCommand, CommandError

from l10n import computation
from life.management.progress import Progress
from life.models import Tree
from plumbing.errors import PermanentError, TransientError


class Command(BaseCommand):
    help = "Recompute a computed tree's comparisons now (every locale, or those named)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--locale", action="append", dest="locales", metavar="L", help="only this locale")

    def handle(self, code, locales, **options):
        try:
            tree = Tree.objects.get(code=code, computed=True)
        except Tree.DoesNotExist:
            raise CommandError(f"no computed tree {code!r}") from None
        try:
            with Progress(code, "locale") as progress:
                done = computation.recompute(tree, locales, progress=progress)
        except (TransientError, PermanentError) as error:
            raise CommandError(f"{code}: {error}") from None
        self.stdout.write(f"{code}: {len(done.compared)} locales compared, {done.runs} new runs, "
                          f"{done.checked} unchanged, {done.learnt.parsed} files parsed")
        for locale in done.vanished:
            self.stdout.write(f"{code}: locale {locale} is gone (history kept)")
