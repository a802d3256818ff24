"""The pod fields of spec.trainer, checked as the CRD's schema and CEL rules check them at
admission (crds/archsearch.io_architecturesearches.yaml), with the same words, so that
`nas validate` and `kubectl apply` refuse the same manifests. A search author is not a
cluster admin: only these fields, volume types and env sources exist, and the operator's own
names (volumes, mount paths, env variables, ServiceAccounts) are refused. Torch-free.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from nas_contracts.cluster import DATA_VOLUME, TMP_MOUNT_PATH, TMP_VOLUME
from nas_contracts.result import TERMINATION_LOG
from nas_contracts.volume import MOUNT_PATH

from .manifest_errors import ManifestError

# spec.trainer.processes: data-parallel processes of one trial pod (the CRD says the same)
MAX_PROCESSES = 64
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# [registry[:port]/]repository[:tag][@sha256:<64 hex>]; a registry has a dot or a port, or is
# localhost (otherwise the first part is a lower-case repository component).
IMAGE = re.compile(
    r"^((localhost|[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+)"
    r"(:[0-9]+)?/|[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?:[0-9]+/)?"
    r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")
# A resource.Quantity (Kubernetes' grammar); the value is checked separately.
QUANTITY = re.compile(r"^(?P<number>[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))"
                      r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))?$")
SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
            "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
            **{f"{p}i": Decimal(2) ** (10 * (i + 1)) for i, p in enumerate("KMGTPE")}}
# What a container may have: the standard resources, hugepages, and extended resources
# <domain>/<name> outside kubernetes.io.
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
EXTENDED_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/"
                               r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# what an env fieldRef may expose (the Downward API), besides metadata.labels['k'] and
# metadata.annotations['k']
FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
               "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
               "status.podIPs")
LABELS_FIELD = re.compile(r"^metadata[.](labels|annotations)\['[^']+'\]$")
EXPOSED_RESOURCES = tuple(f"{kind}.{name}" for kind in ("limits", "requests")
                          for name in STANDARD_RESOURCES)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV_PREFIXES = ("NAS_", "KUBERNETES_", "LD_")
RESERVED_ENV = ("PYTHONPATH", "PYTHONHOME", "HOME", "PYTHONUNBUFFERED")
# The operator's own volumes and paths.
RESERVED_VOLUMES = (DATA_VOLUME, TMP_VOLUME)
RESERVED_MOUNT_DIRS = (MOUNT_PATH, TMP_MOUNT_PATH)
VOLUME_SOURCES = ("configMap", "secret", "emptyDir", "persistentVolumeClaim")
ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
MAX_COMMAND_BYTES = 65536
SECURITY_CONTEXT_MESSAGE = (
    "spec.trainer.securityContext cannot be set: the operator sets a restricted security "
    "context on every trial pod (non-root, no privilege escalation, all capabilities "
    "dropped); remove it")


def parse_quantity(value: Any) -> Decimal | None:
    """A quantity's value, or None when it is not one (a YAML float is not: write "500m")."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, int):
        return Decimal(value)
    match = QUANTITY.match(value)
    if not match:
        return None
    suffix = match.group("suffix") or ""
    try:
        number = Decimal(match.group("number"))
        if suffix[:1] in ("e", "E"):
            return number * Decimal(10) ** Decimal(suffix[1:])
        return number * SUFFIXES[suffix]
    except (InvalidOperation, KeyError, OverflowError):
        return None


def check_size(value: Any, path: str) -> None:
    amount = parse_quantity(value)
    if amount is None or amount <= 0:
        raise ManifestError(f"{path} must be a positive quantity such as 500Mi, 10Gi or 1Ti "
                            f"(got {value!r})")


def check_name(value: Any, path: str, what: str, allow_empty: bool = False) -> None:
    """A DNS subdomain (at most 253 characters) naming `what`."""
    if allow_empty and value == "":
        return
    if not isinstance(value, str) or len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        raise ManifestError(f"{path} must be a DNS subdomain name (lowercase letters, digits, "
                            f"'-' and '.', starting and ending with a letter or digit) naming "
                            f"{what} (got {value!r})")


def check_image(value: Any) -> None:
    if value == "":
        return  # the parser says it must not be empty, and what leaving it out does
    if not isinstance(value, str) or len(value) > 512 or not IMAGE.match(value):
        raise ManifestError(f"spec.trainer.image {value} is not an image reference: write "
                            f"[registry[:port]/]repository[:tag][@sha256:<64 hex digits>], with "
                            f"no spaces, a lower-case repository and a tag of letters, digits, "
                            f"'_', '.' and '-'")


