"""spec.trainer.nodes in a manifest: the combinations a trial spanning nodes cannot run,
refused by `nas validate` in the words of the CRD's rules.

A multi-node trial is an Indexed Job of `nodes` pods under torchrun (distributed_launch.py);
a custom spec.trainer.command is allowed (its pods get the same rendezvous env to use).
"""
from __future__ import annotations

from typing import Any, Mapping

from nas_contracts.cluster import MAX_NODES

from .manifest_errors import ManifestError

WARM_POOL_MESSAGE = ("spec.trainer.nodes > 1 needs spec.trials.mode Job (a trial spanning "
                     "nodes runs as an Indexed Job; a warm worker is one pod): remove nodes "
                     "or use mode Job")
SHARED_WEIGHTS_MESSAGE = ("spec.trainer.nodes > 1 does not apply with spec.trainer.sharedWeights "
                          "(one process scores and trains the supernet): remove one of them")
TABLE_MESSAGE = ("spec.trainer.nodes > 1 does not apply to spec.searchSpace.name "
                 "nas-bench-graph (its trials are a table look-up): remove nodes")


def check_nodes(trainer: Mapping[str, Any], mode: str, space_name: str) -> None:
    """`trainer`: spec.trainer as written (its range is checked with the other integers)."""
    nodes = trainer.get("nodes")
    if nodes is None or isinstance(nodes, bool) or not isinstance(nodes, int) or nodes <= 1:
        return
    if mode == "WarmPool":
        raise ManifestError(WARM_POOL_MESSAGE)
    if trainer.get("sharedWeights") is not None:
        raise ManifestError(SHARED_WEIGHTS_MESSAGE)
    if space_name == "nas-bench-graph":
        raise ManifestError(TABLE_MESSAGE)


__all__ = ["MAX_NODES", "check_nodes"]
