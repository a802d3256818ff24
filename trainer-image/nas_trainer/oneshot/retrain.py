"""`nas run`'s last step for a shared-weights search: the best few children, by their
shared-weights estimate, trained from scratch as ordinary trials, so the reported best is
a real stand-alone accuracy.

Each goes to `retrained/<index>/` (result.json, epochs.jsonl, model.pt) and the table to
`retrained.json`; a child already retrained is not trained again when the command is
run again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from ..results import TrialRecord, atomic_write

RETRAINED = "retrained"


@dataclass(frozen=True)
class Retrained:
    index: int
    hash: str
    estimate: float            # its reward on the supernet
    reward: float | None       # trained alone (None: the training failed)
    val_accuracy: float | None
    test_accuracy: float | None
    seconds: float | None
    error: str = ""


def best_children(records: Iterable[TrialRecord], count: int) -> list[TrialRecord]:
    """The ``count`` best distinct architectures by their estimate."""
    chosen: dict[str, TrialRecord] = {}
    for record in sorted((r for r in records if r.succeeded and r.reward is not None),
                         key=lambda r: (-float(r.reward or 0.0), r.index)):
        chosen.setdefault(record.hash, record)
        if len(chosen) == count:
            break
    return list(chosen.values())


def standalone_config(config: dict[str, Any]) -> dict[str, Any]:
    """The trainer block without sharedWeights: the child trains alone."""
    return {k: v for k, v in config.items() if k != "sharedWeights"}


def retrain(records: Iterable[TrialRecord], config: dict[str, Any], count: int,
            folder: Path) -> list[Retrained]:
    rows = [retrain_one(record, standalone_config(config), folder / RETRAINED)
            for record in best_children(records, count)]
    atomic_write(folder / f"{RETRAINED}.json",
                 json.dumps([asdict(r) for r in rows], indent=2).encode())
    return rows


def retrain_one(record: TrialRecord, config: dict[str, Any], root: Path) -> Retrained:
    out = root / f"{record.index:05d}"
    result_file = out / "result.json"
    error = ""
    if not result_file.exists():
        with tempfile.TemporaryDirectory(prefix="nas-retrain-") as scratch:
            arch, cfg = Path(scratch) / "architecture.json", Path(scratch) / "trainer.json"
            arch.write_text(json.dumps(record.architecture))
            cfg.write_text(json.dumps(config))
            done = subprocess.run(
                [sys.executable, "-m", "nas_trainer.train_cli", "-a", str(arch), "-c", str(cfg),
                 "-o", str(out), "--termination-log", "", "--quiet"],
                capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["failed"])[-1]
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return Retrained(record.index, record.hash, float(record.reward or 0.0), None, None,
                         None, None, error or "no result.json")
    metrics = result.get("metrics") or {}
    return Retrained(record.index, record.hash, float(record.reward or 0.0),
                     result.get("reward"), metrics.get("val_accuracy"),
                     metrics.get("test_accuracy"), result.get("seconds"))
