"""A run's phases timed one after another (the result JSON's `timings`)."""
from __future__ import annotations

import time


class Laps:
    """`lap(name)` adds the seconds since the previous lap (or since made) to `name`."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._mark
        self._mark = now
