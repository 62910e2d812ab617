"""Computed comparisons on a Firefox-shaped world: six channel trees from nothing, then what a push costs.

Builds the world itself (simulated/firefox.py: a reference of ~100 files and
~5,000 messages in the formats Firefox uses, with ``_data/<channel>.json`` for
six channels; 30 locales at 60-100 % in a monorepo, with parse errors), serves
it from the simulated GitHub, tracks both git repositories with the worker's
own functions on PostgreSQL, and measures in the same run:

- full: ``tree add-channels`` (six trees, every locale of every channel, from
  nothing), against the baseline: ``moz-l10n compare --json --source
  _data/<ch>.json <all locale dirs>`` once per channel over a checkout of the
  same commits (``full_ratio``; target <= 0.5).
- pushes, end to end through the real ``consume-pulse`` process, fed through
  RabbitMQ in the Taskcluster GitHub format. The comparison work a push adds
  is what the worker logs for it (``compare_seconds``: from the stored push to
  the stored comparisons of every tree, inside the message's transaction:
  listing, reading, parsing, comparing, storing runs); the message-to-ack
  durations with and without the trees are printed beside it. As a share of
  the full figure: ``locale_push_share`` (3 files of one locale; target <= 0.01,
  the same at 3 locales as at 30: both are measured, each on its own world
  with the same reference, and divided by the same full figure, the one at
  30 locales) and ``reference_push_share`` (5 files and every
  ``_data/*.json``: every locale of every channel; target <= 0.1).
- ``runs_added_by_unchanged_push``: a push rewording 3 files of a locale (no
  number changes) adds no Run (target 0).
- SQL queries of one push with the trees, at 3 and at 30 locales (flat in the
  number of locales), counted on the same handler run in this process.
- what a first ``tree add-channels`` costs at Firefox's real size (156
  locales, ~320 files, ~15,800 messages), extrapolated linearly in locales
  times messages (each distinct file content is parsed once, whatever the
  number of channels).

Usage: [DATABASE_URL=…] .venv/bin/python bench/compare_push.py [--locales 30] [--few-locales 3]
       [--files 100] [--messages 5000] [--pushes 5] [--seed 0]
(PostgreSQL by default; a scratch copy of the named database is created and dropped; RabbitMQ on
127.0.0.1:5672, a scratch vhost.)
"""

import argparse
import io
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kombu import Connection

from common import report, scratch_database
from l10n.models import Run
from life.repositories import track
from plumbing import memo
from settings.pulse import user_of
from simulated import firefox
from simulated.broker import scratch_vhost
from simulated.github import SimulatedGitHub, publish_taskcluster_github, push_payload, taskcluster_github_message
from simulated.harness import WorkerProcess, declare_queues, run_worker, wait_until

SOURCE, L10N = firefox.SOURCE, firefox.L10N
PONTOON = ("mozilla-pontoon", "pontoon@example.com")
# Firefox today (firefox-l10n-source's main.json: 323 files, 15,761 messages; 156 locales).
FIREFOX_LOCALES, FIREFOX_MESSAGES = 156, 15_800


def log(text):
    print(f"# {text}", file=sys.stderr, flush=True)


class Pushes:
    """Pushes to the world's repositories, each announced on RabbitMQ (Taskcluster's GitHub format) and
    handled by a ``consume-pulse`` process; ``push()`` returns the message-to-ack seconds it logged."""

    def __init__(self, github, world, broker_url, scratch):
        self.github, self.world, self.broker_url, self.scratch = github, world, broker_url, scratch
        self.worker = None
        self.handled = 0
        self.compare_seconds = None  # what the worker logged for the last push's comparisons

    def start(self, name):
        self.worker = WorkerProcess("--idle-exit", "600", log_path=self.scratch / f"{name}.log")
        self.handled = 0

    def stop(self):
        self.worker.signal(signal.SIGTERM)
        assert self.worker.wait(120) == 0, self.worker.output()[-3000:]
        self.worker = None

    def locale(self, code, reword=False):
        return self._announce(L10N, *firefox.push_locale(self.github, self.world, code, files=3, reword=reword))

    def reference(self):
        return self._announce(SOURCE, *firefox.push_reference_update(self.github, self.world, files=5))

    def _announce(self, name, before, after):
        routing_key, body = taskcluster_github_message(push_payload(self.github, name, before, after, pusher=PONTOON))
        with Connection(self.broker_url) as conn:
            publish_taskcluster_github(conn, routing_key, body)
        if self.worker is None:  # in this process, for the query count: on this thread's connection
            run_worker(max_messages=1, threads=0)
            return None
        self.handled += 1
        wait_until(lambda: len(self._events("outcome")) >= self.handled, timeout=600)
        event = self._events("outcome")[self.handled - 1]
        assert event["outcome"] == "stored", event
        comparisons = self._events("compare_seconds")
        self.compare_seconds = comparisons[-1]["compare_seconds"] if len(comparisons) == self.handled else None
        return event["duration"]

    def _events(self, field):
        return [json.loads(line) for line in self.worker.output().splitlines()
                if line.startswith("{") and f'"{field}": ' in line]