def is_container_resource(name: Any) -> bool:
    return isinstance(name, str) and (
        name in STANDARD_RESOURCES or name.startswith("hugepages-") or (
            len(name) <= 253 and bool(EXTENDED_RESOURCE.match(name))
            and not name.startswith(("kubernetes.io/", "requests."))))


def positive_quantity(value: Any) -> bool:
    amount = parse_quantity(value)
    return amount is not None and amount > 0


def check_resources(resources: Any) -> None:
    if not isinstance(resources, Mapping):
        raise ManifestError(f"spec.trainer.resources must be a mapping of limits and requests "
                            f"(got {resources!r})")
    amounts: dict[str, dict[str, Decimal]] = {}
    for kind, values in resources.items():
        path = f"spec.trainer.resources.{kind}"
        if kind not in ("limits", "requests"):
            raise ManifestError(f"{path} is not a field (valid: limits, requests)")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ManifestError(f"{path} must be a mapping of resource names to quantities "
                                f"(got {values!r})")
        if len(values) > 16:
            raise ManifestError(f"{path} may name at most 16 resources (got {len(values)})")
        amounts[kind] = {}
        for name, value in values.items():
            if not is_container_resource(name):
                raise ManifestError(f"{path}.{name} is not a resource a container can have: cpu, "
                                    f"memory, ephemeral-storage, hugepages-<size> or an extended "
                                    f"resource <domain>/<name> such as nvidia.com/gpu")
            amount = parse_quantity(value)
            if amount is None or amount < 0:
                raise ManifestError(f"{path}.{name} must be a non-negative quantity such as "
                                    f"500m, 2, 512Mi or 4Gi (got {value!r})")
            if "/" in name and (amount < 1 or amount != amount.to_integral_value()):
                raise ManifestError(f"{path}.{name} is an extended resource: it must be a whole "
                                    f"positive number such as 1 (got {value!r})")
            amounts[kind][name] = amount
    limits, requests = amounts.get("limits", {}), amounts.get("requests", {})
    for name, amount in requests.items():
        if name in limits and amount > limits[name]:
            raise ManifestError(f"spec.trainer.resources.requests.{name} must be <= its limit in "
                                f"spec.trainer.resources.limits ({resources['requests'][name]!r} "
                                f"> {resources['limits'][name]!r})")
        if name in limits and "/" in name and amount != limits[name]:
            raise ManifestError("spec.trainer.resources: an extended resource (such as "
                                "nvidia.com/gpu) requested and limited must have requests equal "
                                "to limits (or set only limits)")


