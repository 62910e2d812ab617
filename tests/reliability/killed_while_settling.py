"""``consume-pulse`` that kills itself (SIGKILL) at one point of settling its first delivery.

    python tests/reliability/killed_while_settling.py POINT MARKER consume-pulse [options]

POINT is where it dies: ``before-settling`` (the outcome is known, nothing of it is recorded),
``after-publish`` (the retry copy is confirmed by the broker, the delivery not acked),
``after-dead-letter`` (the dead letter is committed, the delivery not acked) or ``after-ack``. It dies
once: MARKER, a file, is made just before, and a worker started while it exists does not die.
Patched here, in a process of the test's own, so the worker's code holds no hook for tests.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.core.management import execute_from_command_line  # noqa: E402

from worker.models import DeadLetter  # noqa: E402
from worker.settling import DeferredAcks, Settler  # noqa: E402

POINT, MARKER = sys.argv[1], Path(sys.argv[2])


def die(point):
    if point == POINT and not MARKER.exists():
        MARKER.write_text(point)
        os.kill(os.getpid(), signal.SIGKILL)


def before(point, function):
    def patched(*args, **kwargs):
        die(point)
        return function(*args, **kwargs)
    return patched


def after(point, function):
    def patched(*args, **kwargs):
        result = function(*args, **kwargs)
        die(point)
        return result
    return patched


Settler.settle = before("before-settling", Settler.settle)
Settler._publish = after("after-publish", Settler._publish)
DeadLetter.record = classmethod(after("after-dead-letter", DeadLetter.record.__func__))
DeferredAcks.ack = after("after-ack", DeferredAcks.ack)

execute_from_command_line([sys.argv[0], *sys.argv[3:]])
