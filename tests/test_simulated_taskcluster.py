"""The simulated Taskcluster Queue, driven by the real ``taskcluster`` client, and real
compare-locales results. Plain pytest: runs with ``-p no:django`` too."""

import json
import threading
import time

import pytest
import requests
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure
from taskcluster.utils import slugid

from l10n.models import SUMMARY_COUNTS
from simulated import compare
from simulated.taskcluster import SimulatedQueue

ELMO = "public/elmo.json"


# conftest's autouse fixtures need Django; nothing here does, so these stand in for them.
@pytest.fixture
def no_worker_left_behind():
    yield


@pytest.fixture
def repository_base():
    yield


@pytest.fixture
def queue():
    with SimulatedQueue() as server:
        yield server


@pytest.fixture
def client(queue):
    # No retries: a failure in these tests should show at once, not after back-off.
    return taskcluster.Queue({"rootUrl": queue.root_url, "maxRetries": 0})


def test_root_url_is_local_and_has_no_trailing_slash(queue):
    assert queue.root_url == f"http://127.0.0.1:{queue.port}"
    assert SimulatedQueue().start().stop() is None  # stop() twice is harmless too


def test_real_client_reads_task_definition(queue, client):
    task_id = queue.add_task(source="https://hg.mozilla.org/l10n/gecko-strings/", tags={"kind": "l10n"})

    task = client.task(task_id)

    assert slugid.decode(task_id)  # a real slug
    assert task["metadata"]["source"] == "https://hg.mozilla.org/l10n/gecko-strings/"
    assert task["routes"] == ["index.gecko.v2.l10n.compare.latest", "project.l10n.elmo.v1"]
    assert task["taskQueueId"] == f"{task['provisionerId']}/{task['workerType']}"
    assert task["created"].endswith("Z") and task["created"] < task["deadline"] < task["expires"]
    assert task["tags"] == {"kind": "l10n"}
    assert set(task) >= {"schedulerId", "taskGroupId", "payload", "extra", "metadata"}


def test_real_client_reads_status(queue, client):
    task_id = queue.add_task(runs=2)

    status = client.status(task_id)["status"]

    assert status["taskId"] == task_id and status["state"] == "completed"
    assert [run["runId"] for run in status["runs"]] == [0, 1]
    assert {run["state"] for run in status["runs"]} == {"completed"}
    assert all(run["reasonResolved"] == "completed" for run in status["runs"])
    assert set(status["runs"][0]) >= {"workerGroup", "workerId", "scheduled", "started", "resolved", "takenUntil"}


def test_unknown_task_is_404(client):
    for method in (client.task, client.status):
        with pytest.raises(TaskclusterRestFailure) as failure:
            method(taskcluster.slugId())
        assert failure.value.status_code == 404


def test_artifact_redirects_to_storage(queue, client):
    task_id = queue.add_task()
    queue.add_artifact(task_id, 0, ELMO, {"version": "1.0", "comparisons": []})
    url = client.buildUrl("getArtifact", task_id, 0, ELMO)
    assert url == f"{queue.root_url}/api/queue/v1/task/{task_id}/runs/0/artifacts/public%2Felmo.json"

    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 303
    assert redirect.json() == {"storageType": "s3", "url": redirect.headers["Location"]}
    assert redirect.headers["Location"].startswith(queue.root_url + "/storage/")
    # The sync client does not follow the redirect: it hands back the 303's body.
    assert client.getArtifact(task_id, 0, ELMO) == redirect.json()

    response = requests.get(url, timeout=5)
    assert [r.status_code for r in response.history] == [303]
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == {"version": "1.0", "comparisons": []}


def test_artifact_names_are_decoded_once_and_latest_run_is_served(queue, client):
    task_id = queue.add_task(runs=2)
    name = "public/a b%2Fü.txt"  # the %2F is part of the name
    queue.add_artifact(task_id, 0, name, b"first run", "text/plain")
    queue.add_artifact(task_id, 1, name, b"second run", "text/plain")

    assert requests.get(client.buildUrl("getArtifact", task_id, 0, name), timeout=5).content == b"first run"
    latest = requests.get(client.buildUrl("getLatestArtifact", task_id, name), timeout=5)
    assert latest.content == b"second run" and latest.headers["Content-Type"] == "text/plain"
    assert requests.get(client.buildUrl("getArtifact", task_id, 0, "public/a b/ü.txt"), timeout=5).status_code == 404


@pytest.mark.parametrize("state, status", [("missing", 404), ("expired", 410), ("error", 424)])
def test_artifact_states(queue, client, state, status):
    task_id = queue.add_task()
    queue.add_artifact(task_id, 0, ELMO, {"version": "1.0"})
    storage = requests.get(client.buildUrl("getArtifact", task_id, 0, ELMO), allow_redirects=False,
                           timeout=5).headers["Location"]

    queue.set_artifact_state(task_id, 0, ELMO, state)

    response = requests.get(client.buildUrl("getArtifact", task_id, 0, ELMO), timeout=5)
    assert response.status_code == status and not response.history
    body = response.json()
    if state == "error":
        assert set(body) == {"reason", "message"}  # the error artifact's own, not an API error
    else:
        assert body["code"] in ("ResourceNotFound", "ResourceExpired") and body["message"]
    assert requests.get(storage, timeout=5).status_code == 404  # storage no longer has it either

    queue.set_artifact_state(task_id, 0, ELMO, "ok")
    assert requests.get(client.buildUrl("getArtifact", task_id, 0, ELMO), timeout=5).json() == {"version": "1.0"}