def _mapping(value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    """A mapping with only `known` keys (strict, as kubectl's field validation)."""
    if not isinstance(value, Mapping):
        raise ManifestError(f"{path} must be a mapping (got {value!r})")
    for key in value:
        if key not in known:
            raise ManifestError(f"{path}.{key} is not a field (valid: {', '.join(known)})")
    for key in required:
        if value.get(key) is None:
            raise ManifestError(f"{path}.{key} is required")
    return {k: v for k, v in value.items() if v is not None}


def _list(value: Any, path: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise ManifestError(f"{path} must be a list (got {value!r})")
    if len(value) > most:
        raise ManifestError(f"{path} must have at most {most} items (got {len(value)})")
    return value


def _string(value: Any, path: str, most: int, least: int = 0) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{path} must be a string (got {value!r})")
    if not least <= len(value) <= most:
        raise ManifestError(f"{path} must be {least} to {most} characters (got {len(value)})")
    return value


def _relative(value: Any, path: str, what: str) -> None:
    text = _string(value, path, 1024)
    if text.startswith("/") or ".." in text.split("/"):
        raise ManifestError(f"{what} {text} must be a relative path without '..'")


def check_env(env: Any) -> None:
    names: set[str] = set()
    for i, item in enumerate(_list(env, "spec.trainer.env", 128)):
        path = f"spec.trainer.env[{i}]"
        item = _mapping(item, path, ("name", "value", "valueFrom"), required=("name",))
        name = _string(item["name"], f"{path}.name", 128, 1)
        if not ENV_NAME.match(name):
            raise ManifestError(f"spec.trainer.env name {name} must be a C identifier: letters, "
                                f"digits and _, not starting with a digit")
        if name.startswith(RESERVED_ENV_PREFIXES) or name in RESERVED_ENV:
            raise ManifestError(f"spec.trainer.env name {name} is reserved: the operator sets "
                                f"NAS_*, HOME and PYTHONUNBUFFERED, and KUBERNETES_*, LD_*, "
                                f"PYTHONPATH and PYTHONHOME would change how the trainer runs or "
                                f"reaches the API server; use another name")
        if name in names:
            raise ManifestError(f"spec.trainer.env[{i}]: Duplicate value: the name {name} is "
                                f"listed twice")
        names.add(name)
        if "value" in item:
            _string(item["value"], f"{path}.value", 32768)
            if "valueFrom" in item:
                raise ManifestError(f"spec.trainer.env {name}: set value or valueFrom, not both")
        if "valueFrom" in item:
            source = _mapping(item["valueFrom"], f"{path}.valueFrom", ENV_SOURCES)
            if len(source) != 1:
                raise ManifestError(f"{path}.valueFrom must set exactly one of "
                                    f"{', '.join(ENV_SOURCES)}")
            _check_env_source(source, f"{path}.valueFrom")


def _check_env_source(source: dict[str, Any], path: str) -> None:
    kind, value = next(iter(source.items()))
    where = f"{path}.{kind}"
    if kind == "fieldRef":
        ref = _mapping(value, where, ("apiVersion", "fieldPath"), required=("fieldPath",))
        field_path = _string(ref["fieldPath"], f"{where}.fieldPath", 320)
        if field_path not in FIELD_PATHS and not LABELS_FIELD.match(field_path):
            raise ManifestError(f"{where}.fieldPath: spec.trainer.env valueFrom.fieldRef.fieldPath "
                                f"{field_path} is not a field a pod can expose (metadata.name, "
                                f"metadata.namespace, metadata.uid, metadata.labels['k'], "
                                f"metadata.annotations['k'], spec.nodeName, "
                                f"spec.serviceAccountName, status.hostIP(s), status.podIP(s))")
        if ref.get("apiVersion", "v1") != "v1":
            raise ManifestError(f"{where}.apiVersion: Unsupported value: supported values: v1")
    elif kind == "resourceFieldRef":
        ref = _mapping(value, where, ("containerName", "divisor", "resource"),
                       required=("resource",))
        if "divisor" in ref and not positive_quantity(ref["divisor"]):
            raise ManifestError(f"{where}.divisor: spec.trainer.env valueFrom.resourceFieldRef."
                                f"divisor must be a positive quantity such as 1, 1m or 1Mi")
        resource = _string(ref["resource"], f"{where}.resource", 320)
        if resource not in EXPOSED_RESOURCES and not re.match(r"^(limits|requests)[.]hugepages-",
                                                              resource):
            raise ManifestError(f"{where}.resource: spec.trainer.env valueFrom.resourceFieldRef."
                                f"resource {resource} must be limits or requests of cpu, memory, "
                                f"ephemeral-storage or hugepages-*")
        if ref.get("containerName", "") not in ("", "trainer"):
            raise ManifestError(f"{where}.containerName: spec.trainer.env valueFrom."
                                f"resourceFieldRef.containerName must be trainer (the trial "
                                f"container) or left out")
    else:
        ref = _mapping(value, where, ("name", "key", "optional"), required=("key",))
    for key, text in ref.items():
        if key not in ("optional", "divisor"):
            _string(text, f"{where}.{key}", 320)


def check_volumes(volumes: Any, mounts: Any) -> None:
    declared: set[str] = set()
    for i, item in enumerate(_list(volumes, "spec.trainer.volumes", 32)):
        path = f"spec.trainer.volumes[{i}]"
        item = _mapping(item, path, ("name",) + VOLUME_SOURCES, required=("name",))
        name = _string(item["name"], f"{path}.name", 63, 1)
        if not DNS_LABEL.match(name):
            raise ManifestError(f"spec.trainer.volumes name {name} must be a DNS label: "
                                f"lowercase letters, digits and '-', at most 63 characters")
        if name in RESERVED_VOLUMES:
            raise ManifestError(f"spec.trainer.volumes name {name} is the operator's own volume "
                                f"(search-data is the search volume, tmp the pod's /tmp): use "
                                f"another name")
        if sum(source in item for source in VOLUME_SOURCES) != 1:
            raise ManifestError(f"spec.trainer.volumes {name} must set exactly one of "
                                f"{', '.join(VOLUME_SOURCES)} (other volume types, e.g. hostPath, "
                                f"are not allowed)")
        if name in declared:
            raise ManifestError(f"spec.trainer.volumes[{i}]: Duplicate value: the name {name} is "
                                f"listed twice")
        declared.add(name)
        _check_volume_source(item, path)
    paths: set[str] = set()
    for i, item in enumerate(_list(mounts, "spec.trainer.volumeMounts", 32)):
        path = f"spec.trainer.volumeMounts[{i}]"
        item = _mapping(item, path, ("name", "mountPath", "readOnly", "subPath"),
                        required=("name", "mountPath"))
        _string(item["name"], f"{path}.name", 63, 1)
        mount = _string(item["mountPath"], f"{path}.mountPath", 1024, 1)
        parts = mount.split("/")
        if not mount.startswith("/") or (mount.endswith("/") and mount != "/") or "//" in mount \
                or "." in parts or ".." in parts or ":" in mount:
            raise ManifestError(f"spec.trainer.volumeMounts mountPath {mount} must be an absolute "
                                f"path without '.', '..', '//', ':' or a trailing '/'")
        if mount in ("/", TERMINATION_LOG) or any(mount == d or mount.startswith(d + "/")
                                                   for d in RESERVED_MOUNT_DIRS):
            raise ManifestError(f"spec.trainer.volumeMounts mountPath {mount} is the operator's "
                                f"(/data holds the search volume, /tmp the pod's scratch space, "
                                f"/dev/termination-log the trial's result): mount somewhere else")
        if mount in paths:
            raise ManifestError(f"spec.trainer.volumeMounts[{i}]: Duplicate value: the mountPath "
                                f"{mount} is listed twice")
        paths.add(mount)
        if "subPath" in item:
            _relative(item["subPath"], f"{path}.subPath", "spec.trainer.volumeMounts subPath")
        if "readOnly" in item and not isinstance(item["readOnly"], bool):
            raise ManifestError(f"{path}.readOnly must be true or false")
        if item["name"] not in declared:
            raise ManifestError("spec.trainer.volumeMounts[].name must name one of "
                                "spec.trainer.volumes")


def _check_volume_source(item: dict[str, Any], path: str) -> None:
    kind = next(source for source in VOLUME_SOURCES if source in item)
    where = f"{path}.{kind}"
    value = item[kind] if item[kind] is not None else {}
    if kind == "emptyDir":
        source = _mapping(value, where, ("medium", "sizeLimit"))
        if source.get("medium", "") not in ("", "Memory"):
            raise ManifestError(f"{where}.medium must be \"\" or Memory")
        if "sizeLimit" in source and not positive_quantity(source["sizeLimit"]):
            raise ManifestError(f"{where}.sizeLimit: spec.trainer.volumes emptyDir.sizeLimit must "
                                f"be a positive quantity such as 1Gi")
    elif kind == "persistentVolumeClaim":
        source = _mapping(value, where, ("claimName", "readOnly"), required=("claimName",))
        check_name(source["claimName"], f"{where}.claimName", "a PersistentVolumeClaim")
    else:
        name_key = "name" if kind == "configMap" else "secretName"
        source = _mapping(value, where, (name_key, "items", "defaultMode", "optional"))
        if name_key in source:
            check_name(source[name_key], f"{where}.{name_key}",
                       "a ConfigMap" if kind == "configMap" else "a Secret")
        for i, entry in enumerate(_list(source.get("items", []), f"{where}.items", 64)):
            entry = _mapping(entry, f"{where}.items[{i}]", ("key", "path", "mode"),
                             required=("key", "path"))
            _relative(entry["path"], f"{where}.items[{i}].path", "items[].path")
            if not isinstance(entry["key"], str) or not CONFIG_KEY.match(entry["key"]):
                raise ManifestError(f"{where}.items[{i}].key: spec.trainer.volumes items key "
                                    f"{entry['key']} is not a ConfigMap or Secret key (letters, "
                                    f"digits, '-', '_', '.')")


TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def check_tolerations(tolerations: Any) -> None:
    for i, item in enumerate(_list(tolerations, "spec.trainer.tolerations", 64)):
        path = f"spec.trainer.tolerations[{i}]"
        item = _mapping(item, path, ("key", "operator", "value", "effect", "tolerationSeconds"))
        if item.get("operator", "Equal") not in TOLERATION_OPERATORS:
            raise ManifestError(f"{path}.operator: Unsupported value: {item['operator']!r}: "
                                f"supported values: Exists, Equal")
        if item.get("effect", "NoSchedule") not in TAINT_EFFECTS:
            raise ManifestError(f"{path}.effect: Unsupported value: {item['effect']!r}: "
                                f"supported values: {', '.join(TAINT_EFFECTS)}")
        key = item.get("key", "")
        if key and (not isinstance(key, str) or len(key) > 317 or not LABEL_KEY.match(key)):
            raise ManifestError(f"{path}.key: spec.trainer.tolerations key {key} is not a label "
                                f"key ([prefix/]name: letters, digits, '-', '_', '.')")
        if item.get("operator") == "Exists" and item.get("value", "") != "":
            raise ManifestError(f"{path}: spec.trainer.tolerations: a toleration with operator "
                                f"Exists has no value")
        if not key and item.get("operator") != "Exists":
            raise ManifestError(f"{path}: spec.trainer.tolerations: a toleration without a key "
                                f"must have operator Exists (it then tolerates every taint)")


# core/v1 Affinity, as far as the CRD spells it out: the fields of each object (a list of
# objects is checked item by item; a name not here is a string, a number or a list of them).
_SELECTOR = {"matchExpressions": "requirement", "matchLabels": "labels"}
_AFFINITY_TERM = {"labelSelector": _SELECTOR, "namespaceSelector": _SELECTOR,
                  "namespaces": None, "topologyKey": None, "matchLabelKeys": None,
                  "mismatchLabelKeys": None}
_NODE_TERM = {"matchExpressions": "requirement", "matchFields": "requirement"}
_POD_AFFINITY = {"requiredDuringSchedulingIgnoredDuringExecution": _AFFINITY_TERM,
                 "preferredDuringSchedulingIgnoredDuringExecution":
                     {"weight": None, "podAffinityTerm": _AFFINITY_TERM}}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": _NODE_TERM},
        "preferredDuringSchedulingIgnoredDuringExecution": {"weight": None,
                                                            "preference": _NODE_TERM}},
    "podAffinity": _POD_AFFINITY,
    "podAntiAffinity": _POD_AFFINITY,
}
_REQUIREMENT = {"key": None, "operator": None, "values": None}
NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _check_requirement(fields: dict[str, Any], where: str, node: bool) -> None:
    operators = NODE_OPERATORS if node else LABEL_OPERATORS
    if fields.get("key") is None or fields.get("operator") is None:
        raise ManifestError(f"{where}.key and operator are required")
    operator, values = fields["operator"], fields.get("values") or []
    if operator not in operators:
        raise ManifestError(f"{where}.operator: Unsupported value: {operator!r}: supported "
                            f"values: {', '.join(operators)}")
    if operator in ("In", "NotIn") and not values:
        raise ManifestError(f"{where}: spec.trainer.affinity: operator In and NotIn need values")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ManifestError(f"{where}: spec.trainer.affinity: operator Exists and DoesNotExist "
                            f"take no values")
    if operator in ("Gt", "Lt") and (len(values) != 1 or not re.match(r"^-?[0-9]+$",
                                                                       str(values[0]))):
        raise ManifestError(f"{where}: spec.trainer.affinity: operator Gt and Lt take exactly "
                            f"one integer value")


