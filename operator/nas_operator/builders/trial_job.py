"""A Trial's batch/v1 Job: the child network is trained in its pod.

- ``podFailurePolicy``: the trainer's exit code 3 (a permanent error: an invalid
  architecture or configuration) fails the Job at once; a pod with the DisruptionTarget
  condition (preemption, eviction, node loss) is replaced without using the retries.
- ``backoffLimit`` is ``spec.trials.retries``; ``activeDeadlineSeconds`` is
  ``spec.trials.timeoutSeconds`` (the Job's clock starts when the Job does, so time
  spent Pending counts).
- The result JSON travels in the termination message; the search volume is mounted only
  when the snapshot says so (ReadWriteMany claim or ``trainer.mountSearchVolume``).
"""

from __future__ import annotations

import json
from typing import Any

from nas_contracts import cluster as contract
from nas_contracts import trial as contract_trial
from nas_contracts import volume
from nas_contracts.cluster import TRAINER_POD_FIELDS as POD_FIELDS
from nas_contracts.result import EXIT_PERMANENT

from ..config import OperatorSettings
from .security import TMP_MOUNT_PATH, container_security, pod_security, tmp_mount, tmp_volume
from ..names import (
    COMPONENT_TRIAL,
    DATA_MOUNT_PATH,
    DATA_VOLUME,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_TRIAL,
    MANAGED_BY,
    TRAINER_CONTAINER,
    job_name,
    owner_reference,
)
from .rendezvous import make_indexed, nodes_of, rendezvous_env
from .snapshot import TrainerSnapshot

# torch's, matplotlib's and the datasets' caches go under $HOME: the writable /tmp
HOME_ENV = {"name": "HOME", "value": TMP_MOUNT_PATH}
DEFAULT_COMMAND = ("nas-train",)

def trainer_config(trainer: dict[str, Any]) -> dict[str, Any]:
    """``NAS_TRAINER_CONFIG``: spec.trainer without the pod fields (contract 7)."""
    return {k: v for k, v in sorted(trainer.items()) if k not in POD_FIELDS}


