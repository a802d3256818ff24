"""The check every write of the controller makes first: lease held and epoch current.

Writes go to the volume (checkpoint, trials.jsonl, best.json) and to the API (Trials,
the search's status). A controller that lost its lease, or whose epoch a newer
controller replaced on the volume, must not make any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol

from nas_trainer.controller.fencing import Fence
from nas_trainer.results import ResultsFolder, TrialRecord


class Lease(Protocol):
    def ensure_held(self) -> None: ...


class WriteGuard:
    def __init__(self, lease: Lease, fence: Fence) -> None:
        self.lease = lease
        self.fence = fence

    def check(self) -> None:
        """Raise LeaseLost or FencedOut when this controller may no longer write."""
        self.lease.ensure_held()
        self.fence.check()


class FencedResultsFolder(ResultsFolder):
    """The results folder of the search volume, refusing writes from a stale controller."""

    def __init__(self, path: str | Path, guard: WriteGuard) -> None:
        super().__init__(path)
        self.guard = guard

    def save_checkpoint(self, loop: Mapping[str, Any], strategy: Mapping[str, Any]) -> None:
        self.guard.check()
        super().save_checkpoint(loop, strategy)

    def append_trial(self, record: TrialRecord) -> None:
        self.guard.check()
        super().append_trial(record)

    def write_best(self, record: TrialRecord) -> None:
        self.guard.check()
        super().write_best(record)

    def write_manifest(self, document: Mapping[str, Any]) -> None:
        self.guard.check()
        super().write_manifest(document)

    def repair(self) -> None:
        self.guard.check()  # truncating a torn line is a write too
        super().repair()
