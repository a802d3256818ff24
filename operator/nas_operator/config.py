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
    status_interval_seconds: float = 5.0
    """How often each search's status, counts and metrics are recomputed."""
    controller_restart_limit: int = 10
    """Failed or vanished controller pods replaced before the search fails."""
    controller_restart_backoff_seconds: float = 5.0
    metrics_port: int = 8080
    manage_admission_policy: bool = True
    """Create/upgrade the cluster-wide ValidatingAdmissionPolicies at startup."""
    run_as_user: int | None = 65532
    """uid (and gid, fsGroup) of the controller pod; None: the image's USER (still non-root)."""


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
        status_interval_seconds=interval,
        controller_restart_limit=_int(env, p + "CONTROLLER_RESTART_LIMIT", 10) or 0,
        controller_restart_backoff_seconds=float(
            env.get(p + "CONTROLLER_RESTART_BACKOFF_SECONDS", "") or 5.0
        ),
        metrics_port=_int(env, p + "METRICS_PORT", 8080) or 0,
        manage_admission_policy=_bool(env, p + "MANAGE_ADMISSION_POLICY", True),
        run_as_user=_int(env, p + "RUN_AS_USER", 65532),
    )


SETTINGS = load_settings()
