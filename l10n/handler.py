"""Handling task-completed messages from Taskcluster (DESIGN §1.2).

The consumer tells which deployment a message came from in a header that it
sets itself (never trusting one that arrives from the broker).
"""

from dataclasses import dataclass

from django.conf import settings

from life.jsondoc import decode_json
from worker.config import TASK_COMPLETED_EXCHANGE
from worker.dispatch import register, skipped, stored
from worker.messages import TASKCLUSTER_ROOT_URL_HEADER

from .elmo import parse_task_completed
from .ingest import ingest_task

@dataclass(frozen=True)
class TaskMessage:
    root_url: str
    task_id: str
    run_id: int
    kind = "task-completed"

    @property
    def subject(self):
        return f"{self.task_id}/{self.run_id}"


def parse_task_message(delivery):
    completed = parse_task_completed(decode_json(delivery.body, delivery.content_type))
    root_url = delivery.headers.get(TASKCLUSTER_ROOT_URL_HEADER) or settings.TASKCLUSTER_ROOT_URL
    return TaskMessage(str(root_url), completed.task_id, completed.run_id)


def handle_task_message(message):
    result = ingest_task(message.root_url, message.task_id, message.run_id)
    if not result.created:
        return skipped("runs already stored")
    return stored(f"{result.created} runs, {result.activated} active, from {message.root_url}")


register(TASK_COMPLETED_EXCHANGE, parse_task_message, handle_task_message)
