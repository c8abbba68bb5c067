"""Child processes that stop when the process that started them dies (Linux only).

``ivr dev`` starts Redis and ``ivr worker`` as children. Ctrl-C or SIGTERM stops them in
order, but a SIGKILLed (or crashed) ``ivr dev`` runs no cleanup, and its children used
to live on, holding the port and serving a queue nobody watches. The kernel's
"parent death signal" (``prctl(PR_SET_PDEATHSIG)``) sends them SIGTERM instead, which
Redis and the RQ worker both take as a clean shutdown. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def stop_with_parent(parent_pid: int) -> bool:
    """Get SIGTERM when the parent dies; False if ``parent_pid`` is no longer our parent.

    The check after the request closes the race where the parent died first: then no
    signal will ever come, and the caller should stop at once.
    """
    return _arm(_prctl(), parent_pid)


def preexec_stop_with_parent() -> Callable[[], None]:
    """A ``Popen(preexec_fn=...)`` doing :func:`stop_with_parent` in the child.

    Resolved before the fork, so the child only makes one system call before exec. Use
    it only while the parent has no other threads (``preexec_fn`` is unsafe otherwise);
    a child started later can call :func:`stop_with_parent` itself.
    """
    prctl, parent = _prctl(), os.getpid()

    def arm() -> None:
        if not _arm(prctl, parent):
            os._exit(1)

    return arm


def _arm(prctl: Callable[[int, int], int] | None, parent_pid: int) -> bool:
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent_pid
