"""Running hg and git for network work: a hard timeout, and nothing left running after it.

The command runs in a session of its own, so a timeout kills what it
started too (``git fetch`` runs ``git-remote-http`` and ``index-pack``), not
only the command. A timeout is a TransientError; how a failure reads is the
caller's to judge from the result.
"""

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass

from .errors import TransientError


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes

    def last_error_line(self):
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit {self.returncode}"


def run(command, *, env, timeout, what, input=None):
    """Run ``command`` to the end, within ``timeout`` seconds; returns a Finished."""
    try:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as error:
        raise TransientError(f"{what}: cannot run {command[0]} ({error.strerror})") from None
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise TransientError(f"{what} timed out after {timeout:g}s") from None
    except BaseException:
        _kill_session(process)
        raise
    return Finished(process.returncode, stdout, stderr)


def _kill_session(process):
    """Kill the command and everything it started (the leader is not reaped yet: its group id is still ours)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Not drained: something that left the session could hold the pipes open forever.
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
