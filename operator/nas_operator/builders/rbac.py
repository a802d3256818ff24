"""The controller pod's identity: a ServiceAccount, a Role and its RoleBinding.

Least privilege: the controller reads searches, creates and reads Trials (the admission
policy narrows creation to its own search), writes only its own search's status (the
status policy narrows it to ``status.controller``) and only its own Lease.
"""

from __future__ import annotations

from typing import Any

from ..search_record import SearchRecord
from ..names import (
    COMPONENT_RBAC,
    GROUP,
    SEARCH_PLURAL,
    TRIAL_PLURAL,
    controller_name,
    owner_reference,
    search_labels,
    worker_account,
    worker_name,
)


def _metadata(search: dict[str, Any]) -> dict[str, Any]:
    name = search["metadata"]["name"]
    return {
        "name": controller_name(name),
        "namespace": search["metadata"]["namespace"],
        "labels": search_labels(name, COMPONENT_RBAC),
        "ownerReferences": [owner_reference(search)],
    }


def build_service_account(search: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(search)}


def controller_rules(search_name: str) -> list[dict[str, Any]]:
    lease = controller_name(search_name)
    return [
        {"apiGroups": [GROUP], "resources": [SEARCH_PLURAL], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [GROUP],
            "resources": [f"{SEARCH_PLURAL}/status"],
            "resourceNames": [search_name],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [GROUP],
            "resources": [TRIAL_PLURAL],
            "verbs": ["create", "get", "list", "watch"],
        },
        # create cannot be limited by name (the name is not known to RBAC before creation)
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update", "patch"],
        },
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]


def build_role(search: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(search),
        "rules": controller_rules(search["metadata"]["name"]),
    }


def build_role_binding(search: dict[str, Any]) -> dict[str, Any]:
    name = controller_name(search["metadata"]["name"])
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(search),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": name,
                "namespace": search["metadata"]["namespace"],
            }
        ],
    }


def build_rbac(search: dict[str, Any]) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of the search's controller, in creation order."""
    return [build_service_account(search), build_role(search), build_role_binding(search)]


def worker_rules(search: dict[str, Any]) -> list[dict[str, Any]]:
    """Warm workers read and answer their own pods (a list/watch narrowed by resourceNames
    needs a metadata.name field selector, which is how nas-worker watches)."""
    name = search["metadata"]["name"]
    parallelism = SearchRecord.of(search).trials.parallelism
    return [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": [worker_name(name, i) for i in range(parallelism)],
            "verbs": ["get", "list", "watch", "patch"],
        }
    ]


def build_worker_rbac(search: dict[str, Any]) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of the search's warm workers (mode WarmPool)."""
    metadata = {**_metadata(search), "name": worker_account(search["metadata"]["name"])}
    account = metadata["name"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": worker_rules(search),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": metadata["namespace"]}
            ],
        },
    ]
