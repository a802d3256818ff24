"""Section 8: a warm worker's assignment (written by the operator) and its answer
(written by the worker), both JSON in the worker pod's annotations.

A worker holds at most one assignment (or one pack, below) ``{trial, uid, attempt,
architecture, config, startTime, outputDir}`` and answers it with ``{trial, uid,
attempt, result}``, ``result`` being the result JSON (section 3). ``run_key`` says
which run of which Trial a document is about; an answer is to the assignment of the
same key.

A pack (several Trials given to one worker at once) is ``{"pack": [assignment, ...]}``
(at most ``MAX_PACK``), answered by ``{"pack": [answer, ...]}`` that grows as each
Trial finishes; a single assignment reads as a pack of one, so both forms are read
everywhere (``assignments_in``, ``answers_in``, ``pending_assignments``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ASSIGNMENT_ANNOTATION = "archsearch.io/assignment"
RESULT_ANNOTATION = "archsearch.io/result"

RunKey = tuple[Any, Any, Any]

# Each answer is compacted under 3.5 KiB (the worker's result_patch) and an assignment
# carries an architecture and a config of a few KiB: 8 of each stay far below the
# 256 KiB all of a pod's annotations may hold. 8 is also the trainer's own cap on
# children trained at once (training/packing.MAX_PACK).
MAX_PACK = 8


def run_key(doc: Mapping[str, Any]) -> RunKey:
    """(trial, uid, attempt): which run of which Trial an assignment or answer is about."""
    return doc.get("trial"), doc.get("uid"), doc.get("attempt")


def read_annotation(annotations: Mapping[str, str] | None, key: str) -> dict[str, Any] | None:
    """The JSON object in annotation ``key``; None when absent or not an object."""
    raw = (annotations or {}).get(key)
    try:
        value = json.loads(raw) if raw else None
    except (ValueError, TypeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def assignment_in(annotations: Mapping[str, str] | None) -> dict[str, Any] | None:
    return read_annotation(annotations, ASSIGNMENT_ANNOTATION)


def answer_in(annotations: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The worker's answer to the current assignment (None until it answered it)."""
    assignment = assignment_in(annotations)
    answer = read_annotation(annotations, RESULT_ANNOTATION)
    if assignment is None or answer is None or run_key(answer) != run_key(assignment):
        return None
    return answer


def pending_assignment(annotations: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The assignment still to be answered (None when idle or answered already)."""
    assignment = assignment_in(annotations)
    if assignment is None or answer_in(annotations) is not None:
        return None
    return assignment


def build_assignment(
    trial: Mapping[str, Any],
    attempt: int,
    config: Mapping[str, Any],
    output_dir: str | None,
    now: str,
) -> dict[str, Any]:
    """The assignment of ``trial``'s run ``attempt``; ``config`` is its NAS_TRAINER_CONFIG."""
    assignment = {
        "trial": trial["metadata"]["name"],
        "uid": trial["metadata"]["uid"],
        "attempt": attempt,
        "architecture": trial["spec"]["architecture"],
        "config": dict(config),
        "startTime": now,
    }
    if output_dir:
        assignment["outputDir"] = output_dir
    return assignment


def answer(assignment: Mapping[str, Any], result_json: str) -> str:
    """The annotation's value answering ``assignment`` with a (compact) result JSON."""
    trial, uid, attempt = run_key(assignment)
    doc = {"trial": trial, "uid": uid, "attempt": attempt, "result": json.loads(result_json)}
    return json.dumps(doc, sort_keys=True)


def _pack_of(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The documents of a pack, or of a single document read as a pack of one."""
    if doc is None:
        return []
    if "pack" not in doc:
        return [dict(doc)]
    members = doc.get("pack")
    return [dict(m) for m in members if isinstance(m, dict)] if isinstance(members, list) else []


def assignments_in(annotations: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """Every assignment this worker holds (one, a pack, or none)."""
    return _pack_of(read_annotation(annotations, ASSIGNMENT_ANNOTATION))


def answers_in(annotations: Mapping[str, str] | None) -> dict[RunKey, dict[str, Any]]:
    """The answers given so far to the assignments held, by run key (older runs' ignored)."""
    held = {run_key(a) for a in assignments_in(annotations)}
    answers = _pack_of(read_annotation(annotations, RESULT_ANNOTATION))
    return {run_key(a): a for a in answers if run_key(a) in held}


def pending_assignments(annotations: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """The assignments held that are not answered yet, in the order written."""
    answered = answers_in(annotations)
    return [a for a in assignments_in(annotations) if run_key(a) not in answered]


def build_pack(assignments: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The annotation document giving ``assignments`` (from build_assignment) at once."""
    if not 1 <= len(assignments) <= MAX_PACK:
        raise ValueError(f"a pack holds 1 to {MAX_PACK} assignments, not {len(assignments)}")
    if len({run_key(a) for a in assignments}) != len(assignments):
        raise ValueError("a pack holds each run of a Trial once")
    return {"pack": [dict(a) for a in assignments]}


def answer_pack(answered: list[tuple[Mapping[str, Any], str]]) -> str:
    """The annotation's value answering a pack so far: (assignment, compact result JSON)
    for each Trial finished, in the order finished."""
    docs = [json.loads(answer(assignment, result)) for assignment, result in answered]
    return json.dumps({"pack": docs}, sort_keys=True)
