"""A search's status and what to do with its controller pod (pure; no API calls).

Status ownership (docs/contracts.md section 7): the operator writes every field here;
``status.controller`` is the controller's, read as input (its ``decision``).

Phase rule, first match wins:
0. a refusal found in this pass (the API server refused an object of the search, or the
   spec nests too deep) → Failed with its reason (``CreateRefused``, ``InvalidSpec``, ...);
1. Succeeded and Failed are final (a Failed for a reason in RECOVERABLE is lifted by the
   search handler once the spec changes: handlers/search.py);
2. ``spec.suspend`` → Suspended;
3. the controller pod ended with exit code 3 (a permanent error: its termination message
   names it, e.g. InvalidSpec) for the current generation → Failed at once; it was
   replaced more than the restart limit in a row, without a controller making progress
   in between → Failed (ControllerFailed);
4. a controller decision and no Trial Pending/Running → Failed for TooManyFailures,
   else Succeeded once the final training is over (``status.final`` Succeeded, Failed or
   Skipped: a failed final training does not fail a search that found its best); with
   Trials still active, or the final training to come, the search stays Running;
5. the controller pod runs → Running; else Pending.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from nas_contracts.cluster import CONTROLLER_EXIT_PERMANENT, ControllerExit

from .final_status import FINAL_DONE, weights_condition
from .records import PodRecord, TrialRecord
from .search_record import SearchRecord

FINAL = ("Succeeded", "Failed")
FAILING_DECISIONS = ("TooManyFailures",)
MAX_BACKOFF_SECONDS = 300.0
# Failed for one of these is about one spec generation: a new spec gets another chance.
RECOVERABLE = (
    "CreateRefused",
    "PatchRefused",
    "UpdateRefused",
    "InvalidSpec",
    "TrialRefused",
    "StatusRefused",
)


@dataclass(frozen=True)
class Refusal:
    """Why the search cannot go on with its current spec (phase Failed, reason ``reason``)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Counts:
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def active(self) -> int:
        return self.pending + self.running

    @property
    def total(self) -> int:
        return self.finished + self.active

    def as_status(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "finished": self.finished,
            "total": self.total,
        }


def count_trials(records: Iterable[TrialRecord]) -> Counts:
    tally = {"Pending": 0, "Running": 0, "Succeeded": 0, "Failed": 0}
    for record in records:
        tally[record.phase if record.phase in tally else "Pending"] += 1
    return Counts(tally["Pending"], tally["Running"], tally["Succeeded"], tally["Failed"])


def best_trial(records: Iterable[TrialRecord]) -> dict[str, Any] | None:
    """The succeeded trial with the highest reward (the earliest on a tie)."""
    done = [r for r in records if r.phase == "Succeeded" and r.reward is not None]
    if not done:
        return None
    best = max(done, key=lambda r: (r.reward, -r.index))
    return {
        "name": best.name,
        "index": best.index,
        "reward": best.reward,
        "hash": best.hash,
        "summary": best.summary,
    }


def decision_of(search: dict[str, Any]) -> str:
    return str(((search.get("status") or {}).get("controller") or {}).get("decision") or "")


def in_final_stage(search: dict[str, Any], counts: Counts) -> bool:
    """Decided without failing, no Trial active, not over: the final training's turn."""
    decision = decision_of(search)
    return (
        bool(decision)
        and decision not in FAILING_DECISIONS
        and counts.active == 0
        and (search.get("status") or {}).get("phase") not in FINAL
    )


