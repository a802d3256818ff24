"""Where the harness finds its binaries and keeps its runs."""
from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = os.environ.get("K8S_VERSION", "1.34.4")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "3.6.16")

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path(
    os.environ.get("NAS_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nas-operator"
)
# Same layout as build-binaries.sh writes.
BIN_DIR = CACHE_ROOT / f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}" / "bin"
RUN_ROOT = CACHE_ROOT / "run"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class MissingBinaries(RuntimeError):
    pass


def binary(name: str) -> Path:
    """The path of a control-plane binary; fails with the command that builds it."""
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise MissingBinaries(
            f"{path} is missing: build the test control plane first with `make binaries` "
            f"(tests/cluster/build-binaries.sh; the first build takes 20-40 minutes)"
        )
    return path


def venv_bin() -> Path:
    """The project's virtualenv bin folder: first on PATH inside test pods."""
    return REPO_ROOT / ".venv" / "bin"


HELM_VERSION = os.environ.get("HELM_VERSION", "3.21.4")  # as pinned in install-tools.sh


def helm() -> Path:
    """The pinned Helm binary; fails with the command that installs it."""
    path = CACHE_ROOT / f"helm-{HELM_VERSION}" / "bin" / "helm"
    if not os.access(path, os.X_OK):
        raise MissingBinaries(f"{path} is missing: install it with `make tools` "
                              "(tests/cluster/install-tools.sh)")
    return path