def check_affinity(value: Any, path: str = "spec.trainer.affinity", shape: Any = None) -> None:
    """The affinity's fields are core/v1's (unknown fields refused, as by strict kubectl);
    the leaves are strings, numbers or lists of strings."""
    shape = AFFINITY if shape is None else shape
    if shape == "labels":
        _mapping(value, path, tuple(value) if isinstance(value, Mapping) else ())
        for key, label in value.items():
            _string(label, f"{path}.{key}", 63)
        return
    if shape == "requirement":
        shape = _REQUIREMENT
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(_list(items, path, 64)):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        fields = _mapping(item, where, tuple(shape))
        if shape is _REQUIREMENT:
            _check_requirement(fields, where, node="nodeAffinity" in path)
        if "weight" in shape and (isinstance(fields.get("weight"), bool) or not isinstance(
                fields.get("weight"), int) or not 1 <= fields["weight"] <= 100):
            raise ManifestError(f"{where}.weight must be an integer in [1, 100]")
        if "topologyKey" in shape and not fields.get("topologyKey"):
            raise ManifestError(f"{where}.topologyKey is required: the label of the nodes' "
                                f"domain, e.g. kubernetes.io/hostname")
        for key, child in fields.items():
            if shape[key] is None:
                _check_leaf(child, f"{where}.{key}")
            else:
                check_affinity(child, f"{where}.{key}", shape[key])


