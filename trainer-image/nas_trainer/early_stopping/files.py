"""The two early-stopping files of a trial folder (contract 5), torch-free:

    progress.jsonl   written by the trainer, one line per epoch:
                     {"epoch": 3, "of": 20, "reward": 0.512}
                     `reward` is what the trial would report if it ended at that epoch.
                     At most MAX_PROGRESS_LINES lines (~50 bytes each); a new attempt of the
                     trial starts the file again.
    stop.json        written by the search (controller pod or `nas run`):
                     {"epoch": 3, "message": "..."}: stop once `epoch` epochs are trained
                     (a retried attempt trains that far again, then stops too).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..results import atomic_write

PROGRESS_FILE = "progress.jsonl"
STOP_FILE = "stop.json"
MAX_PROGRESS_LINES = 10_000
MAX_MESSAGE = 300


class ProgressWriter:
    """The trainer's side: report each epoch, and ask whether to stop."""

    def __init__(self, out_dir: str | Path, total_epochs: int) -> None:
        self.folder = Path(out_dir)
        self.total_epochs = total_epochs
        self.lines = 0
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / PROGRESS_FILE).write_text("")  # a new attempt starts over

    def report(self, epoch: int, reward: float) -> None:
        """Append one line (flushed, not fsynced: a lost line only delays a decision)."""
        if self.lines >= MAX_PROGRESS_LINES:
            return
        value = reward if math.isfinite(reward) else None
        with open(self.folder / PROGRESS_FILE, "a") as handle:
            handle.write(json.dumps({"epoch": epoch, "of": self.total_epochs,
                                     "reward": value}) + "\n")
        self.lines += 1

    def stop_requested(self, epochs_done: int) -> str | None:
        """The stop message when the search asked this trial to stop by now, else None."""
        stop = read_stop(self.folder)
        if stop is None or epochs_done < stop["epoch"]:
            return None
        return stop["message"]


def read_progress(folder: Path) -> tuple[dict[int, float], int | None]:
    """({epoch: reward}, total epochs) from a trial's progress.jsonl; ({}, None) when it has
    none. Lines that do not parse (one being written) are skipped; non-finite rewards
    count as 0, the worst a reward can be."""
    try:
        text = (folder / PROGRESS_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return {}, None
    values: dict[int, float] = {}
    total = None
    for line in text.splitlines()[:MAX_PROGRESS_LINES]:
        try:
            doc = json.loads(line)
            epoch = int(doc["epoch"])
            reward = doc.get("reward")
            value = float(reward) if reward is not None else 0.0
            total = int(doc["of"]) if doc.get("of") is not None else total
        except (ValueError, TypeError, KeyError):
            continue
        values[epoch] = value if math.isfinite(value) else 0.0
    return values, total


def write_stop(folder: Path, epoch: int, message: str) -> None:
    atomic_write(folder / STOP_FILE, json.dumps(
        {"epoch": int(epoch), "message": message[:MAX_MESSAGE]}).encode())


def read_stop(folder: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((folder / STOP_FILE).read_text())
        return {"epoch": int(doc["epoch"]), "message": str(doc.get("message") or "")}
    except (OSError, ValueError, TypeError, KeyError):
        return None
