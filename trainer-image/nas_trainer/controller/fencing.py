"""Fencing epoch: the volume refuses writes from a controller that has been replaced.

The lease keeps two controllers from running at once while the API answers; the epoch
covers what it cannot (a paused process that wakes after its lease expired). Each
controller that takes over writes ``checkpoint/epoch`` = previous + 1 with its identity,
and checks that the file still names its own epoch before every write it makes.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from nas_contracts.cluster import ENV_POD_NAME, ENV_POD_UID

from nas_trainer.results import atomic_write

EPOCH_FILE = "epoch"


class FencedOut(RuntimeError):
    """A newer controller took over: this one must stop writing and exit."""


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    holder: str

    def to_text(self) -> str:
        return json.dumps({"epoch": self.epoch, "holder": self.holder}) + "\n"

    @classmethod
    def from_text(cls, text: str) -> "EpochRecord":
        text = text.strip()
        if not text:
            return cls(0, "")
        if text.isdigit():  # a bare number is accepted too (hand-written or older file)
            return cls(int(text), "")
        doc = json.loads(text)
        return cls(int(doc["epoch"]), str(doc.get("holder", "")))


def next_epoch(current: EpochRecord | None, me: str) -> EpochRecord:
    """The record a controller taking over writes."""
    return EpochRecord((current.epoch if current else 0) + 1, me)


def check_epoch(on_disk: EpochRecord | None, mine: EpochRecord) -> None:
    """Raise FencedOut unless the volume still names ``mine`` as the writer."""
    if on_disk != mine:
        found = f"epoch {on_disk.epoch} of {on_disk.holder!r}" if on_disk else "no epoch"
        raise FencedOut(
            f"fencing epoch changed: we hold epoch {mine.epoch} as {mine.holder!r}, "
            f"the volume holds {found}; a newer controller took over"
        )


class Fence:
    """The epoch file of one checkpoint folder."""

    def __init__(self, checkpoint_dir: Path, identity: str) -> None:
        self.path = Path(checkpoint_dir) / EPOCH_FILE
        self.identity = identity
        self.mine: EpochRecord | None = None

    def read(self) -> EpochRecord | None:
        try:
            return EpochRecord.from_text(self.path.read_text())
        except FileNotFoundError:
            return None

    def take_over(self) -> int:
        """Claim the next epoch (call while holding the lease); returns it."""
        record = next_epoch(self.read(), self.identity)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, record.to_text().encode())
        self.mine = record
        return record.epoch

    def check(self) -> None:
        if self.mine is None:
            raise FencedOut("no fencing epoch taken yet")
        check_epoch(self.read(), self.mine)

    @property
    def epoch(self) -> int:
        return self.mine.epoch if self.mine else 0


def identity_from_env(env: Mapping[str, str] | None = None) -> str:
    """Who this controller is, for the lease and the epoch file.

    The pod's name and uid (downward API: NAS_POD_NAME, NAS_POD_UID): a restarted
    container of the same pod keeps its identity and takes its own lease back at once,
    while a new pod of the same name (the old one may be a zombie on a lost node) waits
    for the lease to expire. Without a uid a random suffix makes every process distinct.
    """
    env = os.environ if env is None else env
    explicit = env.get("NAS_CONTROLLER_ID")
    if explicit:
        return explicit
    name = env.get(ENV_POD_NAME) or socket.gethostname()
    uid = env.get(ENV_POD_UID) or uuid.uuid4().hex[:8]
    return f"{name}/{uid}"