def test_artifact_never_added_or_of_unknown_run_is_404(queue, client):
    task_id = queue.add_task()
    queue.add_artifact(task_id, 0, ELMO, b"{}")
    assert requests.get(client.buildUrl("getArtifact", task_id, 0, "public/other.json"), timeout=5).status_code == 404
    assert requests.get(client.buildUrl("getArtifact", task_id, 3, ELMO), timeout=5).status_code == 404
    queue.set_artifact_state(task_id, 0, "public/never.json", "error")
    assert requests.get(client.buildUrl("getArtifact", task_id, 0, "public/never.json"), timeout=5).status_code == 424


def test_task_completed_message(queue):
    task_id = queue.add_task(routes=["index.a.b", "project.l10n.elmo.v1"], tags={"kind": "l10n"}, runs=2)

    body, routing_key, cc = queue.task_completed_message(task_id, 1)

    status = body["status"]
    run = status["runs"][1]
    assert body["version"] == 1 and body["runId"] == 1 and body["task"] == {"tags": {"kind": "l10n"}}
    assert (body["workerGroup"], body["workerId"]) == (run["workerGroup"], run["workerId"])
    provisioner, worker_type = status["taskQueueId"].split("/")
    assert routing_key == ".".join(["primary", task_id, "1", run["workerGroup"], run["workerId"], provisioner,
                                    worker_type, status["schedulerId"], status["taskGroupId"], "_"])
    assert cc == ["route.index.a.b", "route.project.l10n.elmo.v1"]
    assert json.loads(json.dumps(body)) == body
    assert queue.task_completed_message(task_id)[0]["runId"] == 0
    with pytest.raises(ValueError):
        queue.task_completed_message(task_id, 2)


def test_error_fault_answers_500_and_counts_requests(queue, client):
    task_id = queue.add_task()
    before = queue.requests_seen
    queue.set_fault("error")
    with pytest.raises(TaskclusterRestFailure) as failure:
        client.task(task_id)
    assert failure.value.status_code == 500
    queue.set_fault(None)
    assert client.task(task_id)["metadata"]
    assert queue.requests_seen == before + 2


def test_hang_fault_waits_and_stop_releases_it(queue):
    task_id = queue.add_task()
    url = taskcluster.Queue({"rootUrl": queue.root_url}).buildUrl("task", task_id)
    queue.hang_seconds = 0.5
    queue.set_fault("hang")
    started = time.monotonic()
    assert requests.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.5

    queue.hang_seconds = 60
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(url, timeout=0.5)
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(requests.get(url, timeout=30).status_code))
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    queue.stop()
    waiting.join(10)
    assert answers == [503] and time.monotonic() - started < 5


def test_restart_on_the_same_port(queue, client):
    task_id = queue.add_task()
    port = queue.port
    queue.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(client.buildUrl("task", task_id), timeout=5)
    queue.start(port)
    assert client.task(task_id)["metadata"]


# compare-locales


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    config = compare.write_reference(root / "en-US")
    kinds = {"de": "complete", "fr": "partial", "it": "error", "es-ES": "obsolete"}
    for code, kind in kinds.items():
        compare.write_locale(root / "l10n" / code, kind)
    return compare.run_compare_locales(config, root / "l10n", list(kinds))


def test_compare_locales_output_shape(compared):
    assert set(compared) == {"summary", "details"}
    assert set(compared["summary"]) == {"de", "fr", "it", "es-ES"}
    for summary in compared["summary"].values():
        assert set(summary) == set(SUMMARY_COUNTS)


def test_compare_locales_sees_each_kind(compared):
    summary = compared["summary"]
    assert summary["de"]["missing"] == summary["de"]["errors"] == summary["de"]["obsolete"] == 0
    assert summary["de"]["changed"] > 0 and summary["de"]["keys"] > 0  # keys: the access key
    assert summary["fr"]["missing"] > 0 and summary["fr"]["unchanged"] > 0
    assert summary["it"]["errors"] > 0 and summary["it"]["warnings"] > 0
    assert summary["es-ES"]["obsolete"] > 0 and summary["es-ES"]["missing"] == 0

    assert compare.locale_details(compared, "de") == {}
    fr = json.dumps(compare.detail_artifact(compared, "fr"))
    assert "missingFile" in fr and "missingEntity" in fr and '"it' not in fr
    assert "Unparsed content" in json.dumps(compare.locale_details(compared, "it"))


def test_elmo_json_counts_are_compare_locales_own(compared):
    revisions = {code: {"/l10n/gecko-strings/": "a" * 40, f"/l10n-central/{code}/": "b" * 40}
                 for code in compared["summary"]}

    document = compare.elmo_json(compared, revisions_for_locale=revisions.__getitem__)

    assert document["version"] == "1.0" and document["compare-locales"] == "9.0.5"
    assert document["repository"] == "https://hg.mozilla.org/l10n/gecko-strings/"
    assert [c["locale"] for c in document["comparisons"]] == sorted(compared["summary"])
    for comparison in document["comparisons"]:
        code = comparison["locale"]
        assert comparison["summary"] == compared["summary"][code]
        assert comparison["revisions"] == revisions[code]
        assert comparison["config"] == "_configs/browser.toml"
        assert comparison["artifact"] == compare.artifact_name(code)
    assert "repository" not in compare.elmo_json(compared, repository=None, revisions_for_locale=revisions.get)


def test_elmo_json_round_trips_through_the_queue(queue, compared):
    document = compare.elmo_json(compared, revisions_for_locale=lambda code: {})
    task_id = queue.add_task()
    queue.add_artifact(task_id, 0, ELMO, document)
    url = taskcluster.Queue({"rootUrl": queue.root_url}).buildUrl("getArtifact", task_id, 0, ELMO)
    assert requests.get(url, timeout=5).json() == document
