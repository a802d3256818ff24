"""A pod's volumes as folders on the host, ready to be bind-mounted into its containers.

- emptyDir: a folder per pod; configMap, secret, downwardAPI and projected (the service
  account token, `kube-root-ca.crt`, the namespace): files written into a folder per pod,
  mounted read-only;
- persistentVolumeClaim: the folder of the bound PersistentVolume (`spec.hostPath.path`,
  made by the harness's provisioner); ReadWriteOnce claims are used by one node at a
  time and ReadWriteOncePod by one pod (Multi-Attach error otherwise), ReadWriteMany and
  ReadOnlyMany by any;
- hostPath: the host folder itself.
Other volume kinds fail the pod's start with an event saying which.
"""
from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .pod_env import ConfigError, Lookup, NodeFacts, field_value, resource_value

Obj = dict[str, Any]
# (namespace, service account, audience or None, expiration seconds, pod) -> token
TokenIssuer = Callable[[str, str, str | None, int, Obj], str]


class VolumeNotReady(Exception):
    """The pod cannot start yet; kubelet's event `reason` and message say why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Volume:
    path: Path
    read_only: bool  # mounted read-only whatever the volumeMount says


class ClaimRegistry:
    """Which pods on which nodes use which claims: the attach/detach rules of
    ReadWriteOnce (one node) and ReadWriteOncePod (one pod)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}

    def acquire(self, namespace: str, claim: str, modes: list[str], pod: Obj, node: str) -> None:
        uid, name = pod["metadata"]["uid"], pod["metadata"]["name"]
        with self._lock:
            users = self._users.setdefault((namespace, claim), {})
            others = {u: v for u, v in users.items() if u != uid}
            if "ReadWriteOncePod" in modes and others:
                raise VolumeNotReady("FailedMount", (
                    f'volume "{claim}" is ReadWriteOncePod and already used by pod(s) '
                    f'{", ".join(n for n, _ in others.values())}'))
            if ("ReadWriteOnce" in modes and "ReadWriteMany" not in modes
                    and "ReadOnlyMany" not in modes):
                elsewhere = [(n, nd) for n, nd in others.values() if nd != node]
                if elsewhere:
                    raise VolumeNotReady("FailedAttachVolume", (
                        f'Multi-Attach error for volume "{claim}" Volume is already used by '
                        f'pod(s) {", ".join(n for n, _ in elsewhere)} on node '
                        f'{elsewhere[0][1]}'))
            users[uid] = (name, node)

    def release(self, pod_uid: str) -> None:
        with self._lock:
            for users in self._users.values():
                users.pop(pod_uid, None)


