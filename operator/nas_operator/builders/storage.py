"""The search's volume: the PersistentVolumeClaim the operator makes, or the one named."""

from __future__ import annotations

from typing import Any

from ..names import COMPONENT_STORAGE, owner_reference, pvc_name, search_labels
from ..search_record import StorageSpec


def claim_name(search: dict[str, Any]) -> str:
    """The claim the search uses: ``spec.storage.claimName`` or ``<search>-data``."""
    return StorageSpec.of(search["spec"]).claim_name or pvc_name(search["metadata"]["name"])


def build_pvc(search: dict[str, Any]) -> dict[str, Any] | None:
    """The claim to make, or None when the search names an existing one.

    Owned by the search (deleted with it) only with ``retentionPolicy: Delete``.
    """
    storage = StorageSpec.of(search["spec"])
    if storage.claim_name:
        return None
    name = search["metadata"]["name"]
    spec: dict[str, Any] = {
        "accessModes": list(storage.access_modes),
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc_name(name),
            "namespace": search["metadata"]["namespace"],
            "labels": search_labels(name, COMPONENT_STORAGE),
            "ownerReferences": pvc_owner_references(search),
        },
        "spec": spec,
    }


def pvc_owner_references(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The owner references the operator's claim should carry under the retention policy."""
    if StorageSpec.of(search["spec"]).retention_policy == "Delete":
        return [owner_reference(search, controller=False)]
    return []


def trial_pods_mount_volume(trainer: dict[str, Any], access_modes: list[str]) -> bool:
    """Trial pods mount the search volume when asked or when the claim is ReadWriteMany."""
    return bool(trainer.get("mountSearchVolume")) or "ReadWriteMany" in access_modes
