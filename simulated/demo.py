"""The README's first command: consume-pulse on the embedded broker, fed by a simulated world.

Builds upstream repositories in a simulated hg.mozilla.org and a simulated
GitHub, and compare-locales tasks (with the real compare-locales) in a
simulated Taskcluster Queue, publishes what hg.mozilla.org, GitHub's
republisher and Taskcluster would publish, in their exact formats, to kombu's
in-process broker, runs ``consume-pulse`` until the queues are idle, and
prints what it stored, skipped and dead-lettered. The GitHub part is where
Firefox's strings live since 2024: a monorepo of locales and the en-US
source with its ``_data/<channel>.json`` (a small Firefox-shaped world from
simulated/firefox.py), tracked with ``track``, and one computed tree per
channel (``tree add-channels``); after the first run, a force push, a
comparison naming it and a push translating three files of one locale
arrive, and ``consume-pulse`` runs again: the report shows completion per
channel and locale, and how that push changed it. The data stays in the
SQLite database under VAR_DIR for inspection.

    VAR_DIR=var/demo python -m simulated.demo
"""

import logging
import os
import re
import sys
from collections import Counter

DEMO_LOCALES = {"de": "partial", "fr": "complete", "ja-JP-mac": "error", "es-ES": "obsolete"}
GITHUB_LOCALES = {"de": "partial", "it": "complete"}
GITHUB_L10N = "mozilla-l10n/firefox-l10n"
GITHUB_SOURCE = "mozilla-l10n/firefox-l10n-source"
ITALIAN_MENU = b"open = Apri\nsave = Salva { $name }\n"
# The Firefox-shaped part of the GitHub world: four locales (de, fr, it, ja) in six channels.
FIREFOX_WORLD = {"files": 12, "messages": 300, "locales": 4, "seed": 20}
TRANSLATED_LOCALE = "fr"  # a Pontoon push translates three of its files after the first run
CHANNEL_PREFIX = "firefox"


class OutcomeCounter(logging.Handler):
    """Counts the worker's per-message log lines by outcome, and the placeholders they filled; the
    messages for repositories not tracked come summed up, in lines of their own."""

    def __init__(self):
        super().__init__()
        self.outcomes = Counter()
        self.placeholders_filled = 0

    def emit(self, record):
        event = getattr(record, "event", None)
        if event and "skipped_unread" in event:
            self.outcomes["skipped"] += event["skipped_unread"]
        elif event:
            self.outcomes[event["outcome"]] += 1
            filled = re.search(r"(\d+) placeholders filled", event["detail"])
            self.placeholders_filled += int(filled.group(1)) if filled else 0


def build_world(hgmo, queue):
    """Upstream history, tasks, and the messages announcing them, in the order they would arrive.

    Returns [(exchange kind, routing key or None, body)].
    """
    from life.models import Forest, Repository
    from simulated import compare, pulse

    en_us = "l10n/gecko-strings"
    hgmo.create_repo(en_us)
    Repository.objects.create(name=en_us, url=hgmo.repo_url(en_us))
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    messages = []

    def push(name, push_id):
        messages.append(("hg", name, pulse.changegroup(name, hgmo.repo_url(name), [push_id])))

    def task(revisions, results):
        document = compare.elmo_document(results, revisions=revisions, repository=hgmo.repo_url(en_us))
        task_id = queue.add_task(source=hgmo.repo_url(en_us))
        queue.add_artifact(task_id, 0, "public/elmo.json", document)
        for code, result in results.items():
            queue.add_artifact(task_id, 0, compare.artifact_name(code), result["details"])
        messages.append(("task", None, queue.task_completed_message(task_id)))

    # en-US and four new locale repositories, compared.
    revisions, results = compare.publish_world(hgmo, DEMO_LOCALES)
    push(en_us, 1)
    for code in DEMO_LOCALES:
        name = f"l10n-central/{code}"
        messages.append(("hg", name, pulse.newrepo(name, hgmo.repo_url(name))))
    task(revisions, results)

    # German catches up; its compare task finishes before the push notification arrives.
    revisions, results = compare.publish_world(hgmo, {"de": "complete"})
    task(revisions, results)
    push("l10n-central/de", hgmo.pushlog("l10n-central/de")[-1]["id"])

    # A merge on en-US: two heads joined.
    base = hgmo.pushlog(en_us)[-1]["changesets"][-1]
    left = hgmo.commit(en_us, {"browser/menu.ftl": compare.REFERENCE["browser/menu.ftl"] + b"quit = Quit\n"},
                       parents=[base], message="Add quit")
    right = hgmo.commit(en_us, {"toolkit/about.ftl": compare.REFERENCE["toolkit/about.ftl"] + b"help = Help\n"},
                        parents=[base], message="Add help")
    hgmo.commit(en_us, {}, parents=[left, right], message="Merge quit and help")
    push(en_us, hgmo.push(en_us))

    # What else arrives on the hg exchange: obsolescence markers, new types, other repositories, garbage.
    messages.append(("hg", en_us, pulse.obsolete(en_us, hgmo.repo_url(en_us), [base])))
    messages.append(("hg", en_us, pulse.hgpush_body("made-up.1", en_us, {"repo_url": hgmo.repo_url(en_us)})))
    messages.append(("hg", "mozilla-central", pulse.changegroup("mozilla-central", "https://hg.mozilla.org/mozilla-central", [9])))
    messages.append(("hg", "l10n-central/de", b'{"payload": {"type": "changegroup.1", "data": {"pushlog_pushes": [{"pushid": "one"}]}}}'))
    return messages


