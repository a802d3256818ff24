"""The trainer's result JSON (contract 3), read from a pod's termination message."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE = 1024


@dataclass(frozen=True)
class TrialResult:
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    parameters: int | None = None
    error: str | None = None
    permanent: bool = False
    stopped_early: bool = False  # spec.earlyStopping stopped it: reward and metrics at `epochs`
    stop_reason: str | None = None
    epochs: int | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _json_object(text: str) -> dict[str, Any] | None:
    """The message as a JSON object; else its last line that is one (logs may precede it)."""
    for candidate in [text, *reversed(text.strip().splitlines())]:
        try:
            value = json.loads(candidate)
        except (ValueError, TypeError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_result(message: str | None) -> TrialResult | None:
    """The result in ``message``, or None when it holds no result JSON."""
    if not message:
        return None
    doc = _json_object(message)
    if doc is None:
        return None
    metrics = {
        str(k): n for k, v in (doc.get("metrics") or {}).items() if (n := _number(v)) is not None
    }
    parameters = doc.get("parameters")
    error = doc.get("error")
    return TrialResult(
        reward=_number(doc.get("reward")),
        metrics=metrics,
        seconds=_number(doc.get("seconds")),
        parameters=int(parameters)
        if isinstance(parameters, int) and not isinstance(parameters, bool)
        else None,
        error=str(error)[:MAX_MESSAGE] if error else None,
        permanent=bool(doc.get("permanent")),
        stopped_early=doc.get("stoppedEarly") is True,
        stop_reason=str(doc["stopReason"])[:MAX_MESSAGE] if doc.get("stopReason") else None,
        epochs=epochs if isinstance(epochs := doc.get("epochs"), int) and not isinstance(epochs, bool)
        else None,
    )


def short_message(text: str | None) -> str:
    """A message fit for a status field: stripped, at most MAX_MESSAGE characters (the tail)."""
    text = (text or "").strip()
    return text if len(text) <= MAX_MESSAGE else "…" + text[-(MAX_MESSAGE - 1) :]
