"""Section 3: the result JSON (``nas.result/v1``) a trainer leaves, its one reader, and
``nas-train``'s exit codes.

A trainer writes it to its termination message (under 4 KiB) and, given an output
folder, to ``result.json``; a warm worker answers with it. The operator, the controller's
local executor and ``nas run`` all read it with ``parse_result`` and judge it with
``TrialResult.succeeded``: one set of rules.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "nas.result/v1"

# nas-train's exit codes (the controller's are the same: cluster.py)
EXIT_OK = 0
EXIT_RETRYABLE = 1  # any code but these two is retried the same way
EXIT_PERMANENT = 3  # the same trial would fail the same way again: never retried

TERMINATION_LOG = "/dev/termination-log"  # where a pod leaves it (terminationMessagePath)
TERMINATION_LIMIT = 4096  # bytes the kubelet keeps of a termination message
ERROR_LIMIT = 1024  # characters of an error message a reader keeps


def error_json(message: str, permanent: bool) -> dict[str, Any]:
    """The result of a trainer that failed; ``permanent`` goes with exit code 3."""
    return {"schema": SCHEMA, "error": message, "permanent": permanent}


# how a reward may be estimated instead of measured on a child trained alone
ESTIMATES = ("sharedWeights",)


@dataclass(frozen=True)
class TrialResult:
    """What a reader takes from a result JSON: finite numbers only, the error shortened."""

    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    parameters: int | None = None
    error: str | None = None
    permanent: bool = False
    stopped_early: bool = False  # spec.earlyStopping stopped it: reward and metrics at `epochs`
    stop_reason: str | None = None
    epochs: int | None = None
    estimate: str | None = None  # sharedWeights: scored on a supernet, not trained alone

    @property
    def succeeded(self) -> bool:
        """A trial whose trainer ended well succeeded only with a numeric reward."""
        return self.reward is not None and not self.error


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_object(text: str) -> dict[str, Any] | None:
    """The text as a JSON object; else its last line that is one (logs may precede it)."""
    for candidate in [text, *reversed(text.strip().splitlines())]:
        try:
            value = json.loads(candidate)
        except (ValueError, TypeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_result(text: str | None) -> TrialResult | None:
    """The result in ``text`` (a termination message, a result.json), or None when it
    holds no result JSON."""
    if not text:
        return None
    doc = _json_object(text)
    if doc is None:
        return None
    said = doc.get("metrics")
    metrics = {
        str(k): n
        for k, v in (said.items() if isinstance(said, dict) else ())
        if (n := _number(v)) is not None
    }
    error, stop_reason = doc.get("error"), doc.get("stopReason")
    return TrialResult(
        reward=_number(doc.get("reward")),
        metrics=metrics,
        seconds=_number(doc.get("seconds")),
        parameters=_integer(doc.get("parameters")),
        error=str(error)[:ERROR_LIMIT] if error else None,
        permanent=bool(doc.get("permanent")),
        stopped_early=doc.get("stoppedEarly") is True,
        stop_reason=str(stop_reason)[:ERROR_LIMIT] if stop_reason else None,
        epochs=_integer(doc.get("epochs")),
        estimate=doc["estimate"] if doc.get("estimate") in ESTIMATES else None,
    )
