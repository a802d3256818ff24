"""The trial result (contract 3, `nas.result/v1`) and the files a trial leaves:
the termination message (< 4 KiB), and in an output folder result.json, epochs.jsonl and
model.pt (weights + everything needed to rebuild the network)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..results import atomic_write

from nas_contracts.result import SCHEMA, TERMINATION_LIMIT, error_json  # noqa: F401  (contract 3)

MODEL_SCHEMA = "nas.model/v1"


def clean(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclass
class TrialResult:
    reward: float
    metrics: dict[str, float | None]
    epochs: int
    seconds: float
    parameters: int
    flops: int
    device: str
    execution: str = "eager"             # cuda-graph | eager | eager (capture failed: ...) | table
    timings: dict[str, float] = field(default_factory=dict)
    hash: str | None = None
    stop_reason: str | None = None       # set when the search stopped it early (partial)
    estimate: str | None = None          # sharedWeights: scored on a supernet, not trained alone

    def to_json(self) -> dict[str, Any]:
        doc = {"schema": SCHEMA, "reward": self.reward, "metrics": self.metrics,
               "epochs": self.epochs, "seconds": round(self.seconds, 3),
               "parameters": self.parameters, "flops": self.flops, "device": self.device,
               "execution": self.execution,
               "timings": {k: round(v, 3) for k, v in self.timings.items()}}
        if self.hash:
            doc["hash"] = self.hash
        if self.estimate is not None:
            doc["estimate"] = self.estimate
        if self.stop_reason is not None:
            # A partial result: `reward` and `metrics` are those at `epochs`, fewer than asked.
            doc["stoppedEarly"] = True
            doc["stopReason"] = self.stop_reason
        return clean(doc)


def compact(doc: Mapping[str, Any], limit: int = TERMINATION_LIMIT) -> str:
    """The document as JSON under `limit` bytes: drop timings, then metrics beyond the
    reward's essentials, then shorten an error message, until it fits."""
    doc = dict(doc)
    text = json.dumps(doc, separators=(",", ":"))
    if len(text.encode()) < limit:
        return text
    doc.pop("timings", None)
    doc.pop("execution", None)
    metrics = dict(doc.get("metrics") or {})
    while len(json.dumps(doc, separators=(",", ":")).encode()) >= limit and metrics:
        metrics.pop(sorted(metrics, key=lambda k: (k.startswith(("val", "test")), k))[0])
        doc["metrics"] = metrics
    if "error" in doc:
        while len(json.dumps(doc, separators=(",", ":")).encode()) >= limit:
            doc["error"] = doc["error"][: len(doc["error"]) // 2] + "…"
    return json.dumps(doc, separators=(",", ":"))


def write_termination_message(path: str | Path | None, doc: Mapping[str, Any]) -> None:
    """Write the compact result where Kubernetes reads the termination message."""
    if not path:
        return
    with open(path, "w") as f:  # /dev/termination-log is a file the kubelet mounts: no rename
        f.write(compact(doc))


def write_trial_folder(out_dir: Path, result: Mapping[str, Any],
                       history: list[Mapping[str, Any]]) -> None:
    """result.json and epochs.jsonl (one JSON object per epoch)."""
    lines = "".join(json.dumps(clean(dict(epoch)), sort_keys=True) + "\n" for epoch in history)
    atomic_write(out_dir / "epochs.jsonl", lines.encode())
    atomic_write(out_dir / "result.json",
                 (json.dumps(result, indent=2, sort_keys=True) + "\n").encode())


def save_model(path: Path, model: Any, architecture: Mapping[str, Any],
               build: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """model.pt: the weights (CPU), the architecture JSON and the build arguments, so
    `nas_trainer.export.load_model(path)` rebuilds the network without this trial's
    configuration."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"schema": MODEL_SCHEMA, "architecture": dict(architecture), "build": dict(build),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                **(extra or {})}, buffer)
    atomic_write(path, buffer.getvalue())
