"""A space of named categorical decisions declared in the manifest, for users who bring
their own trainer: the canonical form is {decision name: chosen value} in order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .base import Decision, SearchSpace

SCALAR_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class CustomOptions:
    pass


def parse_decisions(decisions: Any) -> list[Decision]:
    """Check a manifest's `decisions` list; messages name the offending entry."""
    if not isinstance(decisions, (list, tuple)) or not decisions:
        raise ValueError("decisions must be a non-empty list of {name, choices}")
    parsed, seen = [], set()
    for i, entry in enumerate(decisions):
        if isinstance(entry, Decision):
            entry = {"name": entry.name, "choices": list(entry.choices)}
        if not isinstance(entry, Mapping):
            raise ValueError(f"decisions[{i}] must be an object with name and choices (got {entry!r})")
        unknown = sorted(set(entry) - {"name", "choices"})
        if unknown:
            raise ValueError(f"decisions[{i}].{unknown[0]} is not a field (valid: name, choices)")
        name, choices = entry.get("name"), entry.get("choices")
        if not isinstance(name, str) or not name:
            raise ValueError(f"decisions[{i}].name must be a non-empty string (got {name!r})")
        if name in seen:
            raise ValueError(f"decisions[{i}].name {name!r} is used twice")
        seen.add(name)
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ValueError(f"decisions[{i}].choices must be a non-empty list (got {choices!r})")
        for j, choice in enumerate(choices):
            if not isinstance(choice, SCALAR_TYPES):
                what = "null is not a choice" if choice is None else \
                    "lists and objects are not choices"
                raise ValueError(f"decisions[{i}].choices[{j}] must be a string, number or "
                                 f"boolean: {what} (got {choice!r})")
        keyed = [(type(c).__name__, c) for c in choices]
        if len(set(keyed)) != len(keyed):
            raise ValueError(f"decisions[{i}].choices has duplicates (got {list(choices)!r})")
        parsed.append(Decision(name, tuple(choices)))
    return parsed


class CustomSpace(SearchSpace):
    name = "custom"
    Options = CustomOptions

    def __init__(self, options: Mapping[str, Any] | None = None,
                 decisions: Sequence[Mapping[str, Any] | Decision] | None = None) -> None:
        self._declared = parse_decisions(decisions)
        super().__init__(options)

    def _build_decisions(self) -> list[Decision]:
        return list(self._declared)

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        return self.values(tokens)

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [key for key in canonical if key not in self._index]
        if unknown:
            raise ValueError(f"{unknown[0]} is not a decision of this space "
                             f"(valid: {', '.join(self._index)})")
        return dict(canonical)
