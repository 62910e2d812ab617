"""A mixed stream of Pulse messages over a simulated world, for reliability tests and the soak bench.

New repositories, pushes (some announced, some only recoverable from a
later push), compare-locales tasks (some before their pushes), duplicates,
pushes for repositories nobody tracks, obsolescence markers, unknown types
and malformed messages, shuffled the way several upstream repositories
interleave. Each message says what a correct worker does with it.
"""

import json
import random
from dataclasses import dataclass

from . import pulse

FOREST = "l10n-central"
REFERENCE = "l10n/gecko-strings"
CONFIG = "_configs/browser.toml"


@dataclass(frozen=True)
class Message:
    kind: str  # "hg" or "task"
    routing_key: str
    body: bytes
    expect: str  # "stored", "skipped" or "dead-lettered" (a duplicate of a stored one is "skipped")
    routes: tuple = ()


def seed_database(hgmo):
    """The rows an operator creates: the forest and the reference repository."""
    from life.models import Forest, Repository

    Forest.objects.get_or_create(name=FOREST, defaults={"url": hgmo.url + FOREST + "/"})
    Repository.objects.get_or_create(name=REFERENCE, defaults={"url": hgmo.repo_url(REFERENCE)})


def _hg(name, body, expect):
    return Message("hg", name, json.dumps(body).encode() if isinstance(body, dict) else body, expect)


def build(hgmo, queue, *, locales=10, rounds=10, unknown=320, seed=0):
    """Create the upstream world and return the messages announcing it, in delivery order."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    codes = [f"{letters[i // 26 % 26]}{letters[i % 26]}" for i in range(locales)]
    hgmo.create_repo(REFERENCE)
    messages = []
    for code in codes:
        name = f"{FOREST}/{code}"
        hgmo.create_repo(name)
        hgmo.commit(name, {"browser/app.ftl": f"hello = {code}\n".encode()}, message=f"Start {code}")
        messages.append(_hg(name, pulse.newrepo(name, hgmo.repo_url(name)), "stored"))

    for round_ in range(rounds):
        node, push_id = hgmo.commit_and_push(REFERENCE, {"browser/app.ftl": f"hello = Hello {round_}\n".encode()},
                                             message=f"en-US round {round_}")
        batch = [_hg(REFERENCE, pulse.changegroup(REFERENCE, hgmo.repo_url(REFERENCE), [push_id]), "stored")]
        revisions = {}
        for code in codes:
            name = f"{FOREST}/{code}"
            locale_node, locale_push = hgmo.commit_and_push(
                name, {"browser/app.ftl": f"hello = {code} {round_}\n".encode()}, message=f"{code} round {round_}")
            revisions[code] = {f"/{REFERENCE}/": node, f"/{name}/": locale_node}
            # One push in five is never announced: the next one recovers it.
            if rng.random() > 0.2 or round_ == rounds - 1:
                batch.append(_hg(name, pulse.changegroup(name, hgmo.repo_url(name), [locale_push]), "stored"))
        task_id = queue.add_task(source=hgmo.repo_url(REFERENCE))
        queue.add_artifact(task_id, 0, "public/elmo.json", _elmo(rng, revisions, hgmo.repo_url(REFERENCE)))
        body, routing_key, routes = queue.task_completed_message(task_id)
        # Builds race the pushes: the comparison often arrives before the locale pushes.
        batch.insert(rng.randrange(len(batch) + 1), Message("task", routing_key, json.dumps(body).encode(),
                                                             "stored", tuple(routes)))
        messages.extend(batch)

    stored = list(messages)
    for original in rng.sample(stored, len(stored) // 5):
        messages.insert(rng.randrange(messages.index(original) + 1, len(messages) + 1),
                        Message(original.kind, original.routing_key, original.body, "skipped", original.routes))
    for i in range(unknown):
        messages.insert(rng.randrange(len(messages) + 1), unknown_push(i))
    for i in range(20):
        kind = "obsolete.1" if i % 2 else "future-type.1"
        body = pulse.hgpush_body(kind, REFERENCE, {"repo_url": hgmo.repo_url(REFERENCE)})
        messages.insert(rng.randrange(len(messages) + 1), _hg(REFERENCE, body, "skipped"))
    for i in range(30):
        bad = [b"{not json %d" % i, json.dumps({"payload": {"type": "changegroup.1", "data": {
            "pushlog_pushes": [{"pushid": f"p{i}"}]}}}).encode()][i % 2]
        routing_key = f"{FOREST}/aa" if i % 3 else f"{FOREST}/../../etc{i}"
        messages.insert(rng.randrange(len(messages) + 1), Message("hg", routing_key, bad, "dead-lettered"))
    return messages


def unknown_push(index):
    name = f"try/unknown{index % 500}"
    return _hg(name, pulse.changegroup(name, f"https://hg.mozilla.org/{name}", [index + 1]), "skipped")


def pad(messages, total):
    """``messages`` spread evenly among pushes for repositories nobody tracks, ``total`` in all
    (most of what hg.mozilla.org announces is of no interest to this worker)."""
    step = total / len(messages)
    padded, taken = [], 0
    for index in range(total):
        if taken < len(messages) and index >= int(taken * step):
            padded.append(messages[taken])
            taken += 1
        else:
            padded.append(unknown_push(index))
    return padded


def _elmo(rng, revisions, repository):
    comparisons = []
    for code, compared in sorted(revisions.items()):
        changed, missing = rng.randrange(50, 100), rng.randrange(0, 20)
        comparisons.append({
            "locale": code,
            "config": CONFIG,
            "artifact": f"public/compares/{code}.json",
            "revisions": compared,
            "summary": {"changed": changed, "changed_w": changed * 3, "missing": missing, "missing_w": missing * 2,
                        "unchanged": 5, "unchanged_w": 5, "errors": 0, "warnings": 0, "report": 0, "obsolete": 0,
                        "keys": 0},
        })
    return {"version": "1.0", "compare-locales": "9.0.5", "repository": repository, "comparisons": comparisons}


def publish(connection, messages):
    for message in messages:
        if message.kind == "hg":
            pulse.publish_hgpush(connection, message.routing_key, message.body)
        else:
            pulse.publish_task_completed(connection, message.body, message.routing_key, message.routes)
