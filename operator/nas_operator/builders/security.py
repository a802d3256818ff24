"""The security contexts of every pod the operator makes: Pod Security ``restricted``.

A search author is not a cluster admin, so nothing of these comes from the spec: non-root
(the operator's uid when set, else the image's USER), the runtime's seccomp profile, no
capabilities, no privilege escalation, a read-only root filesystem with an emptyDir at
/tmp for whatever a process writes (torch's and matplotlib's caches, datasets).
"""

from __future__ import annotations

from typing import Any

from nas_contracts.cluster import TMP_MOUNT_PATH, TMP_VOLUME

from ..config import OperatorSettings


def pod_security(settings: OperatorSettings) -> dict[str, Any]:
    security: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if settings.run_as_user is not None:
        uid = settings.run_as_user
        # fsGroup: the volume's files are the controller's; trainers write there as members
        security.update(runAsUser=uid, runAsGroup=uid, fsGroup=uid)
    return security


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "emptyDir": {}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": TMP_MOUNT_PATH}
