"""What a child process of the stack (or of the campaign) does before exec."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `signum` when the parent dies, even when it is killed outright
    (Linux only; elsewhere a child outlives a killed parent until it ends by itself)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signum)


def own_session_dying_with_parent() -> None:
    """For `preexec_fn`: a session of its own (a terminal's Ctrl-C to the parent's group does not reach it)
    and SIGTERM when the parent dies, even by SIGKILL, so it is never left behind."""
    os.setsid()
    die_with_parent(signal.SIGTERM)