def derive_phase(
    search: dict[str, Any],
    counts: Counts,
    pod: PodRecord | None,
    restart_limit: int,
    final: dict[str, Any] | None = None,
    refusal: Refusal | None = None,
) -> tuple[str, str, str]:
    """(phase, reason, message) by the phase rule above; ``final``: status.final as just
    derived (None: no final training considered)."""
    status = search.get("status") or {}
    if refusal is not None:
        return "Failed", refusal.reason, refusal.message
    if status.get("phase") in FINAL:
        cond = _find(
            status.get("conditions") or [],
            "Complete" if status["phase"] == "Succeeded" else "Failed",
        )
        return status["phase"], (cond or {}).get("reason", ""), (cond or {}).get("message", "")
    if SearchRecord.of(search).suspend:
        return "Suspended", "Suspended", "spec.suspend is true"
    ended = controller_refusal(search, pod)
    if ended is not None:
        return "Failed", ended.reason, ended.message
    restarts = restarts_in_a_row(status)
    if restarts > restart_limit:
        msg = (f"the controller pod failed or vanished {restarts} times in a row without "
               f"progress (limit {restart_limit})")
        return "Failed", "ControllerFailed", msg
    decision = decision_of(search)
    message = str((status.get("controller") or {}).get("message") or decision)
    if decision and counts.active == 0:
        if decision in FAILING_DECISIONS:
            return "Failed", decision, message
        if final is not None and final.get("phase") not in FINAL_DONE:
            return "Running", "FinalTraining", f"{message}; {final.get('message', '')}"
        return "Succeeded", decision, message
    if decision:
        return "Running", decision, f"{message}; waiting for {counts.active} active trials"
    if pod is not None and pod.phase == "Running" and not pod.deleting:
        return "Running", "ControllerRunning", ""
    return "Pending", "ControllerStarting", ""


def controller_progress(status: dict[str, Any]) -> int:
    """How far the controllers have got: the next trial index plus the policy version
    (status.controller); neither ever goes back."""
    said = status.get("controller") or {}
    return int(said.get("trialsCreated") or 0) + int(said.get("policyVersion") or 0)


def restarts_in_a_row(status: dict[str, Any]) -> int:
    """Controller replacements since a controller last made progress: what the back-off
    and the restart limit count. A controller killed now and then (evicted, its node
    lost) on a long search is not crash-looping; one that ends before it gets anywhere
    is. Statuses written before controllerRestartsInARow existed count every restart."""
    if "controllerRestartsInARow" not in status:
        return int(status.get("controllerRestarts") or 0)
    if controller_progress(status) > int(status.get("controllerProgress") or 0):
        return 0
    return int(status["controllerRestartsInARow"])


def controller_refusal(search: dict[str, Any], pod: PodRecord | None) -> Refusal | None:
    """The permanent error a controller pod ended with (exit code 3), if it concerns the
    search's current generation. Its termination message is JSON
    ``{"reason", "message", "generation"}`` (contracts section 7); plain text is taken as
    the message of an InvalidSpec."""
    if pod is None or pod.deleting or pod.exit_code != CONTROLLER_EXIT_PERMANENT:
        return None
    said = ControllerExit.of_message(pod.detail)
    current = SearchRecord.of(search).generation
    if said.generation is not None and said.generation != current:
        return None  # about a spec that has changed since: the pod is replaced
    return Refusal(said.reason, said.message)


def is_blocked(search: dict[str, Any]) -> bool:
    """Failed for a reason a new spec may mend (RECOVERABLE)."""
    status = search.get("status") or {}
    cond = _find(status.get("conditions") or [], "Failed") or {}
    return status.get("phase") == "Failed" and cond.get("reason") in RECOVERABLE


class PodAction(enum.Enum):
    NONE = "none"
    CREATE = "create"
    DELETE = "delete"


def controller_pod_action(
    search: dict[str, Any],
    phase: str,
    pod: PodRecord | None,
    now: datetime,
    backoff_seconds: float,
    reason: str = "",
) -> PodAction:
    """What the operator does with the controller pod, given the phase (and its reason)
    just derived."""
    status = search.get("status") or {}
    if phase == "Suspended":
        return PodAction.DELETE if pod is not None and not pod.deleting else PodAction.NONE
    if (
        phase == "Failed"
        and reason in RECOVERABLE
        and pod is not None
        and not pod.deleting
        and pod.phase not in ("Failed", "Succeeded")
    ):
        return PodAction.DELETE  # refused while it ran: it must not go on with this spec
    if phase in FINAL or decision_of(search):
        return PodAction.NONE  # the controller has decided (or the search is over): let it exit
    if pod is None:
        return PodAction.CREATE
    if pod.deleting or pod.phase not in ("Failed", "Succeeded"):
        return PodAction.NONE
    if backoff_left(search, pod, now, backoff_seconds) > 0:
        return PodAction.NONE
    return PodAction.DELETE


