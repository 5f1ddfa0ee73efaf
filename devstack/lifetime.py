"""Child processes that die with the process that started them, even when it is SIGKILLed.

A launcher that is killed outright runs no cleanup: its children, each in its own session so
that Ctrl-C reaches only the launcher, would live on and keep their ports. On Linux the kernel
can send a child a signal when its parent dies (prctl PR_SET_PDEATHSIG), set by the child
itself between fork and exec, where nothing can kill the parent first unnoticed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` (and asyncio's subprocess functions): the child
    is SIGKILLed when this process dies, however it dies. None, so the child lives on as
    before, where that cannot be had: not Linux, or not the main thread.

    The kernel sends the signal when the *thread* that forked the child exits, not the
    process: from a short-lived thread (a pool's), the child would die with that thread.
    Only the main thread lives as long as the process, so only it binds its children.
    It binds the child it starts, not the child's own children: those are the child's to stop.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    # Loaded here, before the fork: the child only calls it, it loads nothing.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def bind_to_parent() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) refused")
        # The parent may have died between the fork and the prctl: then nothing will signal.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return bind_to_parent