def _check_leaf(value: Any, path: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(_list(value, path, 64)):
            _string(item, f"{path}[{i}]", 320)
    elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ManifestError(f"{path} must be a string or a number (got {value!r})")


def check_pod_fields(trainer: Mapping[str, Any], search_name: str | None,
                     has: Callable[[str], bool]) -> None:
    """Every pod field of spec.trainer (`has`: the field is given, not null)."""
    if has("securityContext"):
        raise ManifestError(SECURITY_CONTEXT_MESSAGE)
    if has("image"):
        check_image(trainer["image"])
    if has("resources"):
        check_resources(trainer["resources"])
    if has("env"):
        check_env(trainer["env"])
    if has("volumes") or has("volumeMounts"):
        check_volumes(trainer.get("volumes") or [], trainer.get("volumeMounts") or [])
    if has("tolerations"):
        check_tolerations(trainer["tolerations"])
    if has("affinity"):
        check_affinity(trainer["affinity"])
    if has("nodeSelector"):
        selector = trainer["nodeSelector"]
        if isinstance(selector, Mapping) and len(selector) > 64:
            raise ManifestError("spec.trainer.nodeSelector may have at most 64 labels")
        for key, label in (selector.items() if isinstance(selector, Mapping) else ()):
            if len(str(key)) > 317:
                raise ManifestError("spec.trainer.nodeSelector keys must be label keys (at most "
                                    "317 characters)")
            if not LABEL_KEY.match(str(key)):
                raise ManifestError(f"spec.trainer.nodeSelector key {key} is not a label key "
                                    f"([prefix/]name: letters, digits, '-', '_', '.')")
            if isinstance(label, str) and not LABEL_VALUE.match(label):
                raise ManifestError(f"spec.trainer.nodeSelector.{key} is not a label value (at "
                                    f"most 63 letters, digits, '-', '_', '.', starting and ending "
                                    f"with a letter or digit)")
    for key, what in (("priorityClassName", "a PriorityClass"),
                      ("runtimeClassName", "a RuntimeClass"),
                      ("serviceAccountName", "a ServiceAccount")):
        if has(key):   # "" is none, as in a pod
            check_name(trainer[key], f"spec.trainer.{key}", what, allow_empty=True)
    if has("priorityClassName") and str(trainer["priorityClassName"]).startswith("system-"):
        raise ManifestError("spec.trainer.priorityClassName: system-node-critical and "
                            "system-cluster-critical are for the cluster's own pods "
                            "(kube-system); use a PriorityClass your admins made for searches")
    if has("serviceAccountName") and search_name and trainer["serviceAccountName"] in (
            f"{search_name}-controller", f"{search_name}-worker"):
        raise ManifestError(f"spec.trainer.serviceAccountName {trainer['serviceAccountName']} is "
                            f"the search's own controller or worker account, which may write "
                            f"Trials and status: use another ServiceAccount")
    if has("imagePullSecrets"):
        seen: set[str] = set()
        for i, item in enumerate(_list(trainer["imagePullSecrets"],
                                       "spec.trainer.imagePullSecrets", 16)):
            item = _mapping(item, f"spec.trainer.imagePullSecrets[{i}]", ("name",),
                            required=("name",))
            check_name(item["name"], "spec.trainer.imagePullSecrets name", "a Secret")
            if item["name"] in seen:
                raise ManifestError(f"spec.trainer.imagePullSecrets[{i}]: Duplicate value: "
                                    f"{item['name']}")
            seen.add(item["name"])
    words = [w for key in ("command", "args") if has(key) and isinstance(trainer[key], list)
             for w in trainer[key] if isinstance(w, str)]
    values = [e.get("value") for e in (trainer.get("env") or []) if isinstance(e, Mapping)
              and isinstance(e.get("value"), str)]
    if sum(len(w) for w in words + values) > MAX_COMMAND_BYTES:
        raise ManifestError("spec.trainer.command, args and env values may hold at most 64 KiB "
                            "in all (every trial's Job and the trainer snapshot ConfigMap carry "
                            "them): put a long script in the image or a ConfigMap volume")
