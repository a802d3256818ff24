"""The controller pod: one per search, replaced by the operator when it is gone.

Not a Deployment: a Deployment can run two pods during a rollout or after a node is
lost; here the operator creates exactly one pod under a fixed name, and the Lease
``<search>-controller`` fences a zombie whose node stopped reporting.
"""

from __future__ import annotations

from typing import Any

from nas_contracts import cluster as contract

from ..config import OperatorSettings
from ..names import (
    COMPONENT_CONTROLLER,
    CONTROLLER_CONTAINER,
    DATA_MOUNT_PATH,
    DATA_VOLUME,
    controller_name,
    owner_reference,
    search_labels,
)
from .security import container_security, pod_security, tmp_mount, tmp_volume
from .storage import claim_name

CONTROLLER_METRICS_PORT = (
    8000  # the controller's Prometheus metrics (nas_trainer.controller.metrics)
)


def controller_image(search: dict[str, Any], settings: OperatorSettings) -> str:
    """The operator's controller image if configured, else the search's trainer image."""
    trainer = search["spec"].get("trainer") or {}
    return settings.controller_image or trainer.get("image") or settings.default_trainer_image


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def build_controller_pod(search: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    name = search["metadata"]["name"]
    container: dict[str, Any] = {
        "name": CONTROLLER_CONTAINER,
        "image": controller_image(search, settings),
        "command": list(settings.controller_command),
        "env": [
            {"name": contract.ENV_SEARCH_NAME, "value": name},
            _field_env(contract.ENV_NAMESPACE, "metadata.namespace"),
            _field_env(contract.ENV_POD_NAME, "metadata.name"),
            _field_env(contract.ENV_POD_UID, "metadata.uid"),
            {"name": contract.ENV_DATA_DIR, "value": DATA_MOUNT_PATH},
            {"name": "HOME", "value": "/tmp"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": DATA_MOUNT_PATH},
            tmp_mount(),
        ],
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "ports": [{"name": "metrics", "containerPort": CONTROLLER_METRICS_PORT}],
    }
    if settings.controller_resources:
        container["resources"] = dict(settings.controller_resources)
    if settings.image_pull_policy:
        container["imagePullPolicy"] = settings.image_pull_policy
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": controller_name(name),
            "namespace": search["metadata"]["namespace"],
            "labels": search_labels(name, COMPONENT_CONTROLLER),
            "ownerReferences": [owner_reference(search)],
        },
        "spec": {
            "serviceAccountName": controller_name(name),
            # the operator replaces a failed pod itself (and counts it): see search_status
            "restartPolicy": "Never",
            "securityContext": pod_security(settings),
            "containers": [container],
            "volumes": [
                {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": claim_name(search)}},
                tmp_volume(),
            ],
            "terminationGracePeriodSeconds": 30,
        },
    }
