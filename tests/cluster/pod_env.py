"""A container's environment and command line, resolved the way kubelet does:
`env` / `envFrom` with fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef,
`$(VAR)` expansion, and the in-cluster service variables pointing at the test API server.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kubernetes.utils.quantity import parse_quantity

Obj = dict[str, Any]
# (kind, namespace, name) -> object dict, or None when it does not exist.
Lookup = Callable[[str, str, str], Obj | None]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(Exception):
    """What kubelet reports as CreateContainerConfigError: the container waits."""


@dataclass(frozen=True)
class NodeFacts:
    name: str
    host_ip: str
    api_port: int
    path_prefix: str  # folders put first on PATH (the project's virtualenv)
    allocatable: Mapping[str, str]


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubelet's `$(VAR)` expansion: defined names are replaced, `$$` escapes, anything
    else is left as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def field_value(pod: Obj, field_path: str) -> str:
    """The downward API's `fieldRef.fieldPath` of a pod."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return (meta.get(source) or {}).get(field_path[len(prefix) + 2:-2], "")
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "metadata.labels": "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items())),
        "metadata.annotations": "\n".join(
            f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items())),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs") or []),
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or []),
    }
    if field_path not in values:
        raise ConfigError(f"unsupported fieldRef.fieldPath {field_path!r}")
    return values[field_path]


def resource_value(pod: Obj, ref: Obj, default_container: str, node: NodeFacts) -> str:
    """`resourceFieldRef`: a limit or request of a container, in units of `divisor`;
    an unset limit reads as the node's allocatable, as kubelet does."""
    name = ref.get("containerName") or default_container
    container = next((c for c in pod["spec"]["containers"] if c["name"] == name), None)
    if container is None:
        raise ConfigError(f"resourceFieldRef names unknown container {name!r}")
    kind, _, resource = ref["resource"].partition(".")
    amount = (container.get("resources") or {}).get(kind, {}).get(resource)
    if amount is None:
        amount = node.allocatable.get(resource, "0")
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    return str(math.ceil(parse_quantity(str(amount)) / divisor))


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def cpu_threads(container: Obj) -> int:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("cpu")
    return max(1, math.ceil(parse_quantity(str(limit)))) if limit is not None else 1


def container_env(pod: Obj, container: Obj, node: NodeFacts, lookup: Lookup,
                  markers: Mapping[str, str], home: str = "/root") -> dict[str, str]:
    """The process environment of a container, base variables first, then envFrom,
    then env (later entries win, `$(VAR)` sees earlier ones)."""
    namespace = pod["metadata"]["namespace"]
    path = f"{node.path_prefix}:{DEFAULT_PATH}" if node.path_prefix else DEFAULT_PATH
    env: dict[str, str] = {
        "PATH": path,
        "HOME": home,
        "HOSTNAME": pod["metadata"]["name"],
        # Where in-cluster clients (kubernetes.config.load_incluster_config, kopf) look.
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(node.api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(node.api_port),
        "KUBERNETES_PORT": f"tcp://127.0.0.1:{node.api_port}",
        # The agent sets no CPU cgroup quota, the one thing a trainer sizes its threads
        # by: this stands in for it (the container's CPU limit, 1 without one), so the
        # pods sharing this machine's few cores do not each take all of them.
        "OMP_NUM_THREADS": str(cpu_threads(container)),
        **markers,
    }

    def source(kind: str, name: str, optional: bool) -> dict[str, str] | None:
        obj = lookup(kind, namespace, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        return _data(obj, kind)

    for entry in container.get("envFrom") or []:
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if key in entry:
                data = source(kind, entry[key]["name"], entry[key].get("optional", False))
                for k, v in (data or {}).items():
                    env[entry.get("prefix", "") + k] = v

    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            env[name] = field_value(pod, ref["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in ref:
            env[name] = resource_value(pod, ref["resourceFieldRef"], container["name"], node)
        else:
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in ref:
                    sel = ref[key]
                    data = source(kind, sel["name"], sel.get("optional", False))
                    if data is None:
                        break
                    if sel["key"] not in data:
                        if sel.get("optional", False):
                            break
                        raise ConfigError(
                            f'couldn\'t find key {sel["key"]} in {kind} {namespace}/{sel["name"]}')
                    env[name] = data[sel["key"]]
    return env


def run_as(pod: Obj, container: Obj) -> tuple[int | None, int | None]:
    """(uid, gid) from the pod's and container's securityContext. Images are assumed to
    run as root, so runAsNonRoot needs an explicit non-zero runAsUser, as kubelet
    requires for an image whose user is root."""
    security = {**(pod["spec"].get("securityContext") or {}),
                **(container.get("securityContext") or {})}
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    if security.get("runAsNonRoot") and not uid:
        raise ConfigError("container has runAsNonRoot and image will run as root (the test "
                          "node agent runs images as root unless runAsUser says otherwise)")
    return uid, gid


def container_argv(container: Obj, env: Mapping[str, str],
                   entrypoints: Mapping[str, list[str]]) -> list[str]:
    """command + args with `$(VAR)` expanded. The image is never pulled: a container
    without `command` runs the entrypoint registered for its image, if any."""
    command = container.get("command") or entrypoints.get(_image_name(container.get("image", "")))
    if not command:
        raise ConfigError(
            f"container {container['name']!r} has no command, and the test node agent does "
            f"not run images: set `command`, or register an entrypoint for image "
            f"{container.get('image')!r} (node agent --image-entrypoints)")
    return [expand(part, env) for part in [*command, *(container.get("args") or [])]]


def _image_name(image: str) -> str:
    """`repo/name:tag` or `repo/name@digest` without tag or digest."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name
