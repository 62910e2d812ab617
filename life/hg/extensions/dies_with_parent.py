"""Mercurial extension: this hg process dies with the worker that started it.

A worker killed with SIGKILL cannot stop its children; an orphaned
``hg clone`` would go on writing into a staging directory with no timeout.
The worker passes its process id as ``l10n-worker.parent-pid``; this asks
Linux to send SIGKILL to hg when that parent goes away (PR_SET_PDEATHSIG),
and exits at once if it has already gone. Elsewhere than Linux it does
nothing.
"""

import ctypes
import os
import signal

from mercurial import registrar

testedwith = b"7.2.4"

configtable = {}
configitem = registrar.configitem(configtable)
configitem(b"l10n-worker", b"parent-pid", default=None)

_PR_SET_PDEATHSIG = 1


def uisetup(ui):
    parent = ui.configint(b"l10n-worker", b"parent-pid")
    if parent is None:
        return
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The worker may have died between starting hg and this line.
    if os.getppid() != parent:
        os._exit(255)
