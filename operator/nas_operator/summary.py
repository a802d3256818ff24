"""A one-line rendering of an architecture, for ``kubectl get trials``."""

from __future__ import annotations

from typing import Any

MAX_SUMMARY = 100


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def summarize(architecture: dict[str, Any], limit: int = MAX_SUMMARY) -> str:
    """``canonical`` in one line: its ``arch_str`` when it has one, else key=value pairs."""
    canonical = architecture.get("canonical")
    if isinstance(canonical, dict) and isinstance(canonical.get("arch_str"), str):
        text = canonical["arch_str"]
    elif isinstance(canonical, dict) and canonical:
        text = " ".join(f"{k}={_render(v)}" for k, v in canonical.items())
    else:
        text = str(architecture.get("hash", ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"
