"""Running hg and git: a hard timeout, and nothing left running after it.

The command runs in a session of its own, so a timeout kills what it
started too (``git fetch`` runs ``git-remote-http`` and ``index-pack``), not
only the command. A timeout is a TransientError. ``run`` waits for the end
and leaves judging a failure to the caller; ``stream`` hands over the output
as it comes (``git log`` of a whole history) and raises on a failure.
"""

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
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


@contextlib.contextmanager
def stream(command, *, env, timeout, what, input_lines=None):
    """Run ``command`` within ``timeout`` seconds, yielding its output (a binary stream) to read as it
    comes; the block reads it to the end. Leaving the block by an exception ends the command; a
    failure or the timeout is a TransientError once the output is read.

    ``input_lines`` (bytes of whole lines, one or many per item) are written to the command's input
    from a thread, each item flushed as it comes, for commands that answer as they read (``git
    cat-file --batch``): both pipes have bounded buffers, so writing all before reading could wait
    forever, and an item held in a buffer would never be answered.
    """
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors,
                                       stdin=subprocess.DEVNULL if input_lines is None else subprocess.PIPE,
                                       start_new_session=True)
        except OSError as error:
            raise TransientError(f"{what}: cannot run {command[0]} ({error.strerror})") from None
        expired = threading.Event()
        timer = threading.Timer(timeout, _expire, (process, expired))
        timer.start()
        if input_lines is not None:
            threading.Thread(target=_write_lines, args=(process.stdin, input_lines), name=f"{command[0]}-input",
                             daemon=True).start()
        try:
            yield process.stdout
        except BaseException:
            timer.cancel()
            _kill_session(process)  # the reader stopped early, or failed: nothing more is wanted
            raise
        timer.cancel()
        process.stdout.close()
        returncode = process.wait()
        if expired.is_set():
            raise TransientError(f"{what} timed out after {timeout:g}s")
        if returncode != 0:
            errors.seek(0)
            raise TransientError(f"{what} failed: {Finished(returncode, b'', errors.read()).last_error_line()}")


def _write_lines(stream, items):
    try:
        with stream:
            for item in items:
                stream.write(item)
                stream.flush()
    except (BrokenPipeError, ValueError):
        pass  # the command was ended: its reader says why


def _expire(process, expired):
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill_session(process):
    """Kill the command and everything it started (the leader is not reaped yet: its group id is still ours)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Not drained: something that left the session could hold the pipes open forever.
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
