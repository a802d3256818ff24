"""The results folder (contract 5), the same on the search volume and for `nas run --out`:

    search.yaml                 the manifest as run
    checkpoint/strategy.json    search-loop and strategy state (JSON part)
    checkpoint/strategy.pt      the strategy's tensors (torch policies only)
    trials.jsonl                one line per finished trial: the source of truth
    trials/<index:05d>/         a trial's own files
    best.json                   the best trial so far

Every whole-file write is atomic (temp file, fsync, rename); trials.jsonl is appended
one fsynced line at a time, and a line torn by a crash is dropped when read.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import yaml

from nas_contracts.volume import (  # noqa: F401  (contract 5's names, used through here)
    BEST_FILE, CHECKPOINT_DIR, FINAL_DIR, MANIFEST_FILE, MODEL_FILE, TRIALS_FILE, trial_dir)
CHECKPOINT_JSON = "strategy.json"
CHECKPOINT_TENSORS = "strategy.pt"
CHECKPOINT_PREVIOUS_TENSORS = "strategy.previous.pt"
CHECKPOINT_SCHEMA = "nas.checkpoint/v1"
SUCCEEDED, FAILED = "Succeeded", "Failed"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader (or a crash) sees the old or the new
    content, never a mix: write a temp file in the same folder, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass
class TrialRecord:
    """One finished trial, as a line of trials.jsonl."""

    index: int
    hash: str
    architecture: dict[str, Any]         # contract 2
    status: str                          # Succeeded | Failed
    reward: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""                     # why it failed (PermanentError, Timeout, ...)
    message: str = ""
    seconds: float | None = None
    parameters: int | None = None
    log_prob: float | None = None        # at sampling time (policy strategies)
    policy_version: int | None = None
    finished_at: str = ""
    stopped_early: bool = False          # stopped by spec.earlyStopping: reward at `epochs`
    epochs: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    def to_json(self) -> dict[str, Any]:
        return _finite(asdict(self))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "TrialRecord":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ResultsFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._generation: int | None = None  # of the last checkpoint, once read or written

    # --- paths ----------------------------------------------------------------------
    @property
    def trials_file(self) -> Path:
        return self.path / TRIALS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def trial_dir(self, index: int) -> Path:
        return self.path / trial_dir(index)

    @property
    def final_dir(self) -> Path:
        return self.path / FINAL_DIR

    def best_weights(self, index: int) -> Path | None:
        """The weights of the best trial `index`: those of the final training when it ran
        (the search's volume), else the trial's own, else None."""
        for path in (self.final_dir / MODEL_FILE, self.trial_dir(index) / MODEL_FILE):
            if path.is_file():
                return path
        return None

    def exists(self) -> bool:
        return (self.path / MANIFEST_FILE).exists() or self.trials_file.exists()

    # --- manifest -------------------------------------------------------------------
    def write_manifest(self, document: Mapping[str, Any]) -> None:
        atomic_write(self.path / MANIFEST_FILE,
                     yaml.safe_dump(dict(document), sort_keys=False).encode())

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.path / MANIFEST_FILE
        return yaml.safe_load(path.read_text()) if path.exists() else None

    # --- trials ---------------------------------------------------------------------
    def append_trial(self, record: TrialRecord) -> None:
        """Append one line and fsync it: once this returns the trial is never lost."""
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.to_json(), sort_keys=True) + "\n"
        with open(self.trials_file, "ab") as handle:
            handle.write(line.encode())
            handle.flush()
            os.fsync(handle.fileno())

    def read_trials(self) -> list[TrialRecord]:
        """Finished trials in the order they finished. A last line cut short by a crash
        is ignored (and removed by `repair`)."""
        if not self.trials_file.exists():
            return []
        records = []
        data = self.trials_file.read_bytes()
        for number, line in enumerate(data.split(b"\n")[:-1], start=1):  # whole lines only
            if not line.strip():
                continue
            try:
                records.append(TrialRecord.from_json(json.loads(line)))
            except (ValueError, TypeError) as err:
                raise ValueError(f"{self.trials_file}:{number} is not a trial record: {err}") from err
        return records

    def repair(self) -> None:
        """Drop a torn last line of trials.jsonl and temp files left by a crash."""
        if self.trials_file.exists():
            data = self.trials_file.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                with open(self.trials_file, "r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
        for folder in (self.path, self.checkpoint_dir):
            if folder.exists():
                for temp in folder.glob(".*.tmp"):
                    temp.unlink(missing_ok=True)

    # --- best -----------------------------------------------------------------------
    def write_best(self, record: TrialRecord) -> None:
        atomic_write(self.path / BEST_FILE,
                     (json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n").encode())

    def read_best(self) -> TrialRecord | None:
        path = self.path / BEST_FILE
        return TrialRecord.from_json(json.loads(path.read_text())) if path.exists() else None

    # --- checkpoint -----------------------------------------------------------------
    def save_checkpoint(self, loop: Mapping[str, Any], strategy: Mapping[str, Any]) -> None:
        """Persist the loop and strategy state. Entries of the strategy state that hold
        torch tensors go to strategy.pt, the rest to strategy.json; both carry the same
        generation, and the previous .pt is kept until the new .json is in place, so a
        crash between the two renames still leaves a matching pair."""
        if self._generation is None:
            self._generation = (self._read_json() or {}).get("generation", 0)
        generation = self._generation + 1
        tensor_keys = sorted(k for k, v in strategy.items() if _holds_tensor(v))
        if tensor_keys:
            import torch
            import io

            buffer = io.BytesIO()
            torch.save({"generation": generation,
                        "state": {k: strategy[k] for k in tensor_keys}}, buffer)
            current = self.checkpoint_dir / CHECKPOINT_TENSORS
            if current.exists():
                os.replace(current, self.checkpoint_dir / CHECKPOINT_PREVIOUS_TENSORS)
            atomic_write(current, buffer.getvalue())
        document = {
            "schema": CHECKPOINT_SCHEMA,
            "generation": generation,
            "saved_at": utc_now(),
            "loop": dict(loop),
            "strategy": {k: v for k, v in strategy.items() if k not in tensor_keys},
            "tensor_keys": tensor_keys,
        }
        atomic_write(self.checkpoint_dir / CHECKPOINT_JSON,
                     json.dumps(_finite(document), sort_keys=True).encode())
        self._generation = generation

    def load_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(loop state, strategy state) of the last checkpoint, or None if there is none."""
        document = self._read_json()
        if document is None:
            return None
        self._generation = document.get("generation", 0)
        if document.get("schema") != CHECKPOINT_SCHEMA:
            raise ValueError(f"{self.checkpoint_dir / CHECKPOINT_JSON} is not a "
                             f"{CHECKPOINT_SCHEMA} checkpoint")
        strategy = dict(document["strategy"])
        if document["tensor_keys"]:
            strategy.update(self._load_tensors(document["generation"]))
        return dict(document["loop"]), strategy

    def _read_json(self) -> dict[str, Any] | None:
        path = self.checkpoint_dir / CHECKPOINT_JSON
        return json.loads(path.read_text()) if path.exists() else None

    def _load_tensors(self, generation: int) -> dict[str, Any]:
        import torch

        for name in (CHECKPOINT_TENSORS, CHECKPOINT_PREVIOUS_TENSORS):
            path = self.checkpoint_dir / name
            if path.exists():
                saved = torch.load(path, weights_only=True)
                if saved["generation"] == generation:
                    return saved["state"]
        raise ValueError(f"{self.checkpoint_dir}: no {CHECKPOINT_TENSORS} of generation "
                         f"{generation} (the checkpoint is incomplete)")


def _holds_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:  # no tensor can exist if torch was never imported
        return False
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, Mapping):
        return any(_holds_tensor(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_tensor(v) for v in value)
    return False
