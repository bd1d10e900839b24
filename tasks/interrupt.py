"""The campaign's stop request: set once on SIGINT/SIGTERM, watched by every wait of the campaign.

A blocked thread cannot be interrupted from outside, so every loop that waits (polls, probes, samples,
sleeps between them) asks `stop_requested()` or sleeps with `pause()`, and ends its work as
interrupted within one bounded request.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM) while this piece of work was under way."""


def request_stop() -> None:
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def pause(seconds: float) -> bool:
    """Sleep up to `seconds`; True when a stop was requested (the sleep then ends at once)."""
    return _STOP.wait(max(0.0, seconds))


def raise_if_stopped(what: str = "the campaign") -> None:
    if _STOP.is_set():
        raise Interrupted(f"{what} was interrupted")


def reset() -> None:
    """For a new run in the same process (tests, a served deployment running several flow runs)."""
    _STOP.clear()
