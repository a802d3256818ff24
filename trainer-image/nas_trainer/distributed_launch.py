"""`nas-train` for a data-parallel trial: the process the pod starts launches the workers
under torchrun and reports what rank 0 ended with (training/distributed.py trains).

The workers get the architecture and the trainer block already read (as inline JSON in
the environment, so `--architecture -` works too) and write no termination log: rank 0
hands its exit code and result JSON to this process through a file, and this process
writes the termination message and prints the result as a single-process trial does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from nas_contracts import cluster as contract

from .cpus import usable_cpus

# set by torchrun in its workers; their absence means a single process
RANK_ENV, WORLD_ENV, LOCAL_RANK_ENV = "RANK", "WORLD_SIZE", "LOCAL_RANK"
RESULT_ENV = "NAS_DISTRIBUTED_RESULT"  # where rank 0 leaves {"code", "doc"}


def in_worker() -> bool:
    return int(os.environ.get(WORLD_ENV) or 1) > 1


def nodes() -> int:
    """Pods this trial spans (spec.trainer.nodes, NAS_NODES set by the operator); 1 in a
    worker and outside a multi-node trial."""
    if in_worker():
        return 1
    value = os.environ.get(contract.ENV_NODES) or "1"
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def node_rank() -> int:
    """This pod's index in the trial's Indexed Job (0 hosts the rendezvous)."""
    value = os.environ.get(contract.ENV_NODE_RANK) or "0"
    return int(value) if value.isdigit() else 0


def multi_node_command(processes: int, argv: list[str]) -> list[str]:
    """torchrun for one node of a multi-node trial: a static rendezvous at index 0's
    <job>-0.<job> (the headless Service), this pod's rank its completion index."""
    host = os.environ.get(contract.ENV_RENDEZVOUS_HOST) or "localhost"
    port = os.environ.get(contract.ENV_RENDEZVOUS_PORT) or str(contract.RENDEZVOUS_PORT)
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes()}",
            f"--node-rank={node_rank()}", f"--nproc-per-node={processes}",
            f"--master-addr={host}", f"--master-port={port}",
            "-m", "nas_trainer.train_cli", *argv]


def processes_for(architecture: Any, read_config: Callable[[], dict[str, Any]]) -> int:
    """How many processes this trial wants (1: train here). A table look-up never trains;
    a config that cannot be read is left for the single-process path to report."""
    if in_worker() or not isinstance(architecture, dict):
        return 1
    if architecture.get("space") in (None, "nas-bench-graph"):
        return 1
    try:
        doc = read_config()
    except Exception:  # noqa: BLE001 - reported by evaluate() with the right exit code
        return 1
    configured = doc.get("processes")
    if configured is None and doc.get("sharedWeights") is not None:
        return 1  # one process scores and trains the supernet per child (oneshot/)
    if configured is not None and (isinstance(configured, bool) or not isinstance(configured, int)
                                   or configured < 1):
        return 1  # invalid: TrainerConfig's check explains it
    from .training.distributed import processes_wanted

    return processes_wanted(configured, str(doc.get("device") or "auto"))


def run_workers(processes: int, architecture: dict[str, Any], config: dict[str, Any],
                out: str | None, quiet: bool) -> tuple[int, dict[str, Any] | None]:
    """Runs the trial's workers (this pod's, in a multi-node trial) to the end: (torchrun's
    exit code, rank 0's {"code", "doc"} or None when rank 0 reported nothing or runs in
    another pod)."""
    from .training.distributed import launch_command

    argv = ["--termination-log", ""]
    if out:
        argv += ["--out", out]
    if quiet:
        argv.append("--quiet")
    with tempfile.TemporaryDirectory(prefix="nas-ddp-") as folder:
        handoff = Path(folder) / "rank0.json"
        env = {**os.environ, RESULT_ENV: str(handoff),
               # torchrun would give each worker one thread: share the pod's cores instead
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")
               or str(max(1, usable_cpus() // processes)),
               "NAS_ARCHITECTURE": json.dumps(architecture),
               "NAS_TRAINER_CONFIG": json.dumps(config)}
        command = (multi_node_command(processes, argv) if nodes() > 1
                   else launch_command(processes, argv))
        code = subprocess.call(command, env=env)
        try:
            return code, json.loads(handoff.read_text())
        except (OSError, ValueError):
            return code, None


def hand_over(code: int, doc: dict[str, Any]) -> bool:
    """In rank 0 of a data-parallel trial: leave the outcome for the launching process.
    True when this process is such a worker (it then writes and prints nothing else)."""
    path = os.environ.get(RESULT_ENV)
    if not in_worker() or not path:
        return False
    from .training.distributed import leave

    leave()  # joined by the training (training/run.py), once per worker process
    if int(os.environ.get(RANK_ENV) or 0) == 0:
        Path(path).write_text(json.dumps({"code": code, "doc": doc}))
    return True
