"""A simulated Taskcluster Queue for tests, the demo and the benchmarks.

Taskcluster cannot run here, so it is stood in for at the protocol level
(DESIGN §8): an HTTP server on 127.0.0.1 answering the paths the official
``taskcluster`` client builds under ``<rootUrl>/api/queue/v1/`` —
``task/<id>``, ``task/<id>/status``, ``task/<id>/runs/<run>/artifacts/<name>``
and ``task/<id>/artifacts/<name>`` (latest run) — with the bodies and status
codes the real queue sends. An artifact answers 303 See Other with the
storage URL in ``Location`` (and in a JSON body), as the queue does for S3
artifacts; that opaque storage URL is served here too. A missing artifact
answers 404, an expired one 410 and an error artifact 424.

``task_completed_message()`` builds the Pulse message the queue publishes on
``exchange/taskcluster-queue/v1/task-completed`` (DESIGN §5.3), so a test can
publish it to a real broker.

Reliability tests inject faults with ``set_fault("error" | "hang")``;
refused connections are ``stop()`` and a later ``start(port=same_port)``.

Where the artifact redirect leads is ``storage_url`` (the queue's own
origin by default). Real storage is on another host: point ``storage_url``
at one (``http://s3.example``) and the queue serves that host's storage to
clients that use the queue as their HTTP proxy for it. ``/hops/<n>/<path>``
redirects ``n`` more times before reaching ``<path>`` (which may be a whole
URL: storage that redirects onwards), for redirect chains; any other URL
(``file:///…``, an internal address) plays a hostile queue.
"""

import json
import re
import threading
from datetime import datetime, timedelta, timezone

import taskcluster

from .httpserver import SimulatedService

API = "/api/queue/v1/"
FAULTS = (None, "error", "hang")
ARTIFACT_STATES = ("ok", "missing", "expired", "error")
ROUTES = ("index.gecko.v2.l10n.compare.latest", "project.l10n.elmo.v1")
PROVISIONER_ID, WORKER_TYPE = "proj-l10n", "b-linux"
WORKER_GROUP = "us-east1"
RETRIES = 5


