"""Dynamic provisioning for the test cluster: the default StorageClass `standard`, and a
PersistentVolume (a folder under the run dir) for every claim of that class. The real
PV controller in kube-controller-manager then binds claim and volume, as it does for
any external provisioner. Released volumes are deleted with their folder (reclaim
policy Delete)."""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from .kube import Kube
from .watching import list_watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]
STORAGE_CLASS = "standard"
PROVISIONER = "nas-operator.test/host-folder"


def ensure_storage_class(kube: Kube) -> None:
    try:
        kube.request("POST", "/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": True,
        })
    except ApiException as exc:
        if exc.status != 409:
            raise


class Provisioner:
    def __init__(self, kube: Kube, volumes_dir: Path) -> None:
        self.kube = kube
        self.volumes_dir = volumes_dir

    def start(self, stop: threading.Event) -> None:
        ensure_storage_class(self.kube)
        for path, handle in (("/api/v1/persistentvolumeclaims", self._claim),
                             ("/api/v1/persistentvolumes", self._volume)):
            threading.Thread(
                target=list_watch, daemon=True, name=f"provisioner {path}",
                args=(self.kube, path, lambda _type, obj, h=handle: h(obj),
                      lambda items, h=handle: [h(o) for o in items], stop)).start()

    def _claim(self, pvc: Obj) -> None:
        spec, meta = pvc["spec"], pvc["metadata"]
        if (spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName")
                or meta.get("deletionTimestamp")
                or (pvc.get("status") or {}).get("phase") != "Pending"):
            return
        name = f"pvc-{meta['uid']}"
        folder = self.volumes_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # any container user may write, as with hostPath provisioners
        size = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": str(folder), "type": "Directory"},
                # Pre-bound to the claim: the PV controller completes the binding.
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "namespace": meta["namespace"], "name": meta["name"],
                             "uid": meta["uid"]},
            },
        }
        try:
            self.kube.request("POST", "/api/v1/persistentvolumes", pv)
            log.info("provisioned %s for claim %s/%s", name, meta["namespace"], meta["name"])
        except ApiException as exc:
            if exc.status != 409:
                log.warning("cannot provision %s: %s %s", name, exc.status, exc.body)

    def _volume(self, pv: Obj) -> None:
        annotations = pv["metadata"].get("annotations") or {}
        if (annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER
                or (pv.get("status") or {}).get("phase") != "Released"
                or pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete"):
            return
        name = pv["metadata"]["name"]
        shutil.rmtree(self.volumes_dir / name, ignore_errors=True)
        try:
            self.kube.request("DELETE", f"/api/v1/persistentvolumes/{name}")
            log.info("deleted released volume %s", name)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("cannot delete %s: %s %s", name, exc.status, exc.body)
