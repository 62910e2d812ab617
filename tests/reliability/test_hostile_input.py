"""Hostile input (DESIGN §7): every bad message or artifact becomes one clear dead letter, through
the real worker and the real RabbitMQ; the worker keeps running and no other row changes."""

import json
from dataclasses import dataclass

import pytest
from kombu import Connection

from l10n.models import Active, Run
from life.models import Changeset, File, Forest, Locale, Push, Repository, Tree
from simulated import pulse
from simulated.broker import RABBITMQ_HOST, RABBITMQ_PORT, scratch_vhost
from simulated.harness import declare_queues, run_worker
from simulated.taskcluster import SimulatedQueue
from tests.conftest import require_service
from tests.worker_support import configure
from worker.models import DeadLetter

A = "a" * 40
REPO = "l10n-central/de"
GECKO = "l10n/gecko-strings"


@dataclass(frozen=True)
class HgCase:
    name: str
    body: object  # dict (JSON-encoded) or raw bytes
    reason: str
    routing_key: str = REPO
    content_type: str = "application/json"


def changegroup(**data):
    return {"payload": {"type": "changegroup.1", "data": {"repo_url": "URL", "pushlog_pushes": [{"pushid": 1}],
                                                          **data}}}


HG_CASES = [
    HgCase("not json", b"{nope", "body is not JSON"),
    HgCase("invalid utf-8", b'{"payload": "\xff\xfe"}', "body is not JSON"),
    HgCase("empty body", b"", "body is not JSON"),
    HgCase("json null", b"null", "message body is not a JSON object"),
    HgCase("json number", b"42", "message body is not a JSON object"),
    HgCase("json list", b"[]", "message body is not a JSON object"),
    HgCase("wrong content type", changegroup(), "content type 'text/plain'", content_type="text/plain"),
    HgCase("xml content type", b"<push/>", "content type 'application/xml'", content_type="application/xml"),
    HgCase("payload missing", {"_meta": {}}, "payload is not a JSON object"),
    HgCase("payload a string", {"payload": "changegroup.1"}, "payload is not a JSON object"),
    HgCase("type missing", {"payload": {"data": {}}}, "payload.type is missing"),
    HgCase("type a number", {"payload": {"type": 5}}, "payload.type is missing or not a string"),
    HgCase("type empty", {"payload": {"type": ""}}, "payload.type is missing"),
    HgCase("type huge", {"payload": {"type": "x" * 500}}, "payload.type is missing or not a string"),
    HgCase("data a list", {"payload": {"type": "changegroup.1", "data": []}}, "payload.data is not a JSON object"),
    HgCase("pushes a string", changegroup(pushlog_pushes="1"), "neither a list nor an object"),
    HgCase("push not an object", changegroup(pushlog_pushes=[1]), "pushlog_pushes entry is not a JSON object"),
    HgCase("pushid a string", changegroup(pushlog_pushes=[{"pushid": "1"}]), "pushid '1' is not a positive"),
    HgCase("pushid negative", changegroup(pushlog_pushes=[{"pushid": -3}]), "pushid '-3' is not a positive"),
    HgCase("pushid zero", changegroup(pushlog_pushes=[{"pushid": 0}]), "pushid '0' is not a positive"),
    HgCase("pushid boolean", changegroup(pushlog_pushes=[{"pushid": True}]), "is not a positive integer"),
    HgCase("pushid huge", changegroup(pushlog_pushes=[{"pushid": 2**40}]), "is not a positive integer"),
    HgCase("pushid float", changegroup(pushlog_pushes=[{"pushid": 1.5}]), "is not a positive integer"),
    HgCase("pushid missing", changegroup(pushlog_pushes=[{}]), "pushid 'None' is not a positive"),
    HgCase("heads not a list", changegroup(heads=A), "heads is not a list of 40-hex"),
    HgCase("head short", changegroup(heads=["abc123"]), "heads is not a list of 40-hex"),
    HgCase("head not hex", changegroup(heads=["g" * 40]), "heads is not a list of 40-hex"),
    HgCase("head uppercase", changegroup(heads=["A" * 40]), "heads is not a list of 40-hex"),
    HgCase("repo_url a number", changegroup(repo_url=5), "repo_url is not a string"),
    HgCase("repo_url huge", changegroup(repo_url="https://x/" + "a" * 600), "repo_url is not a string"),
    HgCase("repo_url elsewhere", changegroup(repo_url="https://evil.example/l10n-central/de"),
           "is not the known URL of l10n-central/de"),
    HgCase("newrepo url elsewhere", {"payload": {"type": "newrepo.1", "data": {"repo_url": "https://evil.example/x"}}},
           "is not http://", routing_key="l10n-central/fr"),
    HgCase("newrepo not a locale", {"payload": {"type": "newrepo.1", "data": {}}}, "does not look like a BCP 47",
           routing_key="l10n-central/DE_de"),
    HgCase("routing key dotdot", changegroup(), "not a safe relative path", routing_key=".."),
    HgCase("routing key escape", changegroup(), "not a safe relative path", routing_key="l10n-central/../../etc"),
    HgCase("routing key absolute", changegroup(), "not a safe relative path", routing_key="/etc/passwd"),
    HgCase("routing key NUL", changegroup(), "not a safe relative path", routing_key="l10n-central/de\x00x"),
    HgCase("routing key newline", changegroup(), "not a safe relative path", routing_key="l10n-central/de\nx"),
    HgCase("routing key tab", changegroup(), "not a safe relative path", routing_key="l10n\tcentral/de"),
    HgCase("routing key space", changegroup(), "not a safe relative path", routing_key="l10n central/de"),
    HgCase("routing key backslash", changegroup(), "not a safe relative path", routing_key="l10n-central\\de"),
    HgCase("routing key hidden", changegroup(), "not a safe relative path", routing_key="l10n-central/.hg"),
    HgCase("routing key huge", changegroup(), "longer than 200", routing_key="a/" * 120),
    HgCase("deeply nested", b'{"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nests deeper than"),
    HgCase("nested list in data", {"payload": {"type": "x", "data": {"deep": json.loads("[" * 40 + "]" * 40)}}},
           "nests deeper than"),
    HgCase("oversized body", b'{"payload": {"type": "x", "pad": "' + b"x" * (1024 * 1024) + b'"}}',
           "larger than the 1048576-byte limit"),
]


def _world(hgmo):
    Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    hgmo.create_repo(REPO)
    hgmo.create_repo(GECKO)
    Repository.objects.create(name=REPO, url=hgmo.repo_url(REPO))
    Repository.objects.create(name=GECKO, url=hgmo.repo_url(GECKO))


def contract_rows():
    """Every row of the tables the web heads read."""
    return {
        model.__name__: sorted(map(repr, model.objects.values_list()))
        for model in (Locale, Forest, Repository, Changeset, File, Push, Tree, Run, Active)
    }


@pytest.fixture(scope="module")
def shared_broker():
    require_service("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    with scratch_vhost("hostile") as url:
        yield url


@pytest.fixture
def hostile_env(shared_broker, monkeypatch, settings):
    configure(monkeypatch, settings, PULSE_URL=shared_broker, PULSE_RETRY_DELAYS="1")
    return shared_broker


def run_one_and_get_dead_letter(before):
    worker = run_worker(max_messages=1)
    assert worker.handled == 1
    letter = DeadLetter.objects.get()
    assert contract_rows() == before  # nothing else changed
    return letter


@pytest.mark.django_db
@pytest.mark.parametrize("case", HG_CASES, ids=[case.name for case in HG_CASES])
def test_bad_hg_message_is_a_clear_dead_letter(case, hgmo, hostile_env):
    _world(hgmo)
    declare_queues()
    body = case.body
    if isinstance(body, dict):
        body = json.dumps(body).replace('"URL"', json.dumps(hgmo.repo_url(REPO))).encode()
    with Connection(hostile_env) as conn:
        pulse.publish_hgpush(conn, case.routing_key, body, content_type=case.content_type)
    before = contract_rows()
    requests_before = hgmo.requests_seen

    letter = run_one_and_get_dead_letter(before)

    assert case.reason in letter.error, letter.error
    assert letter.exchange == "exchange/hgpushes/v2"
    assert bytes(letter.body) == body[: len(bytes(letter.body))]
    assert hgmo.requests_seen == requests_before  # refused before contacting anything


@pytest.mark.django_db
def test_json_pushes_that_lies_is_a_dead_letter(hgmo, hostile_env):
    _world(hgmo)
    hgmo.commit_and_push(REPO, {"a": b"1"})
    hgmo.set_fault("lie", REPO)
    declare_queues()
    with Connection(hostile_env) as conn:
        pulse.publish_hgpush(conn, REPO, pulse.changegroup(REPO, hgmo.repo_url(REPO), [1]))
    before = contract_rows()

    letter = run_one_and_get_dead_letter(before)

    assert "not in the clone after pulling" in letter.error


# --- Taskcluster messages and artifacts --------------------------------------------

SUMMARY = {"changed": 1, "unchanged": 1, "missing": 1}


def elmo(**comparison):
    entry = {"locale": "de", "config": "_configs/browser.toml", "artifact": "public/compares/de.json",
             "revisions": {f"/{REPO}/": A}, "summary": SUMMARY, **comparison}
    return {"version": "1.0", "repository": "GECKO", "comparisons": [entry]}


TASK_MESSAGE_CASES = [
    ("not json", b"{{", "body is not JSON"),
    ("status missing", {"runId": 0}, "'status' is a required property"),
    ("task id short", {"status": {"taskId": "abc"}, "runId": 0}, "does not match"),
    ("task id escapes", {"status": {"taskId": "../../../../etc/passwd."}, "runId": 0}, "does not match"),
    ("task id not a string", {"status": {"taskId": 12}, "runId": 0}, "is not of type 'string'"),
    ("run id negative", {"status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": -1}, "less than the minimum"),
    ("run id a string", {"status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": "0"}, "is not of type 'integer'"),
    ("run id huge", {"status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": 10**6}, "greater than the maximum"),
    ("unknown message version", {"version": 2, "status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": 0},
     "1 was expected"),
]

ARTIFACT_CASES = [
    ("artifact not json", b"<html>", "body is not JSON"),
    ("artifact a list", b"[]", "is not of type 'object'"),
    ("unknown elmo version", {**elmo(), "version": "2.0"}, "version '2.0' is not supported"),
    ("comparisons missing", {"version": "1.0"}, "'comparisons' is a required property"),
    ("comparisons not a list", {"version": "1.0", "comparisons": {}}, "is not of type 'array'"),
    ("locale not a tag", elmo(locale="de_DE"), "does not look like a BCP 47 tag"),
    ("locale escapes", elmo(locale="../de"), "does not look like a BCP 47 tag"),
    ("locale missing", {**elmo(), "comparisons": [{"config": "c", "artifact": "public/x", "revisions": {},
                                                    "summary": {}}]}, "'locale' is a required property"),
    ("revision short", elmo(revisions={f"/{REPO}/": "abc"}), "is not 40 lowercase hex"),
    ("revision not hex", elmo(revisions={f"/{REPO}/": "z" * 40}), "is not 40 lowercase hex"),
    ("revision key relative", elmo(revisions={"l10n-central/de/": A}), "is not an absolute path"),
    ("revision key escapes", elmo(revisions={"/l10n/../../etc/": A}), "is not an absolute path"),
    ("negative count", elmo(summary={**SUMMARY, "missing": -1}), "less than the minimum"),
    ("huge count", elmo(summary={**SUMMARY, "changed": 10**15}), "greater than the maximum"),
    ("count a string", elmo(summary={**SUMMARY, "errors": "0"}), "is not of type 'integer'"),
    ("artifact name escapes", elmo(artifact="public/../../private/secret"), "not a public artifact name"),
    ("artifact name private", elmo(artifact="private/compare.json"), "not a public artifact name"),
    ("config absolute", elmo(config="/etc/passwd"), "is not a safe relative path"),
    ("repository not http", {**elmo(), "repository": "file:///etc/"}, "is not an http(s) URL"),
    ("repository unknown", {**elmo(), "repository": "https://hg.example/other/"}, "is not a known repository"),
    ("duplicate comparison", {**elmo(), "comparisons": elmo()["comparisons"] * 2}, "appears twice"),
    ("deeply nested artifact", b'{"version": ' + b"[" * 100 + b"]" * 100 + b"}", "nests deeper than"),
    ("oversized artifact", b'{"version": "1.0", "pad": "' + b"x" * (16 * 1024 * 1024) + b'"}', "larger than"),
]


@pytest.fixture
def queue():
    with SimulatedQueue() as server:
        yield server


def deliver_task(broker, body, queue_server, task_id="fN1SbArXTPSVFNUvaOlinQ"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with Connection(broker) as conn:
        pulse.publish_task_completed(conn, raw, f"primary.{task_id}.0.w.i.p.t.-.g._", ["route.project.l10n.elmo.v1"])


@pytest.mark.django_db
@pytest.mark.parametrize("name, body, reason", TASK_MESSAGE_CASES, ids=[c[0] for c in TASK_MESSAGE_CASES])
def test_bad_task_message_is_a_clear_dead_letter(name, body, reason, hgmo, queue, hostile_env, monkeypatch, settings):
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url)
    _world(hgmo)
    declare_queues()
    deliver_task(hostile_env, body, queue)
    before = contract_rows()

    letter = run_one_and_get_dead_letter(before)

    assert reason in letter.error, letter.error
    assert queue.requests_seen == 0  # refused before asking the Queue


@pytest.mark.django_db
@pytest.mark.parametrize("name, artifact, reason", ARTIFACT_CASES, ids=[c[0] for c in ARTIFACT_CASES])
def test_bad_artifact_is_a_clear_dead_letter(name, artifact, reason, hgmo, queue, hostile_env, monkeypatch, settings):
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url)
    _world(hgmo)
    task_id = queue.add_task(source=hgmo.repo_url(GECKO))
    if isinstance(artifact, dict):
        artifact = json.dumps(artifact).replace('"GECKO"', json.dumps(hgmo.repo_url(GECKO))).encode()
    queue.add_artifact(task_id, 0, "public/elmo.json", artifact)
    declare_queues()
    body, routing_key, routes = queue.task_completed_message(task_id)
    with Connection(hostile_env) as conn:
        pulse.publish_task_completed(conn, body, routing_key, routes)
    before = contract_rows()

    letter = run_one_and_get_dead_letter(before)

    assert reason in letter.error, letter.error
    assert letter.routing_key == routing_key


def publish_task(hostile_env, queue, hgmo, routes=None, cc=None):
    """A completed task with a valid elmo.json, announced with ``cc`` in the CC header (default: its routes)."""
    task_id = queue.add_task(source=hgmo.repo_url(GECKO), **({} if routes is None else {"routes": routes}))
    artifact = json.dumps(elmo()).replace('"GECKO"', json.dumps(hgmo.repo_url(GECKO))).encode()
    queue.add_artifact(task_id, 0, "public/elmo.json", artifact)
    declare_queues()
    body, routing_key, routes_published = queue.task_completed_message(task_id)
    with Connection(hostile_env) as conn:
        pulse.publish_task_completed(conn, body, routing_key, routes_published if cc is None else cc)
    return task_id


ROUTE_CASES = [
    ("no routes", []),
    ("another project's route", ["index.gecko.v2.l10n.compare.latest", "project.other.v1"]),
    ("route written with its prefix", ["route.project.l10n.elmo.v1"]),
    ("longer route", ["project.l10n.elmo.v1.extra"]),
    ("shorter route", ["project.l10n.elmo"]),
    ("wildcard as text", ["project.l10n.*", "#"]),
    ("case differs", ["Project.L10n.Elmo.V1"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, routes", ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_task_without_a_configured_route_is_a_clear_dead_letter(name, routes, hgmo, queue, hostile_env, monkeypatch,
                                                                settings):
    """The CC header claims the configured route (so RabbitMQ delivers it); the task's definition does not."""
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url)
    _world(hgmo)
    task_id = publish_task(hostile_env, queue, hgmo, routes=routes, cc=["route.project.l10n.elmo.v1"])
    before = contract_rows()

    letter = run_one_and_get_dead_letter(before)

    assert f"task {task_id} carries none of the configured routes (route.project.l10n.elmo.v1)" in letter.error
    assert queue.requests_seen == 1  # the definition: the artifact was never downloaded


STORAGE_CASES = [
    ("file", "file:///etc", "refused: it is not http(s)"),
    ("metadata service", "http://169.254.169.254/latest/meta-data", "refused: it is an internal address"),
    ("ipv6 loopback", "http://[::1]:9", "refused: it is an internal address"),
    ("private network by number", "http://167772161", "refused: it is an internal address"),
    ("userinfo trick", "http://s3.amazonaws.com@10.0.0.1", "refused: it carries credentials"),
    ("endless chain", "ROOT/hops/100", "more than 5 redirects"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, storage, reason", STORAGE_CASES, ids=[c[0] for c in STORAGE_CASES])
def test_artifact_redirect_elsewhere_is_a_clear_dead_letter(name, storage, reason, hgmo, queue, hostile_env,
                                                            monkeypatch, settings):
    configure(monkeypatch, settings, TASKCLUSTER_ROOT_URL=queue.root_url)
    _world(hgmo)
    queue.storage_url = storage.replace("ROOT", queue.root_url)
    publish_task(hostile_env, queue, hgmo)
    before = contract_rows()

    letter = run_one_and_get_dead_letter(before)

    assert reason in letter.error, letter.error
