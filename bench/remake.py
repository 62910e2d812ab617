"""Re-making queues deployed without PULSE_QUEUE_MAX_LENGTH: how long it takes, and that nothing is lost.

Declares --queues quorum queues the way earlier versions did (no bound),
each holding --messages messages of 1 KB, on a scratch vhost of the local
RabbitMQ; then declares them as configured now (``worker.remaking``: each
one's messages move to a holding queue and back, a batch per transaction),
and counts and compares the bodies each queue holds afterwards.

Usage: .venv/bin/python bench/remake.py [--queues 20] [--messages 4000]
"""

import argparse
import logging
import time

from kombu import Connection, Exchange, Producer, Queue

from common import report
from simulated.broker import scratch_vhost
from worker import remaking
from worker.config import Broker
from worker.consumer import connect

OLD = {"x-queue-type": "quorum", "x-expires": 7 * 24 * 3600 * 1000}


def queue(broker, index, arguments):
    return Queue(f"queue/guest/worker/bench{index}", exchange=Exchange(broker.own_exchange, type="direct"),
                 routing_key=f"bench.{index}", durable=True, auto_delete=False, queue_arguments=arguments)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--messages", type=int, default=4000)
    options = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with scratch_vhost("bench") as url:
        broker = Broker(url=url, user="guest")
        new = {**OLD, "x-max-length": broker.max_length, "x-overflow": "drop-head"}
        with Connection(url, transport_options={"confirm_publish": True}) as conn:
            channel = conn.default_channel
            Exchange(broker.own_exchange, type="direct", durable=True)(channel).declare()
            producer = Producer(channel)
            for index in range(options.queues):
                queue(broker, index, OLD)(channel).declare()
                for n in range(options.messages):
                    producer.publish(f"{index}:{n}:".encode().ljust(1024, b"x"), exchange=broker.own_exchange,
                                     routing_key=f"bench.{index}", delivery_mode=2, declare=[])
        started = time.monotonic()
        with connect(broker) as conn:
            amqp = conn.default_channel.connection
            for index in range(options.queues):
                remaking.declare(amqp, broker, queue(broker, index, new), f"bench.{index}")
        seconds = time.monotonic() - started
        kept = intact = 0
        with Connection(url) as conn:
            channel = conn.default_channel
            for index in range(options.queues):
                bodies = set()
                while (message := channel.basic_get(queue(broker, index, new).name, no_ack=True)) is not None:
                    bodies.add(bytes(message.body) if isinstance(message.body, bytes) else message.body.encode())
                    kept += 1
                intact += bodies == {f"{index}:{n}:".encode().ljust(1024, b"x") for n in range(options.messages)}
    report({
        "queues": options.queues,
        "messages_per_queue": options.messages,
        "remake_seconds": seconds,
        "messages_per_second": options.queues * options.messages / seconds,
        "messages_kept": kept,
        "messages_expected": options.queues * options.messages,
        "queues_intact": intact,
    })


if __name__ == "__main__":
    main()
