"""Operator settings, parsed once from the environment into a typed object.

The Helm chart sets these variables from values.yaml; a local run uses the defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_TRAINER_IMAGE = "ghcr.io/nas-operator/trainer:0.1.0"


class SettingsError(ValueError):
    """An operator setting has a value it cannot use."""


SECRET_MODES = ("Never", "IfAuthorCanRead", "Always")
VOLUME_TYPES = ("configMap", "emptyDir", "persistentVolumeClaim", "secret")


@dataclass(frozen=True)
class SearchPodPolicy:
    """The admin's widening or narrowing of what spec.trainer may put in a pod. The CRD
    allows at most ``VOLUME_TYPES``; hostPath, privileges and security contexts never."""

    volume_types: tuple[str, ...] = VOLUME_TYPES
    """Volume kinds a search may add to its trial pods."""
    secret_references: str = "IfAuthorCanRead"
    """Secret volumes and secretKeyRef env: Never; IfAuthorCanRead (the author may get
    that Secret, checked at admission); Always."""
    service_accounts: tuple[str, ...] = ()
    """ServiceAccounts any search may give its trial pods. Others only when the author may
    create pods in the namespace (checked at admission): they could use them anyway."""


@dataclass(frozen=True)
class OperatorSettings:
    default_trainer_image: str = DEFAULT_TRAINER_IMAGE
    """Image of trials and controllers whose search sets no spec.trainer.image."""
    controller_image: str = ""
    """When set, every controller pod runs this image instead of spec.trainer.image."""
    controller_command: tuple[str, ...] = ("nas-controller",)
    controller_resources: Mapping[str, object] = field(default_factory=dict)
    image_pull_policy: str = ""
    trial_job_ttl_seconds: int | None = 86400
    """ttlSecondsAfterFinished of trial Jobs (the result is in the Trial by then)."""
    successful_trial_jobs_history_limit: int | None = 3
    """Jobs (with pods) of the newest succeeded Trials kept per search; older ones are
    deleted as the search goes (cleanup.py). None keeps them all."""
    failed_trial_jobs_history_limit: int | None = 10
    """The same for failed Trials (their pods' logs tell why)."""
    status_interval_seconds: float = 5.0
    """How often each search's status, counts and metrics are recomputed."""
    controller_restart_limit: int = 10
    """Failed or vanished controller pods replaced before the search fails."""
    controller_restart_backoff_seconds: float = 5.0
    metrics_port: int = 8080
    manage_admission_policy: bool = True
    """Create/upgrade the cluster-wide ValidatingAdmissionPolicies at startup."""
    run_as_user: int | None = 65532
    """uid (and gid, fsGroup) of every pod the operator makes; None: the image's USER
    (still non-root: runAsNonRoot is always set)."""
    search_policy: SearchPodPolicy = field(default_factory=lambda: SearchPodPolicy())
    """What a search author may put in the trial pods (the admin's choice, from the chart)."""


def _int(env: Mapping[str, str], key: str, default: int | None) -> int | None:
    raw = env.get(key, "")
    if raw == "":
        return default
    if raw.lower() in ("none", "null", "off"):
        return None
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{key} must be an integer (got {raw!r})") from None


def _limit(env: Mapping[str, str], key: str, default: int) -> int | None:
    value = _int(env, key, default)
    if value is not None and value < 0:
        raise SettingsError(f"{key} must be >= 0, or none to keep every Job (got {value})")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key} must be true or false (got {raw!r})")


def load_settings(env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Settings from ``NAS_OPERATOR_*`` variables; raises SettingsError on bad values."""
    env = os.environ if env is None else env
    p = "NAS_OPERATOR_"
    resources_raw = env.get(p + "CONTROLLER_RESOURCES", "")
    try:
        resources = json.loads(resources_raw) if resources_raw else {}
    except json.JSONDecodeError as err:
        raise SettingsError(f"{p}CONTROLLER_RESOURCES must be JSON ({err})") from None
    command_raw = env.get(p + "CONTROLLER_COMMAND", "")
    try:
        command = tuple(json.loads(command_raw)) if command_raw else ("nas-controller",)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{p}CONTROLLER_COMMAND must be a JSON list ({err})") from None
    interval = float(env.get(p + "STATUS_INTERVAL_SECONDS", "") or 5.0)
    if interval <= 0:
        raise SettingsError(f"{p}STATUS_INTERVAL_SECONDS must be > 0 (got {interval})")
    return OperatorSettings(
        default_trainer_image=env.get(p + "DEFAULT_TRAINER_IMAGE", "") or DEFAULT_TRAINER_IMAGE,
        controller_image=env.get(p + "CONTROLLER_IMAGE", ""),
        controller_command=command,
        controller_resources=resources,
        image_pull_policy=env.get(p + "IMAGE_PULL_POLICY", ""),
        trial_job_ttl_seconds=_int(env, p + "TRIAL_JOB_TTL_SECONDS", 86400),
        successful_trial_jobs_history_limit=_limit(
            env, p + "SUCCESSFUL_TRIAL_JOBS_HISTORY_LIMIT", 3
        ),
        failed_trial_jobs_history_limit=_limit(env, p + "FAILED_TRIAL_JOBS_HISTORY_LIMIT", 10),
        status_interval_seconds=interval,
        controller_restart_limit=_int(env, p + "CONTROLLER_RESTART_LIMIT", 10) or 0,
        controller_restart_backoff_seconds=float(
            env.get(p + "CONTROLLER_RESTART_BACKOFF_SECONDS", "") or 5.0
        ),
        metrics_port=_int(env, p + "METRICS_PORT", 8080) or 0,
        manage_admission_policy=_bool(env, p + "MANAGE_ADMISSION_POLICY", True),
        run_as_user=_int(env, p + "RUN_AS_USER", 65532),
        search_policy=_search_policy(env, p),
    )


def _json_list(env: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{key} must be a JSON list of strings ({err})") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{key} must be a JSON list of strings (got {raw!r})")
    return tuple(value)


def _search_policy(env: Mapping[str, str], p: str) -> SearchPodPolicy:
    volume_types = _json_list(env, p + "TRAINER_VOLUME_TYPES", VOLUME_TYPES)
    unknown = sorted(set(volume_types) - set(VOLUME_TYPES))
    if unknown:
        raise SettingsError(
            f"{p}TRAINER_VOLUME_TYPES: {', '.join(unknown)} not allowed; choose among "
            + ", ".join(VOLUME_TYPES)
        )
    secrets = env.get(p + "SECRET_REFERENCES", "") or "IfAuthorCanRead"
    if secrets not in SECRET_MODES:
        raise SettingsError(
            f"{p}SECRET_REFERENCES must be one of {', '.join(SECRET_MODES)} (got {secrets!r})"
        )
    return SearchPodPolicy(
        volume_types=volume_types,
        secret_references=secrets,
        service_accounts=_json_list(env, p + "TRAINER_SERVICE_ACCOUNTS", ()),
    )


SETTINGS = load_settings()
