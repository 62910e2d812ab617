"""Taskcluster task completions (``exchange/taskcluster-queue/v1/task-completed``, DESIGN §1.2 and §5.3).

The body is the message itself (no envelope); the task is identified from
the body, never from the routing key (the delivery's routing key is the
task's primary key even when it reached us through a custom route in the
CC header). Which deployment a message came from is the source's
parameter: each Taskcluster deployment is consumed through a source of its
own, so nothing in the message has to say it.
"""

from dataclasses import dataclass
from typing import ClassVar

from l10n.ingest import configured_routes, ingest_task
from plumbing.jsondoc import decode_json, validate_schema

from . import exchanges
from .dispatch import skipped, stored

EXCHANGE = exchanges.TASK_COMPLETED
_TASK_ID = r"^[A-Za-z0-9_-]{22}$"

TASK_COMPLETED_SCHEMA = {
    "type": "object",
    "required": ["status", "runId"],
    "properties": {
        "version": {"const": 1},
        "runId": {"type": "integer", "minimum": 0, "maximum": 1000},
        "status": {
            "type": "object",
            "required": ["taskId"],
            "properties": {"taskId": {"type": "string", "pattern": _TASK_ID}},
        },
    },
}


@dataclass(frozen=True)
class TaskCompleted:
    root_url: str
    task_id: str
    run_id: int
    kind: ClassVar[str] = "task-completed"  # a dispatch.Message: kind and subject

    @property
    def subject(self):
        return f"{self.task_id}/{self.run_id}"


def parse_task_completed(value, root_url):
    """A TaskCompleted from the decoded message of deployment ``root_url``."""
    validate_schema(value, TASK_COMPLETED_SCHEMA, "task-completed message")
    return TaskCompleted(root_url, value["status"]["taskId"], value["runId"])


def parse(delivery, root_url):
    return parse_task_completed(decode_json(delivery.body, delivery.content_type), root_url)


def handle(message):
    # The CC header of the delivery proves nothing: the task's own definition must carry a configured route.
    result = ingest_task(message.root_url, message.task_id, message.run_id, routes=configured_routes(message.root_url))
    if not result.created:
        return skipped("runs already stored")
    return stored(f"{result.created} runs, {result.activated} active, from {message.root_url}")
