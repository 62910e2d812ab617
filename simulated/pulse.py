"""Publishing messages exactly as hg.mozilla.org and Taskcluster do (DESIGN §5.1, §5.3).

Used by tests, the demo and the benchmarks to feed a real (or embedded)
broker.
"""

import json
from datetime import datetime, timezone

from kombu import Exchange, Producer

from worker.exchanges import HGPUSHES as HGPUSH_EXCHANGE
from worker.exchanges import TASK_COMPLETED as TASK_COMPLETED_EXCHANGE


def hgpush_body(kind, repository, data):
    return {
        "payload": {"type": kind, "data": data},
        "_meta": {
            "exchange": HGPUSH_EXCHANGE,
            "routing_key": repository,
            "serializer": "json",
            "sent": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        },
    }


def changegroup(repository, repo_url, push_ids, heads=(), user="pusher@example.com", time=0):
    pushes = [
        {
            "pushid": push_id,
            "time": time,
            "user": user,
            "push_json_url": f"{repo_url}json-pushes?version=2&startID={push_id - 1}&endID={push_id}",
            "push_full_json_url": f"{repo_url}json-pushes?version=2&full=1&startID={push_id - 1}&endID={push_id}",
        }
        for push_id in push_ids
    ]
    data = {"repo_url": repo_url.rstrip("/"), "heads": list(heads), "source": "push", "pushlog_pushes": pushes}
    return hgpush_body("changegroup.1", repository, data)


def newrepo(repository, repo_url):
    return hgpush_body("newrepo.1", repository, {"repo_url": repo_url.rstrip("/")})


def obsolete(repository, repo_url, markers=()):
    return hgpush_body("obsolete.1", repository, {"repo_url": repo_url.rstrip("/"), "markers": list(markers)})


def publish_hgpush(connection, repository, body, content_type="application/json"):
    """Publish on exchange/hgpushes/v2 with the repository as routing key; ``body`` may be raw bytes."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    Producer(connection.default_channel).publish(
        payload,
        exchange=Exchange(HGPUSH_EXCHANGE, type="topic", passive=True),
        routing_key=repository,
        content_type=content_type,
        content_encoding="utf-8",
        delivery_mode=2,
        declare=[],
    )


def publish_task_completed(connection, body, routing_key, routes):
    """Publish like the Taskcluster queue: primary routing key, custom routes in the CC header.

    RabbitMQ routes on the CC header too; kombu's in-process broker does not,
    so there each route is published as a routing key of its own (a queue
    bound to one route still gets the message once).
    """
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    producer = Producer(connection.default_channel)
    keys = [routing_key] if connection.transport.driver_type == "amqp" else list(routes)
    for key in keys:
        producer.publish(
            payload,
            exchange=Exchange(TASK_COMPLETED_EXCHANGE, type="topic", passive=True),
            routing_key=key,
            content_type="application/json",
            content_encoding="utf-8",
            headers={"CC": list(routes)},
            delivery_mode=2,
            declare=[],
        )
