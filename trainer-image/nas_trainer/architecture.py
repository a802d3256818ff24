"""One sampled architecture, as it travels between strategy, search loop and trainer.

The JSON form is contract 2 (`nas.architecture/v1`, docs/contracts.md). An Architecture
is built by a SearchSpace (`space.from_tokens(...)`), which fills `canonical` and `hash`;
this module only holds and (de)serialises it, so it needs no space and no torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from nas_contracts.architecture import SCHEMA as ARCHITECTURE_SCHEMA


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for hashing: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sha256_hash(value: Any) -> str:
    """Stable short hash of a JSON-able value (first 16 hex chars of sha256)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=True)
class Architecture:
    """An architecture of one search space.

    Equality is by (space, options, tokens): two samples with the same tokens are the same
    architecture whatever their `meta`. Equivalent architectures with different tokens
    compare unequal but share `hash`, which is what deduplication uses.
    """

    space: str
    options: Mapping[str, Any]
    tokens: tuple[int, ...]
    canonical: Mapping[str, Any] = field(compare=False)
    hash: str = field(compare=False)
    # Sampling details (log_prob, policy_version, ...): never part of identity.
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Own copies: an Architecture never changes under a caller's feet (and pickles).
        object.__setattr__(self, "options", dict(self.options or {}))
        object.__setattr__(self, "tokens", tuple(int(t) for t in self.tokens))
        object.__setattr__(self, "meta", dict(self.meta or {}))

    def __hash__(self) -> int:
        return hash((self.space, self.tokens, self.hash))

    def with_meta(self, **meta: Any) -> "Architecture":
        """A copy with `meta` extended (e.g. the log-probability at sampling time)."""
        return dataclasses.replace(self, meta={**self.meta, **meta})

    def to_json(self, include_meta: bool = False) -> dict[str, Any]:
        """Contract 2 document; `meta` is added only when asked (it is not part of it)."""
        doc: dict[str, Any] = {
            "schema": ARCHITECTURE_SCHEMA,
            "space": self.space,
            "options": dict(self.options),
            "tokens": list(self.tokens),
            "canonical": json.loads(json.dumps(self.canonical)),
            "hash": self.hash,
        }
        if include_meta and self.meta:
            doc["meta"] = dict(self.meta)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Architecture":
        """Parse a contract 2 document. Use `SearchSpace.parse` to also check that tokens,
        canonical form and hash agree with the space."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"an architecture must be a JSON object (got {type(doc).__name__})")
        schema = doc.get("schema", ARCHITECTURE_SCHEMA)
        if schema != ARCHITECTURE_SCHEMA:
            raise ValueError(f"architecture schema must be {ARCHITECTURE_SCHEMA!r} (got {schema!r})")
        missing = [key for key in ("space", "tokens", "canonical", "hash") if key not in doc]
        if missing:
            raise ValueError(f"architecture is missing {', '.join(missing)}")
        tokens = doc["tokens"]
        if not isinstance(tokens, (list, tuple)) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise ValueError(f"architecture tokens must be a list of integers (got {tokens!r})")
        return cls(space=str(doc["space"]), options=dict(doc.get("options") or {}),
                   tokens=tuple(tokens), canonical=dict(doc["canonical"]), hash=str(doc["hash"]),
                   meta=dict(doc.get("meta") or {}))
