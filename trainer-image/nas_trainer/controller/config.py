"""The controller's settings, read once from its environment (set by the operator)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nas_contracts.cluster import ENV_DATA_DIR, ENV_NAMESPACE, ENV_SEARCH_NAME
from nas_contracts.volume import MOUNT_PATH

from nas_trainer.controller.fencing import identity_from_env

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ControllerConfig:
    search: str
    namespace: str
    data_dir: Path
    identity: str
    lease_seconds: int = 15
    metrics_port: int = 8000
    wait_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ControllerConfig":
        env = dict(os.environ if env is None else env)
        search = env.get(ENV_SEARCH_NAME, "")
        if not search:
            raise ConfigError(f"{ENV_SEARCH_NAME} must name the ArchitectureSearch to run")
        namespace = env.get(ENV_NAMESPACE, "")
        if not namespace and SERVICE_ACCOUNT_NAMESPACE.exists():
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        if not namespace:
            raise ConfigError(f"{ENV_NAMESPACE} must name the search's namespace")
        return cls(
            search=search,
            namespace=namespace,
            data_dir=Path(env.get(ENV_DATA_DIR, MOUNT_PATH)),
            identity=identity_from_env(env),
            lease_seconds=_integer(env, "NAS_LEASE_SECONDS", 15, minimum=1),
            metrics_port=_integer(env, "NAS_METRICS_PORT", 8000, minimum=0),
        )


def _integer(env: dict[str, str], key: str, default: int, minimum: int) -> int:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum} (got {value})")
    return value
