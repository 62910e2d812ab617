"""./manage.py tree add CODE --reference REPO:PATH (--locales REPO | --forest NAME)
./manage.py tree add-channels REPO --locales REPO [--prefix firefox]"""

from django.core.management.base import BaseCommand, CommandError

from l10n import trees
from life.management.progress import Progress
from plumbing.errors import PermanentError, TransientError


class Command(BaseCommand):
    help = "Declare computed trees (their comparisons are computed by the worker from every push)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="one computed tree; computes every locale once")
        add.add_argument("code")
        add.add_argument("--reference", required=True, metavar="REPO:PATH",
                         help="a tracked repository and a _data/<channel>.json or .toml in it")
        where = add.add_mutually_exclusive_group(required=True)
        where.add_argument("--locales", metavar="REPO", help="a tracked repository with a folder per locale")
        where.add_argument("--forest", metavar="NAME", help="a forest with a repository per locale")
        channels = actions.add_parser("add-channels", help="one computed tree per _data/<channel>.json of REPO")
        channels.add_argument("reference", metavar="REPO")
        channels.add_argument("--locales", required=True, metavar="REPO")
        channels.add_argument("--prefix", default="firefox", help="tree codes are <prefix>-<channel>")

    def handle(self, action, **options):
        try:
            if action == "add":
                self._add(**options)
            else:
                self._add_channels(**options)
        except (TransientError, PermanentError) as error:
            raise CommandError(str(error)) from None

    def _add(self, code, reference, locales, forest, **options):
        name, _, path = reference.partition(":")
        if not name or not path:
            raise CommandError("--reference is REPO:PATH, e.g. mozilla-l10n/firefox-l10n-source:_data/main.json")
        with Progress(code, "locale") as progress:
            tree, done = trees.add_tree(
                code, trees.repository(name), path,
                locales_repository=trees.repository(locales) if locales else None,
                forest=trees.forest(forest) if forest else None, progress=progress)
        self.stdout.write(f"{tree.code}: {len(done.compared)} locales compared, {done.runs} runs stored, "
                          f"{done.learnt.parsed} files parsed")

    def _add_channels(self, reference, locales, prefix, **options):
        bars = []

        def progress(code):
            bars.append(Progress(code, "locale"))
            return bars[-1]

        try:
            result = trees.add_channel_trees(trees.repository(reference), trees.repository(locales), prefix,
                                             progress=progress)
        finally:
            for bar in bars:
                bar.__exit__(None, None, None)
        for tree in result.added:
            self.stdout.write(f"{tree.code}: added ({tree.config_path})")
        for tree in result.kept:
            self.stdout.write(f"{tree.code}: already there")
        for tree in result.archived:
            self.stdout.write(f"{tree.code}: archived, {tree.config_path} is gone")
