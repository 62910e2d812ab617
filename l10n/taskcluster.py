"""Reading a task's definition and artifacts from a Taskcluster Queue.

URLs are built by the official ``taskcluster`` client, so they follow the
deployment's conventions; the requests are made with our own session,
because the sync client has no timeout and does not follow the queue's 303
redirect to artifact storage. The API is only trusted on the deployment's
own origin; the artifact redirect may lead to storage on any public
http(s) host (``plumbing.urls.PublicHttp``).
"""

import taskcluster

from plumbing.http import get_bytes, get_json, http_session
from plumbing.urls import PublicHttp, SameOrigin

MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
ARTIFACT_FAILURES = {
    404: "artifact is missing (HTTP 404)",
    410: "artifact has expired (HTTP 410)",
    424: "artifact is an error artifact (HTTP 424): the task failed to upload it",
}


class QueueClient:
    def __init__(self, root_url, session=None):
        self.root_url = root_url
        self.queue = taskcluster.Queue({"rootUrl": root_url})
        self.session = session or http_session()
        self.api_redirects = SameOrigin(root_url)
        self.artifact_redirects = PublicHttp(root_url)

    def task(self, task_id):
        return get_json(self.session, self.queue.buildUrl("task", task_id), redirects=self.api_redirects)

    def status(self, task_id):
        return get_json(self.session, self.queue.buildUrl("status", task_id), redirects=self.api_redirects)

    def artifact(self, task_id, run_id, name):
        url = self.queue.buildUrl("getArtifact", task_id, run_id, name)
        return get_bytes(self.session, url, limit=MAX_ARTIFACT_BYTES, permanent_statuses=ARTIFACT_FAILURES,
                         redirects=self.artifact_redirects)
