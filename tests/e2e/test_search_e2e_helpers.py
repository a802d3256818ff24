"""Helpers for the end-to-end searches (no tests here): the real operator running the
real controller (`nas-controller`) as a pod on the test node agent, whose trial pods run
the real trainer (`nas-train`).

- ``search_operator`` (function fixture): the operator of test_operator_fixtures with the
  controller command left to `nas-controller`, a short lease (so a replaced controller
  pod takes over in seconds, not 15) and a free metrics port.
- ``run_search(...)``: apply a manifest and wait for a final phase.
- ``volume_of(...)``: the folder backing the search's volume (the harness provisions a
  PersistentVolume per claim as a folder).
- ``volume_report(...)``: what the volume holds, read as a user would.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from test_operator_fixtures import (  # noqa: F401  (crds is a fixture)
    GROUP_VERSION, OperatorProcess, apply, crds, free_port, get, kube, search_path, trial_path,
)
from tests.cluster.waiting import wait_for

LEASE_SECONDS = 3
CORA = {"name": "nas-bench-graph", "options": {"dataset": "cora"}}  # the searches' space


@dataclass
class ControllerOperator:
    process: OperatorProcess
    controller_metrics_port: int


def start_search_operator(cluster, namespaces: list[str],
                          env: dict[str, str] | None = None) -> ControllerOperator:
    """The operator watching ``namespaces``, running the real `nas-controller` with a
    short lease and a free metrics port (the ``search_operator`` fixture; also used by
    benchmarks/operator_scale.py); ``env``: more operator settings. Stop it with
    ``.process.stop()``."""
    metrics_port = free_port()
    command = ["sh", "-c", f"NAS_LEASE_SECONDS={LEASE_SECONDS} NAS_METRICS_PORT={metrics_port} "
                           f"exec nas-controller"]
    op = OperatorProcess(cluster, namespaces, env={
        "NAS_OPERATOR_CONTROLLER_COMMAND": json.dumps(command),
        "NAS_OPERATOR_STATUS_INTERVAL_SECONDS": "1",
        **(env or {}),
    }, tag="-search").start()
    return ControllerOperator(op, metrics_port)


@pytest.fixture
def search_operator(cluster, crds, namespace) -> Iterator[ControllerOperator]:
    controller_operator = start_search_operator(cluster, [namespace])
    yield controller_operator
    op = controller_operator.process
    op.stop()
    sys.stderr.write(f"\n--- operator log ({op.log_path}) ---\n{op.log()[-4000:]}\n")
    controller_log = Path(cluster.run_dir) / "pods" / namespace
    if controller_log.exists():
        sys.stderr.write(f"pod logs under {controller_log}\n")


def search(name: str, namespace: str, space: dict[str, Any], strategy: dict[str, Any],
           trials: dict[str, Any], trainer: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION, "kind": "ArchitectureSearch",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"searchSpace": space, "strategy": strategy, "trials": trials,
                 "trainer": {"image": "nas-trainer:test", **(trainer or {})}},
    }


def search_object(cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = get(cluster, search_path(namespace, name))
    assert obj is not None, f"search {namespace}/{name} is gone"
    return obj


def wait_final(cluster, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    def final():
        obj = search_object(cluster, namespace, name)
        return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
    return wait_for(final, f"search {name} to finish", timeout=timeout, interval=1.0)


def trials_of(cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    items = kube(cluster).get(trial_path(namespace) + f"?labelSelector=archsearch.io/search={name}")["items"]
    return sorted(items, key=lambda t: t["spec"]["index"])


def volume_of(cluster, namespace: str, name: str) -> Path:
    claim = get(cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}-data")
    assert claim and claim["spec"].get("volumeName"), f"the volume of {name} is not bound"
    volume = get(cluster, f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    return Path(volume["spec"]["hostPath"]["path"])


@dataclass
class VolumeReport:
    records: list[dict[str, Any]]      # trials.jsonl lines, in order
    best: dict[str, Any] | None        # best.json
    checkpoint: dict[str, Any]         # checkpoint/strategy.json
    epoch: int                         # checkpoint/epoch


def volume_report(folder: Path) -> VolumeReport:
    lines = (folder / "trials.jsonl").read_text().splitlines()
    best = folder / "best.json"
    epoch = json.loads((folder / "checkpoint" / "epoch").read_text())["epoch"]
    return VolumeReport(records=[json.loads(line) for line in lines if line.strip()],
                        best=json.loads(best.read_text()) if best.exists() else None,
                        checkpoint=json.loads((folder / "checkpoint" / "strategy.json").read_text()),
                        epoch=int(epoch))


def search_pids(name: str, commands: tuple[bytes, ...], namespace: str | None = None
                ) -> list[int]:
    """PIDs of the local processes of search ``name`` (the node agent runs a pod's command
    as a process of this machine) whose command line names one of ``commands``, not the
    shells that start them."""
    pids = []
    wanted = {f"NAS_SEARCH_NAME={name}".encode()}
    if namespace is not None:
        wanted.add(f"NAS_NAMESPACE={namespace}".encode())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not any(c in cmdline for c in commands) or b"sh\x00-c" in cmdline:
                continue
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            pids.append(int(entry.name))
    return pids


def controller_pids(namespace: str, name: str) -> list[int]:
    """PIDs of the local processes running this search's controller."""
    return search_pids(name, (b"nas-controller",), namespace)


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def assert_volume_agrees_with_trials(cluster, namespace: str, name: str, count: int | None
                                     ) -> tuple[VolumeReport, list[dict[str, Any]]]:
    """What a user checks after a search: every trial once (``count`` of them, when
    given), on the cluster and on the volume, with the same architecture and reward, and
    the same best."""
    trials = trials_of(cluster, namespace, name)
    indices = [t["spec"]["index"] for t in trials]
    assert indices == list(range(len(trials) if count is None else count)), f"trial indices: {indices}"
    assert [t["metadata"]["name"] for t in trials] == [f"{name}-{i:05d}" for i in indices]
    report = volume_report(volume_of(cluster, namespace, name))
    recorded = [r["index"] for r in report.records]
    assert sorted(recorded) == indices, f"trials.jsonl indices: {sorted(recorded)}"
    by_index = {r["index"]: r for r in report.records}
    for trial in trials:
        record, status = by_index[trial["spec"]["index"]], trial.get("status") or {}
        assert record["hash"] == trial["spec"]["architecture"]["hash"]
        assert record["status"] == status.get("phase")
        if status.get("phase") == "Succeeded":
            assert record["reward"] == pytest.approx(status["reward"])
            assert status.get("attempts") == 1, f"trial {trial['metadata']['name']} ran twice"
    rewards = [r["reward"] for r in report.records if r["reward"] is not None]
    if rewards:
        assert report.best is not None and report.best["reward"] == pytest.approx(max(rewards))
        best_status = search_object(cluster, namespace, name)["status"]["best"]
        assert best_status["reward"] == pytest.approx(report.best["reward"])
        # equal rewards may break the tie differently; the architecture must be a best one
        assert by_index[best_status["index"]]["reward"] == pytest.approx(report.best["reward"])
    return report, trials