class GitHubStory:
    """The GitHub part of the demo: a monorepo of locales and the en-US source, tracked; pushes in
    both formats, a [ci skip] push (no Taskcluster message), a push to another branch and a
    comparison naming them; then, after the worker has stored all that, a force push rewriting the
    last commit, and its comparison arriving before the push."""

    def __init__(self, github, queue):
        self.github = github
        self.queue = queue
        self.results = None
        self.reference = self.german = self.typo = None
        self.firefox = None
        self.translated = None  # (before, after) of the push translating a locale's files

    def first(self):
        from django.core.management import call_command

        from life.repositories import track
        from simulated import compare, firefox

        github = self.github
        revisions, _ = compare.publish_github_world(github, GITHUB_LOCALES)
        self.reference = revisions["de"][f"/{GITHUB_SOURCE}/"]
        # Firefox's files and channels next to the compare-locales configuration, as firefox-l10n-source has them.
        self.firefox = firefox.generate(**FIREFOX_WORLD)
        firefox.publish(github, self.firefox, source=GITHUB_SOURCE, l10n=GITHUB_L10N)
        for name in (GITHUB_SOURCE, GITHUB_L10N):
            track(github.repo_url(name))
        # One computed tree per _data/<channel>.json, every locale compared once.
        call_command("tree", "add-channels", GITHUB_SOURCE, "--locales", GITHUB_L10N, "--prefix", CHANNEL_PREFIX)
        base = github.tip(GITHUB_L10N)
        complete = {f"de/{path}": content for path, content in compare.LOCALE_KINDS["complete"].items()}
        self.german = github.commit(GITHUB_L10N, complete, message="de: complete", author="Anna <anna@example.com>")
        messages = self.push(base, self.german)
        self.typo = github.commit(GITHUB_L10N, {"it/browser/menu.ftl": ITALIAN_MENU},
                                  message="it: fix a typo [ci skip]", author="Luca <luca@example.com>")
        messages += self.push(self.german, self.typo, pusher=("flod", "flod@example.com"))
        side = github.commit(GITHUB_L10N, {"README.md": b"Experiments\n"}, branch="experiment", parents=[self.typo])
        messages += self.push("0" * 40, side, ref="refs/heads/experiment")
        output = compare.compare_kinds({code: "complete" for code in GITHUB_LOCALES})
        self.results = {code: {"summary": output["summary"][code], "details": compare.locale_details(output, code)}
                        for code in GITHUB_LOCALES}
        return messages + [self.task(self.typo)]

    def force_push(self):
        """The [ci skip] commit rewritten on top of its parent and force-pushed."""
        from simulated import firefox

        amended = self.github.commit(GITHUB_L10N, {"it/browser/menu.ftl": ITALIAN_MENU}, message="it: fix a typo",
                                     author="Luca <luca@example.com>", parents=[self.german])
        messages = [self.task(amended), *self.push(self.typo, amended)]
        # Pontoon translates three files of one locale: its completion changes in the computed trees.
        self.translated = firefox.push_locale(self.github, self.firefox, TRANSLATED_LOCALE, files=3, l10n=GITHUB_L10N)
        return messages + self.push(*self.translated)

    def task(self, l10n_revision):
        """A compare-locales task named as real ones are: elmo.json without a repository, the task's
        metadata.source the configuration's URL on GitHub."""
        from simulated import compare

        revisions = {code: {f"/{GITHUB_SOURCE}/": self.reference, f"/{GITHUB_L10N}/": l10n_revision}
                     for code in GITHUB_LOCALES}
        document = compare.elmo_document(self.results, revisions=revisions, drop_repository=True)
        task_id = self.queue.add_task(source=compare.github_source_url(self.github, GITHUB_SOURCE, self.reference))
        self.queue.add_artifact(task_id, 0, "public/elmo.json", document)
        for code, result in self.results.items():
            self.queue.add_artifact(task_id, 0, compare.artifact_name(code), result["details"])
        return ("task", None, self.queue.task_completed_message(task_id))

    def push(self, before, after, pusher=("mozilla-pontoon", "pontoon@example.com"), ref="refs/heads/main"):
        """What GitHub's republisher and Taskcluster publish for one push (Taskcluster: not for [ci skip])."""
        from simulated.github import push_payload, taskcluster_github_message, webhook_message

        payload = push_payload(self.github, GITHUB_L10N, before, after, pusher=pusher, ref=ref)
        messages = [("webhook", *webhook_message(payload))]
        taskcluster = taskcluster_github_message(payload)
        if taskcluster is not None:
            messages.append(("taskcluster-github", *taskcluster))
        return messages