def baseline(github, scratch, tips):
    """moz-l10n compare once per channel over a checkout of the commits the trees compared: {channel: seconds}."""
    source = firefox.checkout(github.git_dir(SOURCE), tips[SOURCE], scratch / "baseline" / "source")
    l10n = firefox.checkout(github.git_dir(L10N), tips[L10N], scratch / "baseline" / "l10n")
    locale_dirs = sorted(path for path in l10n.iterdir() if path.is_dir())
    seconds = {}
    for channel in firefox.CHANNELS:
        started = time.perf_counter()
        output = firefox.moz_l10n_compare(source / "_data" / f"{channel}.json", locale_dirs)
        seconds[channel] = time.perf_counter() - started
        assert len(output) == len(locale_dirs), sorted(output)
    return seconds


def measure(args, locales, scratch, with_baseline):
    """One world of ``locales`` locales, from nothing: its figures."""
    scratch.mkdir()
    memo.forget_everything()  # what this process learnt of the other world's database
    world = firefox.generate(files=args.files, messages=args.messages, locales=locales, seed=args.seed)
    codes = list(world.locales)
    figures = {"main_messages": sum(len(ids) for ids in world.channel_data("main").values()),
               "main_files": len(world.channel_data("main"))}
    with (
        SimulatedGitHub(scratch / "github") as github,
        scratch_vhost("bench") as broker_url,
        scratch_database() as vendor,
    ):
        figures["database"] = vendor
        settings.REPOSITORY_BASE = scratch / "clones"
        settings.PULSE_URL, settings.PULSE_USER = broker_url, user_of(broker_url)
        settings.BACKFILL_INTERVAL = 0  # no backfill may store a push before its message does
        os.environ.update(PULSE_URL=broker_url, LOG_FORMAT="json", BACKFILL_INTERVAL="0")
        firefox.publish(github, world)
        for name in (SOURCE, L10N):
            track(github.repo_url(name))
        declare_queues()
        pushes = Pushes(github, world, broker_url, scratch)

        # Without any computed tree: what storing such pushes costs.
        pushes.start("without-trees")
        pushes.locale(codes[-1])  # the worker's first message pays for its warming up: not measured
        plain_locale = [pushes.locale(codes[i % len(codes)]) for i in range(args.pushes)]
        plain_reference = pushes.reference()
        pushes.stop()
        log(f"{locales} locales: pushes without trees {statistics.median(plain_locale):.3f}s, "
            f"reference {plain_reference:.3f}s")

        # Six channel trees from nothing.
        tips = {name: github.tip(name) for name in (SOURCE, L10N)}
        started = time.perf_counter()
        call_command("tree", "add-channels", SOURCE, "--locales", L10N, "--prefix", "firefox", stdout=io.StringIO(),
                     stderr=io.StringIO())
        figures["full_seconds"] = time.perf_counter() - started
        figures["runs_after_full"] = Run.objects.count()
        log(f"{locales} locales: add-channels {figures['full_seconds']:.2f}s, {figures['runs_after_full']} runs")
        if with_baseline:
            per_channel = baseline(github, scratch, tips)
            figures["baseline_seconds"] = sum(per_channel.values())
            figures.update({f"baseline_seconds_{channel}": seconds for channel, seconds in per_channel.items()})
            log(f"{locales} locales: moz-l10n over six channels {figures['baseline_seconds']:.2f}s")

        # With the trees: the same kinds of pushes, then one that changes no number.
        pushes.start("with-trees")
        pushes.locale(codes[-1])  # warming up, as above
        computed_locale, compare_seconds = [], []
        for i in range(args.pushes):
            computed_locale.append(pushes.locale(codes[i % len(codes)]))
            compare_seconds.append(pushes.compare_seconds)
        runs = Run.objects.count()
        pushes.locale(codes[-1], reword=True)
        figures["runs_added_by_unchanged_push"] = Run.objects.count() - runs
        computed_reference = pushes.reference()
        figures["reference_compare_seconds"] = pushes.compare_seconds
        pushes.stop()
        figures["locale_compare_seconds"] = statistics.median(compare_seconds)
        figures["locale_push_seconds_plain"] = statistics.median(plain_locale)
        figures["locale_push_seconds"] = statistics.median(computed_locale)
        figures["reference_push_seconds_plain"] = plain_reference
        figures["reference_push_seconds"] = computed_reference
        log(f"{locales} locales: pushes with trees {figures['locale_push_seconds']:.3f}s, "
            f"reference {computed_reference:.3f}s")

        # Queries of one push of each kind with the trees, on the handler run in this process.
        for kind, push in (("locale", lambda: pushes.locale(codes[0])), ("reference", pushes.reference)):
            with CaptureQueriesContext(connection) as queries:
                push()
            figures[f"sql_queries_{kind}_push"] = len(queries)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locales", type=int, default=30)
    parser.add_argument("--few-locales", type=int, default=3, help="the second world, to show the push cost is flat")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pushes", type=int, default=5, help="locale pushes measured with and without the trees")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger().handlers[:] = [logging.NullHandler()]

    with tempfile.TemporaryDirectory(prefix="bench-compare-push-") as tmp:
        few = measure(args, args.few_locales, Path(tmp) / "few", with_baseline=False)
        many = measure(args, args.locales, Path(tmp) / "many", with_baseline=True)

    full = many["full_seconds"]
    shares = {n: figures["locale_compare_seconds"] / full for n, figures in ((args.few_locales, few), (args.locales, many))}
    # Linear in locales times messages: every distinct file content is parsed once for all six channels.
    scale = FIREFOX_LOCALES / args.locales * FIREFOX_MESSAGES / many["main_messages"]
    figures = {
        "database": many["database"],
        "locales": args.locales,
        "files": many["main_files"],
        "messages": many["main_messages"],
        "channels": len(firefox.CHANNELS),
        **{name: value for name, value in many.items() if name.startswith("baseline_seconds_")},
        "runs_after_full": many["runs_after_full"],
        f"full_seconds_{args.few_locales}": few["full_seconds"],
        f"locale_push_seconds_plain_{args.few_locales}": f"{few['locale_push_seconds_plain']:.3f}",
        f"locale_push_seconds_{args.few_locales}": f"{few['locale_push_seconds']:.3f}",
        f"locale_push_seconds_plain_{args.locales}": f"{many['locale_push_seconds_plain']:.3f}",
        f"locale_push_seconds_{args.locales}": f"{many['locale_push_seconds']:.3f}",
        "reference_push_seconds_plain": f"{many['reference_push_seconds_plain']:.3f}",
        "reference_push_seconds": f"{many['reference_push_seconds']:.3f}",
        f"locale_compare_seconds_{args.few_locales}": f"{few['locale_compare_seconds']:.4f}",
        f"locale_compare_seconds_{args.locales}": f"{many['locale_compare_seconds']:.4f}",
        "reference_compare_seconds": f"{many['reference_compare_seconds']:.4f}",
        "full_seconds": full,
        "baseline_seconds": many["baseline_seconds"],
        "ratio": full / many["baseline_seconds"],
        "full_ratio": full / many["baseline_seconds"],
        f"locale_push_share_{args.few_locales}": f"{shares[args.few_locales]:.4f}",
        f"locale_push_share_{args.locales}": f"{shares[args.locales]:.4f}",
        "locale_push_share": f"{max(shares.values()):.4f}",
        "reference_push_share": f"{many['reference_compare_seconds'] / full:.4f}",
        "runs_added_by_unchanged_push": max(few["runs_added_by_unchanged_push"], many["runs_added_by_unchanged_push"]),
        f"sql_queries_locale_push_{args.few_locales}": few["sql_queries_locale_push"],
        f"sql_queries_locale_push_{args.locales}": many["sql_queries_locale_push"],
        f"sql_queries_reference_push_{args.few_locales}": few["sql_queries_reference_push"],
        f"sql_queries_reference_push_{args.locales}": many["sql_queries_reference_push"],
        "firefox_size_full_seconds_estimate": full * scale,
        "firefox_size_baseline_seconds_estimate": many["baseline_seconds"] * scale,
    }
    report(figures)


if __name__ == "__main__":
    main()