def _write_files(folder: Path, files: dict[str, tuple[bytes, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, (data, mode) in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(path)


def _key_files(kind: str, obj: Obj | None, name: str, source: Obj, default_mode: int,
               namespace: str) -> dict[str, tuple[bytes, int]]:
    """Files of a configMap or secret source (`items` select and rename keys)."""
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeNotReady("FailedMount", f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    items = source.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise VolumeNotReady("FailedMount",
                                 f'{kind} {namespace}/{name} has no key {item["key"]}')
        files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return files


def _downward_files(pod: Obj, items: list[Obj], default_mode: int,
                    node: NodeFacts) -> dict[str, tuple[bytes, int]]:
    files = {}
    for item in items:
        try:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"]["fieldPath"])
            else:
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref, ref.get("containerName", ""), node)
        except ConfigError as exc:
            raise VolumeNotReady("FailedMount", str(exc)) from exc
        files[item["path"]] = (value.encode(), item.get("mode", default_mode))
    return files


def prepare_volumes(
    pod: Obj,
    pod_dir: Path,
    node: NodeFacts,
    lookup: Lookup,
    issue_token: TokenIssuer,
    claims: ClaimRegistry,
) -> dict[str, Volume]:
    """Every volume of the pod as a folder; raises VolumeNotReady while one cannot be
    made yet (unbound claim, missing config map, claim attached elsewhere)."""
    namespace = pod["metadata"]["namespace"]
    volumes: dict[str, Volume] = {}
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        folder = pod_dir / "volumes" / name
        if "emptyDir" in vol:
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)  # as kubelet makes it: writable by any container user
            volumes[name] = Volume(folder, False)
        elif "hostPath" in vol:
            path = Path(vol["hostPath"]["path"])
            if vol["hostPath"].get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                raise VolumeNotReady("FailedMount", f"hostPath {path} does not exist")
            volumes[name] = Volume(path, False)
        elif "configMap" in vol or "secret" in vol:
            kind, source = (("ConfigMap", vol["configMap"]) if "configMap" in vol
                            else ("Secret", vol["secret"]))
            obj_name = source.get("name") or source.get("secretName")
            files = _key_files(kind, lookup(kind, namespace, obj_name), obj_name, source,
                               source.get("defaultMode", 0o644), namespace)
            _write_files(folder, files)
            volumes[name] = Volume(folder, True)
        elif "downwardAPI" in vol:
            source = vol["downwardAPI"]
            _write_files(folder, _downward_files(pod, source.get("items") or [],
                                                 source.get("defaultMode", 0o644), node))
            volumes[name] = Volume(folder, True)
        elif "projected" in vol:
            _write_files(folder, _projected_files(pod, vol["projected"], node, lookup,
                                                  issue_token))
            volumes[name] = Volume(folder, True)
        elif "persistentVolumeClaim" in vol:
            source = vol["persistentVolumeClaim"]
            volumes[name] = _claim_volume(pod, source["claimName"],
                                          source.get("readOnly", False), node, lookup, claims)
        else:
            kinds = [k for k in vol if k != "name"]
            raise VolumeNotReady("FailedMount", (
                f"volume {name!r}: the test node agent does not support {kinds}"))
    return volumes


def _projected_files(pod: Obj, projected: Obj, node: NodeFacts, lookup: Lookup,
                     issue_token: TokenIssuer) -> dict[str, tuple[bytes, int]]:
    namespace = pod["metadata"]["namespace"]
    default_mode = projected.get("defaultMode", 0o644)
    files: dict[str, tuple[bytes, int]] = {}
    for src in projected.get("sources") or []:
        if "serviceAccountToken" in src:
            sat = src["serviceAccountToken"]
            token = issue_token(namespace, pod["spec"].get("serviceAccountName", "default"),
                                sat.get("audience"), sat.get("expirationSeconds", 3600), pod)
            files[sat["path"]] = (token.encode(), default_mode)
        elif "configMap" in src or "secret" in src:
            kind, source = (("ConfigMap", src["configMap"]) if "configMap" in src
                            else ("Secret", src["secret"]))
            files.update(_key_files(kind, lookup(kind, namespace, source["name"]),
                                    source["name"], source, default_mode, namespace))
        elif "downwardAPI" in src:
            files.update(_downward_files(pod, src["downwardAPI"].get("items") or [],
                                         default_mode, node))
        else:
            raise VolumeNotReady("FailedMount",
                                 f"projected source {list(src)} is not supported by the test node agent")
    return files


def _claim_volume(pod: Obj, claim: str, read_only: bool, node: NodeFacts, lookup: Lookup,
                  claims: ClaimRegistry) -> Volume:
    namespace = pod["metadata"]["namespace"]
    pvc = lookup("PersistentVolumeClaim", namespace, claim)
    if pvc is None:
        raise VolumeNotReady("FailedMount", f'persistentvolumeclaim "{claim}" not found')
    if (pvc.get("status") or {}).get("phase") != "Bound":
        raise VolumeNotReady("FailedMount", f'persistentvolumeclaim "{claim}" is not bound')
    pv = lookup("PersistentVolume", "", pvc["spec"]["volumeName"])
    if pv is None:
        raise VolumeNotReady("FailedMount", f'persistentvolume "{pvc["spec"]["volumeName"]}" not found')
    spec = pv["spec"]
    path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
    if not path:
        raise VolumeNotReady("FailedMount", (
            f'persistentvolume "{pv["metadata"]["name"]}" has no hostPath or local path '
            "the test node agent can mount"))
    claims.acquire(namespace, claim, spec.get("accessModes") or pvc["spec"].get("accessModes", []),
                   pod, node.name)
    os.makedirs(path, exist_ok=True)
    return Volume(Path(path), read_only)
