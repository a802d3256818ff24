"""``status.final``: where the best architecture's weights are (pure; no API calls).

After a successful decision the operator either points at the best trial's own weights
(its pod mounted the volume) or retrains it in the final Job (builders/final_job.py) and
reads that Job like a trial's. ``weights`` is a path relative to the volume's root.
"""

from __future__ import annotations

from typing import Any

from nas_contracts.volume import FINAL_DIR, MODEL_FILE, trial_dir

from .search_record import SearchRecord
from .trial_status import derive_job_status

FINAL_DONE = ("Succeeded", "Failed", "Skipped")
BEST_WEIGHTS = f"{FINAL_DIR}/{MODEL_FILE}"


def trial_weights(index: int) -> str:
    """Where a trial pod that mounts the volume leaves its weights (contract 5)."""
    return f"{trial_dir(index)}/{MODEL_FILE}"


def skip_reason(search: dict[str, Any], best: dict[str, Any] | None) -> str:
    """Why no final training runs ('' when it should)."""
    spec = search["spec"]
    if not SearchRecord.of(search).final_training:
        return "spec.finalTraining.enabled is false"
    if best is None:
        return "no trial succeeded: there is no best architecture to train"
    trainer = spec.get("trainer") or {}
    if (spec.get("searchSpace") or {}).get("name") == "nas-bench-graph" and not trainer.get(
        "command"
    ):
        return "nas-bench-graph trials are answered from its table: there are no weights"
    return ""


def skipped(message: str, best: dict[str, Any] | None = None, weights: str = "") -> dict[str, Any]:
    final: dict[str, Any] = {"phase": "Skipped", "message": message}
    if best is not None:
        final["trial"] = best["name"]
    if weights:
        final["weights"] = weights
    return final


def final_from_job(
    old: dict[str, Any], trial: str, job: dict[str, Any] | None, pods: list[dict[str, Any]]
) -> dict[str, Any]:
    """``status.final`` from the final Job and its pods (``old``: the status before)."""
    seen = derive_job_status({"jobName": old.get("jobName")}, job, pods)
    phase = seen["phase"]
    final: dict[str, Any] = {"phase": phase, "trial": trial}
    if seen.get("jobName"):
        final["jobName"] = seen["jobName"]
    if phase == "Succeeded":
        final.update(
            reward=seen["reward"],
            metrics=seen.get("metrics") or {},
            weights=BEST_WEIGHTS,
            message=f"{trial} trained again; its weights are at {BEST_WEIGHTS} on the volume",
        )
    elif phase == "Failed":
        final["message"] = f"{seen.get('reason') or 'Failed'}: {seen.get('message') or ''}".strip()
    elif seen.get("reason") == "Suspended":
        final["message"] = "the search is suspended"
    else:
        final["message"] = f"training {trial} with the search volume mounted"
    return final


def weights_condition(final: dict[str, Any] | None, searching: bool) -> tuple[bool, str, str]:
    """(status, reason, message) of the WeightsReady condition."""
    if not final:
        return False, "Searching" if searching else "NoFinalTraining", ""
    if final.get("weights") and final["phase"] in ("Succeeded", "Skipped"):
        reason = "FinalTrainingSucceeded" if final["phase"] == "Succeeded" else "TrialWeights"
        return True, reason, final["weights"]
    return False, f"FinalTraining{final['phase']}", final.get("message", "")
