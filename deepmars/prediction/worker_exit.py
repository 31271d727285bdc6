"""Worker processes end when their parent does, however the parent died (``kill -9`` included).

A decode worker waits on its task queue; if the main process is killed it is re-parented and waits
forever, holding its memory and the catalog's file handles. Two ways out, the first that applies:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the worker the moment its parent
  exits, even while the worker is inside a long decode in C code;
- elsewhere: a daemon thread checks every ``poll_s`` seconds whether the parent changed (an orphan is
  re-parented) and ends the process. A check between chunks alone would not do: an idle worker is
  blocked on its queue and never reaches it.

Either way the parent is checked once more after the request, in case it died before it took effect.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHAN_EXIT_CODE = 1


def request_kill_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent exits; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(ORPHAN_EXIT_CODE)  # no clean-up: the parent that would use it is gone


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Make this (child) process end when ``parent_pid``, its parent, ends."""
    if not request_kill_with_parent():
        threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), name="deepmars-parent-watch",
                         daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(ORPHAN_EXIT_CODE)
