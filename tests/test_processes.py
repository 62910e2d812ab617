"""plumbing.processes: what hg and git run under. A timeout leaves nothing running behind it."""

import os
import sys
import time

import pytest

from plumbing import processes
from plumbing.errors import TransientError

# Starts a grandchild that keeps the pipes open and reports its pid, then waits forever.
SPAWNS_A_GRANDCHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "w") as pid_file:
    pid_file.write(str(child.pid))
time.sleep(600)
"""


def is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(30)
def test_a_timeout_kills_the_command_and_what_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(TransientError, match=r"cloning x timed out after 1s"):
        processes.run([sys.executable, "-c", SPAWNS_A_GRANDCHILD, str(pid_file)], env=dict(os.environ),
                      timeout=1, what="cloning x")
    grandchild = int(pid_file.read_text())
    # SIGKILL is sent before run() returns, but the kernel may take a moment to finish the process.
    deadline = time.monotonic() + 10
    while is_running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(grandchild)


def test_a_failure_is_returned_with_its_last_error_line():
    done = processes.run([sys.executable, "-c", "import sys; sys.stderr.write('warming up\\nno such revision\\n'); "
                          "sys.exit(3)"], env=dict(os.environ), timeout=30, what="pull")
    assert (done.returncode, done.last_error_line()) == (3, "no such revision")


def test_input_reaches_the_command_and_its_output_comes_back():
    done = processes.run([sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"],
                         env=dict(os.environ), timeout=30, what="echo", input=b"abc")
    assert (done.returncode, done.stdout) == (0, b"ABC")


def test_a_missing_program_is_a_transient_error_that_names_it():
    with pytest.raises(TransientError, match=r"fetch: cannot run /nonexistent/git \(No such file or directory\)"):
        processes.run(["/nonexistent/git"], env={}, timeout=30, what="fetch")
