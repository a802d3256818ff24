"""What the kopf indexes keep of each Trial, trial Job and controller pod.

Small frozen records: an index holds one per object, so a search's counts and best
trial come from memory, never from listing 20,000 Trials on every event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .names import CONTROLLER_CONTAINER, LABEL_SEARCH, LABEL_TRIAL
from .search_record import trial_generation


@dataclass(frozen=True)
class TrialRecord:
    name: str
    index: int
    phase: str
    reward: float | None
    hash: str
    summary: str
    generation: int = 1  # spec.searchGeneration: which trainer snapshot runs it
    created: str = ""  # metadata.creationTimestamp (a warm pool's packs wait for a burst)


@dataclass(frozen=True)
class JobRecord:
    name: str
    finished: bool


@dataclass(frozen=True)
class PodRecord:
    name: str
    uid: str
    phase: str
    deleting: bool
    finished_at: str | None
    message: str
    exit_code: int | None = None  # the controller container's, once it has ended
    detail: str = ""  # its termination message as written (contracts section 7)


def trial_record(body: dict[str, Any]) -> TrialRecord:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    reward = status.get("reward")
    return TrialRecord(
        name=body["metadata"]["name"],
        index=int(spec.get("index", -1)),
        phase=str(status.get("phase") or "Pending"),
        reward=float(reward) if isinstance(reward, (int, float)) else None,
        hash=str((spec.get("architecture") or {}).get("hash", "")),
        summary=str(status.get("summary", "")),
        generation=trial_generation(body),
        created=str(body["metadata"].get("creationTimestamp") or ""),
    )


def job_record(body: dict[str, Any]) -> JobRecord:
    conditions = (body.get("status") or {}).get("conditions") or []
    finished = any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
    )
    return JobRecord(name=body["metadata"]["name"], finished=finished)


def pod_record(body: dict[str, Any]) -> PodRecord:
    status = body.get("status") or {}
    finished_at, message, exit_code, detail = None, "", None, ""
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == CONTROLLER_CONTAINER and (
            term := (cs.get("state") or {}).get("terminated")
        ):
            finished_at = term.get("finishedAt")
            detail = (term.get("message") or term.get("reason") or "").strip()
            message = f"exit code {term.get('exitCode')}: {detail}"
            exit_code = term.get("exitCode")
    return PodRecord(
        name=body["metadata"]["name"],
        uid=body["metadata"].get("uid", ""),
        phase=str(status.get("phase") or "Pending"),
        deleting=bool(body["metadata"].get("deletionTimestamp")),
        finished_at=finished_at,
        message=message[:512],
        exit_code=exit_code if isinstance(exit_code, int) else None,
        detail=detail[:4096],
    )


def search_of(body: dict[str, Any]) -> str:
    return (body["metadata"].get("labels") or {}).get(LABEL_SEARCH, "")


def trial_of(body: dict[str, Any]) -> str:
    return (body["metadata"].get("labels") or {}).get(LABEL_TRIAL, "")
