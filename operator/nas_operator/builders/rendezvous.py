"""A trial spanning ``spec.trainer.nodes`` pods: its Job is Indexed (one pod per node rank)
and a headless Service named after the Job gives each pod the name
``<job>-<index>.<job>``, so every index finds rank 0's rendezvous at ``<job>-0.<job>``.

The Service is owned by the Trial, as the Job is: deleting the Trial deletes both.
"""
from __future__ import annotations

from typing import Any

from nas_contracts import cluster as contract


def nodes_of(trainer: dict[str, Any]) -> int:
    return int(trainer.get("nodes") or 1)


def rendezvous_host(job: str) -> str:
    """Index 0's pod: hostname ``<job>-0`` (the Indexed Job's), subdomain ``<job>``."""
    return f"{job}-0.{job}"


def rendezvous_env(job: str, nodes: int) -> list[dict[str, str]]:
    """The env torchrun's multi-node launch reads (distributed_launch.py, contract 7)."""
    return [
        {"name": contract.ENV_NODES, "value": str(nodes)},
        {"name": contract.ENV_RENDEZVOUS_HOST, "value": rendezvous_host(job)},
        {"name": contract.ENV_RENDEZVOUS_PORT, "value": str(contract.RENDEZVOUS_PORT)},
    ]


def make_indexed(job: dict[str, Any], nodes: int) -> dict[str, Any]:
    """``job`` with one pod per node: all must succeed; a failed one fails the attempt
    (backoffLimitPerIndex is not set, so the Job's backoffLimit counts every index's)."""
    spec = job["spec"]
    name = job["metadata"]["name"]
    spec["completionMode"] = "Indexed"
    spec["completions"] = nodes
    spec["parallelism"] = nodes
    spec["template"]["spec"]["subdomain"] = name
    return job


def build_service(job: dict[str, Any]) -> dict[str, Any]:
    """The headless Service of ``job``'s pods, with its name, labels and owners."""
    meta = job["metadata"]
    selector = {"batch.kubernetes.io/job-name": meta["name"]}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta["labels"]),
            "ownerReferences": [dict(ref) for ref in meta.get("ownerReferences") or []],
        },
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            # rank 0 must be found before it is Ready (trainer pods have no probe)
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": contract.RENDEZVOUS_PORT}],
        },
    }
