"""Section 8: a warm worker's assignment (written by the operator) and its answer
(written by the worker), both JSON in the worker pod's annotations.

A worker holds at most one assignment ``{trial, uid, attempt, architecture, config,
startTime, outputDir}`` and answers it with ``{trial, uid, attempt, result}``, ``result``
being the result JSON (section 3). ``run_key`` says which run of which Trial a document
is about; an answer is to the assignment of the same key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ASSIGNMENT_ANNOTATION = "archsearch.io/assignment"
RESULT_ANNOTATION = "archsearch.io/result"

RunKey = tuple[Any, Any, Any]


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
