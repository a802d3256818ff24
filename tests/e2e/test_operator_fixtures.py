"""Fixtures and helpers shared by the operator's end-to-end tests (no tests here).

- ``crds`` (session): the CRDs of crds/ applied to the test cluster and Established
  (``apply_crds(cluster)``, also used by benchmarks/operator_scale.py).
- ``operator`` (function): the real operator, ``python -m kopf run -m nas_operator``, as
  a local process watching the test's namespace with the admin kubeconfig. Its log is
  in the cluster's run dir and is printed when a test fails.
- ``kubectl(...)``, ``api(...)`` helpers, ``search_manifest(...)``, ``result_command(...)``.

Other test modules import the fixtures they use from here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kube import Kube
from tests.cluster.paths import REPO_ROOT, binary
from tests.cluster.processes import spawn
from tests.cluster.waiting import wait_for

CRDS = REPO_ROOT / "crds"
GROUP_VERSION = "archsearch.io/v1alpha1"
IDLE_CONTROLLER = ["python", "-c", "import time; time.sleep(3600)"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubectl(
    cluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Runs the test cluster's kubectl with the admin kubeconfig."""
    result = subprocess.run(
        [str(binary("kubectl")), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        )
    return result


def apply(
    cluster, obj: dict[str, Any] | str, *, check: bool = True, user: str | None = None
) -> subprocess.CompletedProcess:
    text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
    extra = ["--as", user] if user else []
    return kubectl(cluster, "apply", "-f", "-", *extra, input=text, check=check)


def kube(cluster) -> Kube:
    return Kube(cluster.api_client())


def get(cluster, path: str) -> dict[str, Any] | None:
    return kube(cluster).get_or_none(path)


def search_path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP_VERSION}/namespaces/{namespace}/architecturesearches" + (
        f"/{name}" if name else ""
    )


def trial_path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP_VERSION}/namespaces/{namespace}/trials" + (f"/{name}" if name else "")


def result_command(
    reward: float = 0.5, exit_code: int = 0, error: str = "", fail_first: str = ""
) -> list[str]:
    """A trainer stand-in: ``python -c`` writing a result JSON to the termination log.

    ``fail_first``: a file path; the first attempt creates it and exits 1 (retryable).
    """
    result = (
        {"schema": "nas.result/v1", "error": error, "permanent": True}
        if error
        else {
            "schema": "nas.result/v1",
            "reward": reward,
            "metrics": {"val_accuracy": reward},
            "epochs": 1,
            "seconds": 0.01,
            "parameters": 1234,
        }
    )
    script = (
        "import json, os, sys\n"
        f"flag = {fail_first!r}\n"
        "if flag and not os.path.exists(flag):\n"
        "    open(flag, 'w').close(); print('transient failure'); sys.exit(1)\n"
        "arch = json.loads(os.environ['NAS_ARCHITECTURE'])\n"
        "json.loads(os.environ['NAS_TRAINER_CONFIG'])\n"
        f"open('/dev/termination-log', 'w').write(json.dumps({result!r}))\n"
        f"sys.exit({exit_code})\n"
    )
    return ["python", "-c", script]


