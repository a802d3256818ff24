"""Where pod container logs go, and reading them back in tests.

One file per container, `<run dir>/logs/<namespace>_<pod>_<container>.log`; a restarted
container appends to the same file. (`kubectl logs` does not work: there is no kubelet
server to stream from.)
"""
from __future__ import annotations

from pathlib import Path


def container_log_path(run_dir: Path, namespace: str, pod: str, container: str) -> Path:
    # Namespaces, pod and container names are DNS names: "_" cannot occur in them.
    return run_dir / "logs" / f"{namespace}_{pod}_{container}.log"


def pod_log(run_dir: Path, namespace: str, pod: str, container: str | None = None) -> str:
    """The output of a pod's container; `container` may be left out for a pod with
    a single container."""
    if container is not None:
        path = container_log_path(run_dir, namespace, pod, container)
        if not path.exists():
            raise FileNotFoundError(f"no log for container {container!r} of pod "
                                    f"{namespace}/{pod} (not started yet?): {path}")
        return path.read_text(errors="replace")
    found = sorted((run_dir / "logs").glob(f"{namespace}_{pod}_*.log"))
    if len(found) != 1:
        names = [p.stem.rsplit("_", 1)[1] for p in found]
        raise ValueError(f"pod {namespace}/{pod} has logs for containers {names}: "
                         "say which container")
    return found[0].read_text(errors="replace")
