"""The trainer's result JSON (contract 3), as the operator reads it from a pod's
termination message or a warm worker's answer: the contract's one reader
(``nas_contracts.result``), and messages cut to fit a status field."""

from __future__ import annotations

from nas_contracts.result import ERROR_LIMIT as MAX_MESSAGE
from nas_contracts.result import TrialResult, parse_result  # noqa: F401  (the operator's reader)


def short_message(text: str | None) -> str:
    """A message fit for a status field: stripped, at most MAX_MESSAGE characters (the tail)."""
    text = (text or "").strip()
    return text if len(text) <= MAX_MESSAGE else "…" + text[-(MAX_MESSAGE - 1) :]
