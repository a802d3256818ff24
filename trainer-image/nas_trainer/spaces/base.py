"""What every search space provides (torch-free).

A space is an ordered list of categorical decisions. A controller emits one token per
decision (the index into its choices); the space turns tokens into the canonical form
the trainer builds from, hashes it, validates it and parses it back.
"""
from __future__ import annotations

import dataclasses
import random as random_module
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from ..architecture import Architecture, sha256_hash

# Tries before giving up on drawing a valid (or, for mutation, a different) architecture;
# only spaces with invalid corners (nas-bench-graph's all-skip cell) ever retry.
MAX_DRAWS = 1000


@dataclass(frozen=True)
class Anchor:
    """Marks a skip-connection decision: may `earlier` feed `layer`?

    The RL controller answers it with the paper's attention over anchor points,
    sigmoid(vᵀ tanh(W_prev h_earlier + W_curr h_layer)), instead of a softmax head.
    """

    layer: int
    earlier: int


@dataclass(frozen=True)
class Decision:
    """One step of the token sequence.

    `layer` groups the steps of one macro-cnn layer: a controller that uses anchor points
    takes its anchor step for a layer after the layer's last non-anchor decision.
    """

    name: str
    choices: tuple[Any, ...]
    layer: int | None = None
    anchor: Anchor | None = None

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"decision {self.name} needs at least one choice")


