"""Fixtures for tests against the real test control plane (tests/cluster/).

- `cluster` (session): etcd, kube-apiserver, controller-manager, scheduler and the test
  node agent (nodes node-a and node-b), started once per pytest run and stopped at its
  end. A `tests.cluster.controlplane.Cluster`: `.kubeconfig` (admin; also exported as
  KUBECONFIG and loaded as the Python client's default), `.server`, `.run_dir` (every
  log), `.pod_log(namespace, pod, container=None)`, `.api_client()`.
- `namespace` (function): a fresh namespace, deleted after the test.
- `pod_log`: `cluster.pod_log`.
When a test using `namespace` fails, its pods' statuses and log tails are added to the
failure report.
"""
from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

import nas_trainer  # noqa: F401  (before any test imports torch: its OpenMP settings)

# `tests.cluster` must import whether pytest runs as `python -m pytest` or `pytest`.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.controlplane import Cluster, ControlPlane  # noqa: E402
from tests.cluster.waiting import wait_for  # noqa: E402


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _tell(config: pytest.Config, line: str) -> None:
    """A line on the terminal even while output is captured (start-up time, run dir)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    import kubernetes

    # SIGTERM (CI cancelling, `timeout`) would end pytest without teardown: make it
    # unwind like Ctrl-C so the control plane is stopped.
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_kubeconfig = os.environ.get("KUBECONFIG")
    plane = ControlPlane.start()
    try:
        handle = plane.cluster
        assert handle is not None
        times = handle.startup_seconds
        line = (f"test cluster up in {times['total']:.1f}s (pki {times['pki']:.2f}s, "
                f"etcd+apiserver {times['etcd+apiserver']:.1f}s, controllers+nodes "
                f"{times['controllers+nodes']:.1f}s); logs in {handle.run_dir}")
        (handle.run_dir / "startup.txt").write_text(line + "\n")
        _tell(request.config, line)
        os.environ["KUBECONFIG"] = str(handle.kubeconfig)
        kubernetes.config.load_kube_config(config_file=str(handle.kubeconfig))
        yield handle
    finally:
        plane.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        if previous_kubeconfig is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous_kubeconfig


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists (pods are refused
    until it does). It enforces Pod Security `restricted`, as a cluster that runs searches
    should, so a pod of the operator's that is not restricted fails the test; a test of
    the harness itself may ask for another level with `@pytest.mark.pod_security(level)`."""
    import kubernetes

    marker = request.node.get_closest_marker("pod_security")
    level = marker.args[0] if marker else "restricted"
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:5]}"
    with cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": level}}})
        wait_for(lambda: core.read_namespaced_service_account("default", name),
                 f"the default ServiceAccount of namespace {name}", timeout=30)
        yield name
        core.delete_namespace(name)  # not awaited: the namespace controller finishes it


@pytest.fixture
def host_dir(cluster: Cluster) -> Path:
    """A fresh folder on the host that pods of any user can write and later attempts read
    (tmp_path is not: the operator gives every pod its own /tmp)."""
    from tests.cluster.pod_runtime import shared_host_dir

    folder = shared_host_dir(Path(cluster.run_dir)) / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    for path in (folder, folder.parent):
        path.chmod(0o777)
    return folder


@pytest.fixture
def pod_log(cluster: Cluster) -> Callable[..., str]:
    return cluster.pod_log


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "namespace" in getattr(item, "funcargs", {}):
        try:
            text = _describe_namespace(item.funcargs["cluster"], item.funcargs["namespace"])
            report.sections.append(("cluster", text))
        except Exception as exc:  # diagnostics must never hide the real failure
            report.sections.append(("cluster", f"(could not describe the namespace: {exc})"))


def _describe_namespace(cluster: Cluster, namespace: str) -> str:
    """Pods of the namespace with their status and the tail of their logs."""
    import json

    from tests.cluster.kube import Kube
    from tests.cluster.logs import container_log_path

    with cluster.api_client() as api:
        kube = Kube(api)
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
        events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    lines = [f"run dir: {cluster.run_dir}"]
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status") or {}
        lines.append(f"pod {meta['name']} on {pod['spec'].get('nodeName')}: phase "
                     f"{status.get('phase')}")
        for cs in status.get("containerStatuses") or []:
            lines.append(f"  {cs['name']}: {json.dumps(cs.get('state'))}")
            path = container_log_path(cluster.run_dir, namespace, meta["name"], cs["name"])
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-20:]
                lines += [f"  | {line}" for line in tail]
    for event in events[-20:]:
        lines.append(f"event {event['involvedObject'].get('name')}: {event.get('reason')}: "
                     f"{event.get('message')}")
    lines.append(f"node agent log: {cluster.component_log('node-agent')}")
    return "\n".join(lines)