def _iso(moment):
    # As JavaScript's Date.toJSON() writes it, which is what the queue sends.
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SimulatedQueue(SimulatedService):
    thread_name = "simulated-queue"

    def __init__(self):
        super().__init__()
        self._fault = None
        self.storage_url = None  # None: the queue's own origin
        # Handler threads read what tests write; dict operations are atomic, the counter is not.
        self._lock = threading.Lock()
        self._tasks = {}  # task id -> {"definition": {...}, "runs": n}
        self._artifacts = {}  # (task id, run id, name) -> _Artifact
        self._storage = {}  # opaque storage key -> (task id, run id, name)

    @property
    def root_url(self):
        return self._base_url()  # a rootUrl has no trailing slash

    def set_fault(self, mode):
        """From now on every request (API and storage) answers 500 ("error"), or waits
        ``hang_seconds`` and then answers ("hang"); None clears."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}")
        self._fault = mode

    # What the queue knows

    def add_task(self, task_id=None, *, source="https://hg.mozilla.org/l10n/gecko-strings/", created=None,
                 routes=ROUTES, runs=1, tags=None):
        """Register a completed task with ``runs`` completed runs (the later ones reruns); returns its id."""
        if runs < 1:
            raise ValueError("a completed task has at least one run")
        task_id = task_id or taskcluster.slugId()
        created = created or datetime.now(timezone.utc)
        definition = {
            "provisionerId": PROVISIONER_ID,
            "workerType": WORKER_TYPE,
            "taskQueueId": f"{PROVISIONER_ID}/{WORKER_TYPE}",
            "schedulerId": "-",
            "projectId": "none",
            "taskGroupId": task_id,  # a task created on its own is its own group
            "dependencies": [],
            "requires": "all-completed",
            "routes": list(routes),
            "priority": "lowest",
            "retries": RETRIES,
            "created": _iso(created),
            "deadline": _iso(created + timedelta(days=1)),
            "expires": _iso(created + timedelta(days=28)),
            "scopes": [],
            "payload": {
                "image": "mozillareleases/compare-locales",
                "command": ["compare-locales", "--json", "/builds/worker/artifacts/elmo.json"],
                "maxRunTime": 3600,
                "artifacts": {"public": {"type": "directory", "path": "/builds/worker/artifacts"}},
            },
            "metadata": {
                "name": "l10n: compare-locales",
                "description": "Compare the localizations against en-US for the dashboards",
                "owner": "l10n-drivers@mozilla.com",
                "source": source,
            },
            "tags": {"kind": "l10n"} if tags is None else dict(tags),
            "extra": {},
        }
        with self._lock:
            self._tasks[task_id] = {"definition": definition, "runs": runs}
        return task_id

    def add_artifact(self, task_id, run_id, name, content, content_type="application/json"):
        """Store an artifact of run ``run_id``; ``content`` is bytes, or a dict or list to send as JSON."""
        body = json.dumps(content).encode() if isinstance(content, (dict, list)) else bytes(content)
        with self._lock:
            self._put_artifact(task_id, run_id, name, content_type, body, "ok")

    def set_artifact_state(self, task_id, run_id, name, state):
        """"ok", "missing" (404), "expired" (410) or "error" (an error artifact: 424)."""
        if state not in ARTIFACT_STATES:
            raise ValueError(f"unknown artifact state {state!r}")
        with self._lock:
            artifact = self._artifacts.get((task_id, run_id, name))
            if artifact is None:
                self._put_artifact(task_id, run_id, name, "application/json", b"", state)
            else:
                artifact.state = state

    def _put_artifact(self, task_id, run_id, name, content_type, body, state):
        old = self._artifacts.get((task_id, run_id, name))
        # Storage URLs are opaque, like signed S3 URLs: nothing in them needs escaping.
        key = old.key if old else taskcluster.slugId()
        self._artifacts[(task_id, run_id, name)] = _Artifact(key, content_type, body, state)
        self._storage[key] = (task_id, run_id, name)

    def status(self, task_id):
        """The task status structure (what ``status`` answers under "status")."""
        with self._lock:
            task = self._tasks[task_id]
        definition = task["definition"]
        created = datetime.strptime(definition["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
        runs = []
        for run_id in range(task["runs"]):
            # A completed task runs again only when someone reruns it; each run completes on its own.
            scheduled = created + timedelta(minutes=10 * run_id)
            started = scheduled + timedelta(seconds=30)
            runs.append({
                "runId": run_id,
                "state": "completed",
                "reasonCreated": "scheduled" if run_id == 0 else "rerun",
                "reasonResolved": "completed",
                "workerGroup": WORKER_GROUP,
                "workerId": f"i-0abc{run_id:013x}",
                "takenUntil": _iso(started + timedelta(minutes=20)),
                "scheduled": _iso(scheduled),
                "started": _iso(started),
                "resolved": _iso(started + timedelta(minutes=5)),
            })
        return {
            "taskId": task_id,
            **{key: definition[key] for key in ("provisionerId", "workerType", "taskQueueId", "schedulerId",
                                                "projectId", "taskGroupId", "deadline", "expires")},
            "retriesLeft": RETRIES,  # reruns do not use up retries
            "state": "completed",
            "runs": runs,
        }

    def task_completed_message(self, task_id, run_id=0):
        """(body, routing key, CC routes) as the queue publishes on
        exchange/taskcluster-queue/v1/task-completed when run ``run_id`` completes."""
        status = self.status(task_id)
        if not 0 <= run_id < len(status["runs"]):
            raise ValueError(f"task {task_id} has no run {run_id}")
        definition = self._tasks[task_id]["definition"]
        run = status["runs"][run_id]
        body = {"version": 1, "status": status, "runId": run_id, "workerGroup": run["workerGroup"],
                "workerId": run["workerId"], "task": {"tags": dict(definition["tags"])}}
        routing_key = ".".join([
            "primary", task_id, str(run_id), run["workerGroup"], run["workerId"], definition["provisionerId"],
            definition["workerType"], definition["schedulerId"], definition["taskGroupId"], "_",
        ])
        return body, routing_key, ["route." + route for route in definition["routes"]]

    # HTTP

    def __call__(self, environ, start_response):
        with self._lock:
            self.requests_seen += 1
        mode = self._fault
        if mode == "hang" and self._stopping.wait(self.hang_seconds):
            return _error(start_response, "503 Service Unavailable", "ServiceUnavailable", "simulated queue stopped")
        if mode == "error":
            return _error(start_response, "500 Internal Server Error", "InternalServerError", "simulated failure")
        # wsgiref has already percent-decoded the path, into latin-1 code points as PEP 3333 wants:
        # decoding again would turn an artifact named "a%2Fb" into "a/b".
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        if environ.get("REQUEST_METHOD") != "GET":
            return _error(start_response, "404 Not Found", "ResourceNotFound", "only GET is simulated")
        if path.startswith(("http://", "https://")):  # a proxy request (absolute form): only for the storage host
            path = self._storage_path(path)
            if path is None:
                return _error(start_response, "502 Bad Gateway", "BadGateway", "not a simulated host")
        if path.startswith("/hops/"):
            return self._hop(path, environ, start_response)
        if path.startswith("/storage/"):
            return self._serve_storage(path[len("/storage/"):], start_response)
        if not path.startswith(API):
            return _error(start_response, "404 Not Found", "ResourceNotFound", f"no such route {path}")
        parts = path[len(API):].split("/")
        if parts[0] != "task" or len(parts) < 2:
            return _error(start_response, "404 Not Found", "ResourceNotFound", f"no such route {path}")
        task_id = parts[1]
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            return _error(start_response, "404 Not Found", "ResourceNotFound",
                          f"`{task_id}` does not correspond to a task that exists.\n"
                          "Are you sure this task has been submitted?")
        if len(parts) == 2:
            return _json(start_response, "200 OK", task["definition"])
        if parts[2:] == ["status"]:
            return _json(start_response, "200 OK", {"status": self.status(task_id)})
        if len(parts) >= 6 and parts[2] == "runs" and parts[4] == "artifacts" and parts[3].isdecimal():
            return self._redirect_to_artifact(task_id, int(parts[3]), "/".join(parts[5:]), start_response)
        if len(parts) >= 4 and parts[2] == "artifacts":
            return self._redirect_to_artifact(task_id, task["runs"] - 1, "/".join(parts[3:]), start_response)
        return _error(start_response, "404 Not Found", "ResourceNotFound", f"no such route {path}")

    def _redirect_to_artifact(self, task_id, run_id, name, start_response):
        with self._lock:
            artifact = self._artifacts.get((task_id, run_id, name))
        state = "missing" if artifact is None else artifact.state
        if state == "missing":
            return _error(start_response, "404 Not Found", "ResourceNotFound", "Artifact not found")
        if state == "expired":
            return _error(start_response, "410 Gone", "ResourceExpired", f"Artifact {name} has expired")
        if state == "error":
            # Not the usual API error: the queue answers with the error artifact's own reason and message.
            return _json(start_response, "424 Failed Dependency",
                         {"reason": "file-missing-on-worker", "message": f"Artifact {name} not found on the worker"},
                         [("x-taskcluster-artifact-storage-type", "error")])
        location = f"{self.storage_url or self.root_url}/storage/{artifact.key}"
        return _json(start_response, "303 See Other", {"storageType": "s3", "url": location},
                     [("Location", location), ("x-taskcluster-artifact-storage-type", "s3")])

    def _storage_path(self, url):
        storage = (self.storage_url or "").split("://", 1)[-1].split("/", 1)[0]
        scheme, rest = url.split("://", 1)
        host, _, path = rest.partition("/")
        return f"/{path}" if storage and scheme == "http" and host == storage else None

    def _hop(self, path, environ, start_response):
        count, _, rest = path[len("/hops/"):].partition("/")
        if not count.isdecimal():
            return _error(start_response, "404 Not Found", "ResourceNotFound", f"no such route {path}")
        query = environ.get("QUERY_STRING", "")
        if int(count):
            location = f"/hops/{int(count) - 1}/{rest}"
        else:
            location = rest if re.match(r"[a-z]+:/", rest) else f"/{rest}"
        location += f"?{query}" if query else ""
        start_response("302 Found", [("Location", location), ("Content-Length", "0")])
        return [b""]

    def _serve_storage(self, key, start_response):
        with self._lock:
            artifact = self._artifacts.get(self._storage.get(key))
        if artifact is None or artifact.state != "ok":
            # S3's own answer, not the queue's: XML.
            body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
            start_response("404 Not Found", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", [("Content-Type", artifact.content_type),
                                  ("Content-Length", str(len(artifact.body)))])
        return [artifact.body]


class _Artifact:
    __slots__ = ("key", "content_type", "body", "state")

    def __init__(self, key, content_type, body, state):
        self.key, self.content_type, self.body, self.state = key, content_type, body, state


def _json(start_response, status, value, headers=()):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


def _error(start_response, status, code, message):
    """An error as the queue's API layer reports it."""
    return _json(start_response, status, {"code": code, "message": message,
                                          "requestInfo": {"time": _iso(datetime.now(timezone.utc))}})
