"""Make and keep a search's children: volume, RBAC, trainer snapshot, Job suspension.

Each ``ensure_*`` is idempotent: it creates what is missing and brings what exists in
line, so on.create, on.resume and on.update all call the same code.
"""

from __future__ import annotations

from typing import Any

import kopf

from . import events
from .builders.rbac import build_rbac, build_worker_rbac
from .builders.snapshot import TrainerSnapshot, build_trainer_snapshot, read_trainer_snapshot
from .builders.storage import build_pvc, claim_name, pvc_owner_references
from .k8s import KubeApi
from .names import (
    COMPONENT_FINAL,
    COMPONENT_SNAPSHOT,
    COMPONENT_TRIAL,
    LABEL_COMPONENT,
    LABEL_GENERATION,
    LABEL_SEARCH,
    snapshot_name,
)
from .search_record import SearchRecord


def ensure(api: KubeApi, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create ``obj`` or return the existing one; refuse one left by a deleted owner.

    A search deleted and re-created under the same name finds its predecessor's children
    until the garbage collector removes them: adopting them would lose them moments later.
    """
    existing, created = api.create(obj)
    wanted = {o["uid"] for o in obj["metadata"].get("ownerReferences") or []}
    owners = {o["uid"] for o in existing["metadata"].get("ownerReferences") or []}
    if not created and wanted and owners and not wanted & owners:
        raise kopf.TemporaryError(
            f"{obj['kind']} {obj['metadata']['name']} belongs to a deleted predecessor of this "
            "object; waiting for the garbage collector",
            delay=5,
        )
    return existing, created


def claim_access_modes(api: KubeApi, search: dict[str, Any]) -> list[str]:
    """Access modes of the search's claim (the spec's when the claim does not exist yet)."""
    pvc = api.get(
        "v1", "PersistentVolumeClaim", search["metadata"]["namespace"], claim_name(search)
    )
    if pvc is not None:
        return list(
            (pvc.get("status") or {}).get("accessModes") or pvc["spec"].get("accessModes") or []
        )
    storage = SearchRecord.of(search).storage
    return [] if storage.claim_name else list(storage.access_modes)


def ensure_volume(api: KubeApi, search: dict[str, Any]) -> None:
    pvc = build_pvc(search)
    if pvc is None:
        if (
            api.get(
                "v1", "PersistentVolumeClaim", search["metadata"]["namespace"], claim_name(search)
            )
            is None
        ):
            events.warning(
                search,
                "ClaimNotFound",
                f"PersistentVolumeClaim {claim_name(search)} does not exist yet",
            )
        return
    existing, created = ensure(api, pvc)
    if created:
        events.normal(
            search, "VolumeCreated", f"created PersistentVolumeClaim {pvc['metadata']['name']}"
        )
        return
    owners = pvc_owner_references(search)
    ours = [
        o
        for o in existing["metadata"].get("ownerReferences") or []
        if o["uid"] == search["metadata"]["uid"]
    ]
    if bool(ours) != bool(owners):  # retentionPolicy changed
        others = [
            o
            for o in existing["metadata"].get("ownerReferences") or []
            if o["uid"] != search["metadata"]["uid"]
        ]
        api.patch(
            "v1",
            "PersistentVolumeClaim",
            pvc["metadata"]["namespace"],
            pvc["metadata"]["name"],
            {"metadata": {"ownerReferences": others + owners}},
        )


def ensure_rbac(api: KubeApi, search: dict[str, Any]) -> None:
    objects = build_rbac(search)
    if SearchRecord.of(search).warm_pool:
        objects += build_worker_rbac(search)  # its Role follows spec.trials.parallelism
    for obj in objects:
        existing, created = ensure(api, obj)
        meta = obj["metadata"]
        if not created and obj["kind"] == "Role" and existing.get("rules") != obj["rules"]:
            api.patch(
                obj["apiVersion"], "Role", meta["namespace"], meta["name"], {"rules": obj["rules"]}
            )
        if (
            not created
            and obj["kind"] == "RoleBinding"
            and existing.get("subjects") != obj["subjects"]
        ):
            api.patch(
                obj["apiVersion"],
                "RoleBinding",
                meta["namespace"],
                meta["name"],
                {"subjects": obj["subjects"]},
            )


def ensure_snapshot(api: KubeApi, search: dict[str, Any]) -> TrainerSnapshot:
    """The trainer snapshot of the search's current generation (written once, immutable)."""
    existing, _ = ensure(api, build_trainer_snapshot(search, claim_access_modes(api, search)))
    return read_trainer_snapshot(existing)


def trainer_snapshot_for(
    api: KubeApi, search: dict[str, Any], generation: int
) -> tuple[TrainerSnapshot, str]:
    """The snapshot of ``generation``; (snapshot, warning) where warning is '' when exact.

    Missing and current: written now. Missing and older (the operator never saw that
    generation): the newest older snapshot, else the current one, with a warning.
    """
    meta = search["metadata"]
    found = api.get("v1", "ConfigMap", meta["namespace"], snapshot_name(meta["name"], generation))
    if found is not None:
        return read_trainer_snapshot(found), ""
    current = SearchRecord.of(search).generation
    if generation == current:
        return ensure_snapshot(api, search), ""
    selector = f"{LABEL_SEARCH}={meta['name']},{LABEL_COMPONENT}={COMPONENT_SNAPSHOT}"
    older = [
        cm
        for cm in api.list("v1", "ConfigMap", meta["namespace"], selector)
        if int(cm["metadata"]["labels"].get(LABEL_GENERATION, "0")) <= generation
    ]
    if older:
        chosen = max(older, key=lambda cm: int(cm["metadata"]["labels"][LABEL_GENERATION]))
        used = chosen["metadata"]["labels"][LABEL_GENERATION]
        return read_trainer_snapshot(chosen), (
            f"no trainer snapshot of generation {generation}; using generation {used}"
        )
    return ensure_snapshot(api, search), (
        f"no trainer snapshot of generation {generation}; using the current generation {current}"
    )


def sync_job_suspension(api: KubeApi, search: dict[str, Any]) -> int:
    """Make unfinished trial Jobs' (and the final training Job's) ``spec.suspend`` follow
    the search's; returns Jobs changed."""
    meta = search["metadata"]
    suspend = SearchRecord.of(search).suspend
    selector = (
        f"{LABEL_SEARCH}={meta['name']},"
        f"{LABEL_COMPONENT} in ({COMPONENT_TRIAL},{COMPONENT_FINAL})"
    )
    changed = 0
    for job in api.list("batch/v1", "Job", meta["namespace"], selector):
        conditions = (job.get("status") or {}).get("conditions") or []
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        ):
            continue
        if bool(job["spec"].get("suspend")) != suspend:
            api.patch(
                "batch/v1",
                "Job",
                meta["namespace"],
                job["metadata"]["name"],
                {"spec": {"suspend": suspend}},
            )
            changed += 1
    return changed


def ensure_search_children(api: KubeApi, search: dict[str, Any]) -> None:
    """Everything a search needs before its controller pod can start."""
    ensure_volume(api, search)
    ensure_snapshot(api, search)
    ensure_rbac(api, search)
    changed = sync_job_suspension(api, search)
    if changed:
        suspended = SearchRecord.of(search).suspend
        events.normal(
            search,
            "Suspended" if suspended else "Resumed",
            f"{'suspended' if suspended else 'resumed'} {changed} Jobs",
        )