def search_manifest(
    name: str,
    *,
    command: list[str] | None = None,
    suspend: bool = False,
    controller: bool = True,
    **trials: Any,
) -> dict[str, Any]:
    """A search of the custom space whose trainer is ``command`` (default: reward 0.5)."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ArchitectureSearch",
        "metadata": {"name": name},
        "spec": {
            "searchSpace": {
                "name": "custom",
                "decisions": [{"name": "width", "choices": [8, 16, 32]}],
            },
            "strategy": {"name": "random", "seed": 0},
            "trials": {"max": 4, "parallelism": 2, "retries": 1, "timeoutSeconds": 120, **trials},
            "trainer": {"image": "nas-trainer:test", "command": command or result_command()},
            "suspend": suspend,
        },
    }


def trial_manifest(search: dict[str, Any], index: int, generation: int = 1) -> dict[str, Any]:
    """A Trial as a controller writes it (contract 4), owned by ``search`` (as read back)."""
    name = search["metadata"]["name"]
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Trial",
        "metadata": {
            "name": f"{name}-{index:05d}",
            "labels": {"archsearch.io/search": name, "archsearch.io/trial-index": str(index)},
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "ArchitectureSearch",
                    "name": name,
                    "uid": search["metadata"]["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "searchName": name,
            "index": index,
            "architecture": {
                "space": "custom",
                "tokens": [index % 3],
                "canonical": {"width": [8, 16, 32][index % 3]},
                "hash": f"h{index:04d}",
            },
            "logProb": -1.1,
            "policyVersion": 0,
            "searchGeneration": generation,
        },
    }


@pytest.fixture(scope="session")
def crds(cluster) -> None:
    apply_crds(cluster)


def apply_crds(cluster) -> None:
    """Applies the CRDs of crds/ and waits until they are served and published."""
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for crd in ("architecturesearches.archsearch.io", "trials.archsearch.io"):
        # kubectl wait fails outright on a CRD whose status has no conditions yet (a
        # loaded API server may take a moment to write the first): ask again
        wait_for(
            lambda crd=crd: kubectl(
                cluster, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}",
                check=False,
            ).returncode == 0,
            f"CRD {crd} to be Established",
            timeout=90,
        )
    # discovery of the new group can lag the Established condition by a moment
    wait_for(
        lambda: kubectl(cluster, "get", "archsearch", "-A", check=False).returncode == 0,
        "the ArchitectureSearch resource to be served",
        timeout=30,
    )
    # the aggregated OpenAPI document (what `kubectl explain` reads) is rebuilt after that
    wait_for(
        lambda: kubectl(
            cluster, "explain", "archsearch.spec.trials", check=False
        ).returncode == 0,
        "the ArchitectureSearch schema to be published in OpenAPI",
        timeout=60,
    )


class OperatorProcess:
    """The operator as a local process (what the chart's Deployment runs)."""

    def __init__(
        self, cluster, namespaces: list[str], env: dict[str, str] | None = None, tag: str = ""
    ) -> None:
        self.cluster = cluster
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log_path = (
            Path(cluster.run_dir) / f"operator-{'-'.join(namespaces)}{tag}-{time.time_ns()}.log"
        )
        args = [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "-m",
            "nas_operator",
            "--standalone",
            f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
        ]
        for ns in namespaces:
            args += ["--namespace", ns]
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "NAS_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "NAS_OPERATOR_STATUS_INTERVAL_SECONDS": "0.5",
            "NAS_OPERATOR_CONTROLLER_RESTART_BACKOFF_SECONDS": "1",
            # operator-only tests: a controller stand-in that idles (the real one is
            # tested with the operator in test_operator_search.py)
            "NAS_OPERATOR_CONTROLLER_COMMAND": json.dumps(IDLE_CONTROLLER),
            **(env or {}),
        }
        self.args = args
        self.proc: subprocess.Popen | None = None

    def start(self) -> OperatorProcess:
        log = open(self.log_path, "ab")
        # marked with the run id and killed with pytest, like the control plane, so a
        # killed test run leaves no operator behind (the reaper sweeps the marker)
        self.proc = spawn(self.args, run_id=self.cluster.run_id, log=log, env=self.env,
                          cwd=REPO_ROOT)
        wait_for(
            self.healthy, f"the operator's liveness endpoint (log {self.log_path})", timeout=60
        )
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the operator exited ({self.proc.returncode}):\n{self.log()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return r.read().decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def operator(cluster, crds, namespace) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, [namespace]).start()
    yield op
    op.stop()
    # captured by pytest: shown only when the test fails
    sys.stderr.write(f"\n--- operator log ({op.log_path}) ---\n{op.log()[-6000:]}\n")


def wait_trial(
    cluster,
    namespace: str,
    name: str,
    phases: tuple[str, ...] = ("Succeeded", "Failed"),
    timeout: float = 90,
) -> dict[str, Any]:
    def probe():
        trial = get(cluster, trial_path(namespace, name))
        return trial if trial and (trial.get("status") or {}).get("phase") in phases else None

    return wait_for(
        probe, f"trial {namespace}/{name} to reach {phases}", timeout=timeout, interval=0.3
    )


def events_of(cluster, namespace: str, name: str) -> list[str]:
    items = kube(cluster).get(f"/api/v1/namespaces/{namespace}/events")["items"]
    return [
        f"{e.get('reason')}: {e.get('message')}"
        for e in items
        if e["involvedObject"].get("name") == name
    ]


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


def rights(cluster, user: str, namespace: str) -> set[tuple[str, str, str]]:
    """``kubectl auth can-i --list`` of ``user`` in ``namespace`` as (resource, names,
    verbs) rows, less what every authenticated user may do (discovery, self reviews)."""

    def rows(who: str) -> set[tuple[str, str, str]]:
        out = kubectl(cluster, "auth", "can-i", "--list", "--as", who, "-n", namespace).stdout
        found = set()
        for line in out.splitlines()[1:]:
            parts = re.match(r"^(\S*)\s+(\[.*?\])\s+(\[.*?\])\s+(\[.*?\])\s*$", line)
            if parts and parts.group(1):  # resource rows only, not non-resource URLs
                found.add((parts.group(1), parts.group(3), parts.group(4)))
        return found

    return rows(user) - rows(f"system:serviceaccount:{namespace}:default")