class OptionError(ValueError):
    """A bad space option; the message starts with the option's name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_options(options_type: type, options: Mapping[str, Any] | None, space: str) -> Any:
    """Build a space's Options dataclass from a user mapping, rejecting unknown keys and
    wrong types with messages that name the option."""
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    hints = typing.get_type_hints(options_type)
    given = dict(options or {})
    for key in given:
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise OptionError(key, f"{key} is not an option of {space} (valid: {valid})")
    for key, value in given.items():
        expected = hints[key]
        if expected is bool and not isinstance(value, bool):
            raise OptionError(key, f"{key} must be true or false (got {value!r})")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise OptionError(key, f"{key} must be an integer (got {value!r})")
        if expected is str and not isinstance(value, str):
            raise OptionError(key, f"{key} must be a string (got {value!r})")
    return options_type(**given)


def require_option(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise OptionError(key, message)


def format_choices(choices: Sequence[Any]) -> str:
    return ", ".join(str(choice) for choice in choices)


class SearchSpace(ABC):
    """Base class of the built-in spaces and of `custom`.

    Subclasses set `name`, `Options` (a dataclass) and implement `_build_decisions`,
    `canonical` and `_values_from_canonical`; `_check` adds rules beyond per-decision
    ranges and `hash` may define equivalence.
    """

    name: ClassVar[str]
    Options: ClassVar[type]

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.parsed_options = parse_options(self.Options, options, self.name)
        # The full option set, defaults included, as recorded in architecture JSON.
        self.options: dict[str, Any] = dataclasses.asdict(self.parsed_options)
        self.decisions: tuple[Decision, ...] = tuple(self._build_decisions())
        self._index = {d.name: i for i, d in enumerate(self.decisions)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    # --- what subclasses define ---------------------------------------------------
    @abstractmethod
    def _build_decisions(self) -> list[Decision]:
        """The ordered steps of the token sequence."""

    @abstractmethod
    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        """The readable form the trainer builds from (tokens already validated)."""

    @abstractmethod
    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        """Decision name -> chosen value, read from a canonical form; raise ValueError
        naming the field when the form is malformed."""

    def _check(self, tokens: tuple[int, ...]) -> None:
        """Rules beyond per-decision ranges; raise ValueError saying what is wrong."""

    def hash(self, canonical: Mapping[str, Any]) -> str:
        """Stable hash of a canonical form; equal for architectures the space deems
        equivalent."""
        return sha256_hash(canonical)

    def size(self) -> int | None:
        """Number of distinct architectures (distinct hashes), None if not counted."""
        total = 1
        for decision in self.decisions:
            total *= len(decision.choices)
        return total

    # --- shared behaviour ------------------------------------------------------------
    def validate(self, tokens: Sequence[int]) -> tuple[int, ...]:
        """Check a token sequence; return it as a tuple or raise ValueError."""
        tokens = tuple(tokens)
        if len(tokens) != len(self.decisions):
            raise ValueError(f"{self.name} with options {self.options} takes "
                             f"{len(self.decisions)} tokens (got {len(tokens)})")
        for position, (token, decision) in enumerate(zip(tokens, self.decisions)):
            if isinstance(token, bool) or not isinstance(token, int) or not (
                    0 <= token < len(decision.choices)):
                raise ValueError(f"tokens[{position}] ({decision.name}) must be in "
                                 f"0..{len(decision.choices) - 1} (got {token!r})")
        self._check(tokens)
        return tokens

    def from_tokens(self, tokens: Sequence[int], meta: Mapping[str, Any] | None = None
                    ) -> Architecture:
        tokens = self.validate(tokens)
        canonical = self.canonical(tokens)
        return Architecture(space=self.name, options=self.options, tokens=tokens,
                            canonical=canonical, hash=self.hash(canonical), meta=dict(meta or {}))

    def values(self, tokens: Sequence[int]) -> dict[str, Any]:
        """Decision name -> chosen value."""
        return {d.name: d.choices[t] for d, t in zip(self.decisions, tokens)}

    def tokens_from_values(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        tokens = []
        for decision in self.decisions:
            if decision.name not in values:
                raise ValueError(f"{decision.name} is missing")
            value = values[decision.name]
            matches = [i for i, choice in enumerate(decision.choices)
                       if choice == value and type(choice) is type(value)]
            if not matches:
                matches = [i for i, choice in enumerate(decision.choices) if choice == value
                           and not isinstance(value, bool) and not isinstance(choice, bool)]
            if not matches:
                raise ValueError(f"{decision.name} must be one of "
                                 f"{format_choices(decision.choices)} (got {value!r})")
            tokens.append(matches[0])
        return tuple(tokens)

    def from_canonical(self, canonical: Mapping[str, Any],
                       meta: Mapping[str, Any] | None = None) -> Architecture:
        """Parse a canonical form (e.g. written by a user) back into an Architecture."""
        if not isinstance(canonical, Mapping):
            raise ValueError(f"{self.name} canonical form must be an object "
                             f"(got {type(canonical).__name__})")
        return self.from_tokens(self.tokens_from_values(self._values_from_canonical(canonical)),
                                meta)

    def parse(self, doc: Mapping[str, Any]) -> Architecture:
        """Parse contract-2 JSON and check it belongs to this space and is consistent."""
        given = Architecture.from_json(doc)
        if given.space != self.name:
            raise ValueError(f"architecture is of space {given.space!r}, not {self.name!r}")
        if dict(given.options) != self.options:
            raise ValueError(f"architecture options {dict(given.options)} differ from the "
                             f"space's {self.options}")
        arch = self.from_tokens(given.tokens, given.meta)
        if arch.hash != given.hash:
            raise ValueError(f"architecture hash {given.hash} does not match its tokens "
                             f"(expected {arch.hash})")
        return arch

    def random(self, rng: random_module.Random) -> Architecture:
        """A uniformly drawn valid architecture (uniform over token sequences)."""
        for _ in range(MAX_DRAWS):
            tokens = [rng.randrange(len(d.choices)) for d in self.decisions]
            try:
                return self.from_tokens(tokens)
            except ValueError:
                continue
        raise RuntimeError(f"could not draw a valid {self.name} architecture")

    def mutate(self, arch: Architecture, rng: random_module.Random) -> Architecture:
        """Change one decision to another choice, giving a valid, different architecture."""
        mutable = [i for i, d in enumerate(self.decisions) if len(d.choices) > 1]
        if not mutable:
            return arch
        for _ in range(MAX_DRAWS):
            position = rng.choice(mutable)
            tokens = list(arch.tokens)
            other = rng.randrange(len(self.decisions[position].choices) - 1)
            tokens[position] = other if other < tokens[position] else other + 1
            try:
                child = self.from_tokens(tokens)
            except ValueError:
                continue
            if child.hash != arch.hash:
                return child
        raise RuntimeError(f"could not mutate {arch.hash} into a different valid architecture")