def job_labels(trial: dict[str, Any]) -> dict[str, str]:
    """A trial Job's (and its pods') labels: the Trial's (contract 4), and the operator's."""
    spec = trial["spec"]
    return {
        **contract_trial.trial_labels(spec["searchName"], spec["index"]),
        LABEL_TRIAL: trial["metadata"]["name"],
        LABEL_COMPONENT: COMPONENT_TRIAL,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def output_dir_of(trial: dict[str, Any], run: TrainerSnapshot) -> str | None:
    """NAS_OUTPUT_DIR of a trial pod: its folder on the search volume, when it mounts it."""
    if not run.mount_search_volume:
        return None
    return volume.trial_output_dir(trial["spec"]["index"])


def _env(
    trial: dict[str, Any], run: TrainerSnapshot, output_dir: str | None
) -> list[dict[str, Any]]:
    spec = trial["spec"]
    env = [
        {"name": contract.ENV_ARCHITECTURE, "value": json.dumps(spec["architecture"], sort_keys=True)},
        {"name": contract.ENV_TRAINER_CONFIG, "value": json.dumps(trainer_config(run.trainer))},
        {"name": contract.ENV_SEARCH_NAME, "value": spec["searchName"]},
        {"name": contract.ENV_TRIAL_NAME, "value": trial["metadata"]["name"]},
        {"name": contract.ENV_TRIAL_INDEX, "value": str(spec["index"])},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if output_dir:
        env.append({"name": contract.ENV_OUTPUT_DIR, "value": output_dir})
    return env


def _container(
    run: TrainerSnapshot,
    settings: OperatorSettings,
    env: list[dict[str, Any]],
    mount_volume: bool,
    command: list[str] | None,
) -> dict[str, Any]:
    trainer = run.trainer
    mounts = list(trainer.get("volumeMounts") or []) + [tmp_mount()]
    if mount_volume:
        mounts.append({"name": DATA_VOLUME, "mountPath": DATA_MOUNT_PATH})
    container: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": trainer.get("image") or settings.default_trainer_image,
        "command": list(command or trainer.get("command") or DEFAULT_COMMAND),
        # the search's env first: where a name repeats, the last one wins, the operator's
        "env": list(trainer.get("env") or []) + env + [HOME_ENV],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security(),
    }
    if trainer.get("args"):
        container["args"] = list(trainer["args"])
    if trainer.get("resources"):
        container["resources"] = trainer["resources"]
    container["volumeMounts"] = mounts
    pull_policy = trainer.get("imagePullPolicy") or settings.image_pull_policy
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    return container


def trainer_pod_spec(
    run: TrainerSnapshot,
    settings: OperatorSettings,
    env: list[dict[str, Any]],
    *,
    mount_volume: bool,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The pod of a trainer (a trial Job's, the final Job's, a warm worker's) from the
    trainer snapshot ``run``: image, command, resources, placement, security, volumes.

    ``mount_volume``: the search volume at /data; ``command`` overrides the trainer's.
    The security contexts are the operator's alone (Pod Security ``restricted``).
    """
    trainer = run.trainer
    volumes = list(trainer.get("volumes") or []) + [tmp_volume()]
    pod: dict[str, Any] = {
        # Jobs: required by podFailurePolicy, the Job makes new pods; warm workers: the
        # operator replaces a dead one
        "restartPolicy": "Never",
        "securityContext": pod_security(settings),
        "containers": [_container(run, settings, env, mount_volume, command)],
    }
    if mount_volume:
        volumes.append(
            {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": run.claim_name}}
        )
    if not trainer.get("serviceAccountName"):
        pod["automountServiceAccountToken"] = False  # the trainer never talks to the API
    for key in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
        "runtimeClassName",
        "serviceAccountName",
        "imagePullSecrets",
    ):
        if trainer.get(key):
            pod[key] = trainer[key]
    pod["volumes"] = volumes
    return pod


def build_training_job(
    trial: dict[str, Any],
    run: TrainerSnapshot,
    settings: OperatorSettings,
    *,
    metadata: dict[str, Any],
    output_dir: str | None,
    suspend: bool,
    deadline_seconds: int,
) -> dict[str, Any]:
    """A Job training ``trial``'s architecture with the trainer snapshot ``run``.

    ``metadata``: name, namespace, labels (also the pod's) and owner references.
    ``output_dir``: NAS_OUTPUT_DIR on the search volume (mounted at /data), or None.
    """
    spec: dict[str, Any] = {
        "backoffLimit": run.retries,
        "activeDeadlineSeconds": int(deadline_seconds),
        "suspend": bool(suspend),
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": TRAINER_CONTAINER,
                        "operator": "In",
                        "values": [EXIT_PERMANENT],
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": dict(metadata["labels"])},
            "spec": trainer_pod_spec(
                run, settings, _env(trial, run, output_dir), mount_volume=bool(output_dir)
            ),
        },
    }
    if settings.trial_job_ttl_seconds is not None:
        spec["ttlSecondsAfterFinished"] = settings.trial_job_ttl_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def build_trial_job(
    trial: dict[str, Any],
    run: TrainerSnapshot,
    settings: OperatorSettings,
    suspend: bool = False,
) -> dict[str, Any]:
    """The Job of ``trial``; ``run`` is the trainer snapshot of its generation."""
    metadata = {
        "name": job_name(trial["metadata"]["name"]),
        "namespace": trial["metadata"]["namespace"],
        "labels": job_labels(trial),
        "ownerReferences": [owner_reference(trial)],
    }
    job = build_training_job(
        trial,
        run,
        settings,
        metadata=metadata,
        output_dir=output_dir_of(trial, run),
        suspend=suspend,
        deadline_seconds=run.timeout_seconds,
    )
    nodes = nodes_of(run.trainer)
    if nodes > 1:  # one pod per node rank, rank 0 found by name (builders/rendezvous.py)
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        env[-1:-1] = rendezvous_env(metadata["name"], nodes)  # before HOME, the last
        make_indexed(job, nodes)
    return job
