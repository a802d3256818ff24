"""Waiting for the cluster to reach a state, with a failure message that says what was
seen last."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 30.0,
             interval: float = 0.2) -> T:
    """Calls `probe` until it returns something truthy, and returns that; fails after
    `timeout` seconds with `what` and the last value or error seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:  # an object not there yet reads as "not yet"
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