def publish(connection, messages):
    from simulated import pulse
    from simulated.github import publish_taskcluster_github, publish_webhook

    for kind, routing_key, body in messages:
        if kind == "hg":
            pulse.publish_hgpush(connection, routing_key, body)
        elif kind == "webhook":
            publish_webhook(connection, routing_key, body)
        elif kind == "taskcluster-github":
            publish_taskcluster_github(connection, routing_key, body)
        else:
            pulse.publish_task_completed(connection, *body)


def run_demo(var_dir):
    """Build the world under ``var_dir``, publish it, run consume-pulse until idle; returns the report."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings
    from kombu import Connection

    from settings.pulse import EMBEDDED_BROKER
    from simulated.github import SimulatedGitHub
    from simulated.hgmo import SimulatedHgmo
    from simulated.taskcluster import SimulatedQueue
    from worker import topology
    from worker.config import brokers
    from worker.hgmo import KnownRepositories
    from worker.sources import sources

    counter = OutcomeCounter()
    logging.getLogger("worker").addHandler(counter)
    try:
        with (
            SimulatedHgmo(var_dir / "upstream") as hgmo,
            SimulatedGitHub(var_dir / "github") as github,
            SimulatedQueue() as queue,
            # The demo always runs on the embedded broker, whatever the environment says.
            override_settings(TASKCLUSTER_ROOT_URL=queue.root_url, PULSE_URL=EMBEDDED_BROKER, PULSE_USER="local",
                              TASKCLUSTER_EXTRA_SOURCES=()),
        ):
            broker = brokers(settings)[0]
            story = GitHubStory(github, queue)
            with Connection(broker.url) as connection:
                topology.declare(connection.default_channel, broker, sources(broker, KnownRepositories(ttl=0)))
                messages = build_world(hgmo, queue) + story.first()
                publish(connection, messages)
            print(f"published {len(messages)} messages on the embedded broker; running consume-pulse",
                  file=sys.stderr)
            call_command("consume-pulse", idle_exit=1)
            with Connection(broker.url) as connection:
                messages = story.force_push()
                publish(connection, messages)
            print(f"force-pushed {GITHUB_L10N}; published {len(messages)} messages; running consume-pulse again",
                  file=sys.stderr)
            call_command("consume-pulse", idle_exit=1)
    finally:
        logging.getLogger("worker").removeHandler(counter)
    return report(counter, story)


def report(counter, story=None):
    from l10n.models import COMPUTED, Active, Run
    from life.models import NULL_REVISION, Changeset, Push, Repository
    from worker.models import DeadLetter

    runs = {}
    for active in Active.objects.select_related("tree", "locale", "run"):
        runs.setdefault(active.tree.code, {})[active.locale.code] = active.run.completion
    computed = {}  # tree -> locale -> completion of each computed run, oldest first
    for run in Run.objects.filter(origin=COMPUTED).select_related("tree", "locale").order_by("id"):
        computed.setdefault(run.tree.code, {}).setdefault(run.locale.code, []).append(run.completion)
    translated = None
    if story is not None and story.translated is not None:
        push = Push.objects.filter(repository__name=GITHUB_L10N, changesets__revision=story.translated[1]).first()
        translated = {"locale": TRANSLATED_LOCALE, "before": story.translated[0], "after": story.translated[1],
                      "push_id": push.push_id if push else None}
    return {
        "messages": dict(counter.outcomes),
        "repositories": Repository.objects.count(),
        "git_repositories": Repository.objects.filter(kind=Repository.GIT).count(),
        "pushes": Push.objects.count(),
        "changesets": Changeset.objects.complete().exclude(revision=NULL_REVISION).count(),
        "placeholders_filled": counter.placeholders_filled,
        "placeholders_waiting": Changeset.objects.placeholders().count(),
        "runs": runs,
        "computed": computed,
        "translated": translated,
        "github_pushes": [(p.push_id, p.user or "(unknown)", [c.description.split("\n")[0] for c in p.changesets.all()])
                          for p in Push.objects.filter(repository__name=GITHUB_L10N).order_by("push_id")],
        "dead_letters": [f"{d.routing_key}: {d.error}" for d in DeadLetter.objects.order_by("created")],
    }


def print_report(result, database):
    print("\n== consume-pulse report")
    print("messages: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(result["messages"].items())))
    print(f"stored: {result['repositories']} repositories, {result['pushes']} pushes, "
          f"{result['changesets']} changesets ({result['placeholders_filled']} placeholders filled, "
          f"{result['placeholders_waiting']} still waiting for their push)")
    computed = result["computed"]
    for tree, completions in sorted(result["runs"].items()):
        if tree not in computed:
            print(f"compare-locales, active run per locale of {tree}: "
                  + ", ".join(f"{code} {completion}%" for code, completion in sorted(completions.items())))
    if computed:
        print("computed by the worker from the pushes, completion per channel and locale (→: after a push):")
    for tree, history in sorted(computed.items()):
        print(f"  {tree}: " + ", ".join(f"{code} " + " → ".join(f"{c}%" for c in completions)
                                        for code, completions in sorted(history.items())))
    translated = result["translated"]
    if translated:
        code = translated["locale"]
        changes = [f"{tree} {history[code][-2]}% → {history[code][-1]}%" for tree, history in sorted(computed.items())
                   if len(history.get(code, [])) > 1]
        print(f"push {translated['push_id']} translated 3 files of {code}: "
              + (", ".join(changes) if changes else "no completion changed"))
    print(f"{GITHUB_L10N} on GitHub ({result['git_repositories']} git repositories tracked):")
    for push_id, user, descriptions in result["github_pushes"]:
        shown = ", ".join(descriptions[:3]) + (f" and {len(descriptions) - 3} more" if len(descriptions) > 3 else "")
        print(f"  push {push_id} by {user}: {shown}")
    for letter in result["dead_letters"]:
        print(f"dead letter: {letter}")
    print(f"\nThe data stays in {database}: .venv/bin/python manage.py dbshell (with VAR_DIR=var/demo),")
    print("or the admin: VAR_DIR=var/demo .venv/bin/python manage.py createsuperuser, then runserver, /admin/.")
    print("Browse it: `make web`, then open http://127.0.0.1:8000/ (trees, pushes, status; JSON under /api/).")


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    for name in ("PULSE_URL", "PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "DATABASE_URL", "TASKCLUSTER_EXTRA_SOURCES"):
        os.environ.pop(name, None)  # the demo always runs on the embedded broker and SQLite
    import django

    django.setup()
    from django.conf import settings

    result = run_demo(settings.VAR_DIR)
    print_report(result, settings.DATABASES["default"]["NAME"])


if __name__ == "__main__":
    main()