def backoff_left(
    search: dict[str, Any], pod: PodRecord | None, now: datetime, backoff_seconds: float
) -> float:
    """Seconds until an ended controller pod may be replaced (0: now). No event comes
    when they are over: the status loop asks for a pass then (reconcile_search)."""
    if pod is None or not pod.finished_at:
        return 0.0
    restarts = restarts_in_a_row(search.get("status") or {})
    wait = min(MAX_BACKOFF_SECONDS, backoff_seconds * (2**restarts))
    until = parse_time(pod.finished_at) + timedelta(seconds=wait)
    return max(0.0, (until - now).total_seconds())


def _find(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _condition(
    old: list[dict[str, Any]],
    kind: str,
    true: bool,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> dict[str, Any]:
    value = "True" if true else "False"
    previous = _find(old, kind)
    changed = previous is None or previous.get("status") != value
    return {
        "type": kind,
        "status": value,
        "reason": reason or ("Ready" if true else "NotReady"),
        "message": message,
        "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
        "observedGeneration": generation,
    }


def _controller_ready(phase: str, pod: PodRecord | None) -> tuple[bool, str, str]:
    if pod is not None and pod.phase == "Running" and not pod.deleting:
        return True, "PodRunning", f"pod {pod.name} is running"
    if phase == "Suspended":
        return False, "Suspended", "no controller while suspended"
    if phase in FINAL:
        return False, "SearchFinished", "the search is over"
    if pod is None:
        return False, "PodMissing", "the controller pod is being created"
    return False, f"Pod{pod.phase}", pod.message or f"pod {pod.name} is {pod.phase}"


def derive_search_status(
    search: dict[str, Any],
    records: list[TrialRecord],
    pod: PodRecord | None,
    now: datetime,
    restart_limit: int,
    final: dict[str, Any] | None = None,
    refusal: Refusal | None = None,
    volume: tuple[bool, str, str] | None = None,
) -> dict[str, Any]:
    """The operator-owned part of the status (never ``status.controller``).

    ``final``: status.final as derived in this pass, else the one written before is kept.
    ``refusal``: what refused this pass (rule 0). ``volume``: (ready, reason, message) of
    the search's claim when looked at in this pass, else the condition written before.
    """
    old = search.get("status") or {}
    generation = SearchRecord.of(search).generation
    counts = count_trials(records)
    phase, reason, message = derive_phase(search, counts, pod, restart_limit, final, refusal)
    final = final if final is not None else old.get("final")
    stamp = format_time(now)
    conditions = old.get("conditions") or []
    ready, ready_reason, ready_message = _controller_ready(phase, pod)

    def condition(kind: str, true: bool, reason_: str, message_: str = "") -> dict[str, Any]:
        return _condition(conditions, kind, true, reason_, message_, generation, stamp)

    def phase_condition(kind: str, when: str) -> dict[str, Any]:
        on = phase == when
        return condition(kind, on, reason if on else f"Not{kind}", message if on else "")

    status: dict[str, Any] = {
        "phase": phase,
        "trials": counts.as_status(),
        "progress": f"{counts.finished}/{(search['spec'].get('trials') or {}).get('max', 100)}",
        "conditions": [
            condition("ControllerReady", ready, ready_reason, ready_message),
            phase_condition("Suspended", "Suspended"),
            phase_condition("Complete", "Succeeded"),
            phase_condition("Failed", "Failed"),
            condition("WeightsReady", *weights_condition(final, phase not in FINAL)),
        ],
        "startTime": old.get("startTime") or stamp,
    }
    previous_volume = _find(conditions, "VolumeReady")
    if volume is not None:
        status["conditions"].append(condition("VolumeReady", *volume))
    elif previous_volume is not None:
        status["conditions"].append(previous_volume)
    best = best_trial(records)
    if best is not None:
        status["best"] = best
    if final:
        status["final"] = final
    if phase in FINAL:
        status["completionTime"] = old.get("completionTime") or stamp
    return status


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as a naive UTC datetime (the operator's clock is naive UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
