"""The Helm chart against the real control plane: its manifests pass the API server's
validation, and an installed release runs searches with nothing but the rights the
chart grants (the operator pod runs in-cluster on the test node agent)."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    IDLE_CONTROLLER,
    apply,
    crds,
    free_port,
    get,
    kube,
    kubectl,
    result_command,
    rights,
    search_manifest,
    search_path,
    trial_manifest,
    wait_trial,
)

from tests.cluster.paths import CACHE_ROOT, REPO_ROOT
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster
CHART = REPO_ROOT / "charts" / "nas-operator"


# What the chart's operator may do in a namespace it serves (kubectl auth can-i --list):
# a change here is a change of the operator's rights, to be reviewed as such.
OPERATOR_RIGHTS = {
    # (get, list, watch are also what creating policies whose params are searches needs)
    ("architecturesearches.archsearch.io", "[]", "[get list watch patch]"),
    ("architecturesearches.archsearch.io/status", "[]", "[get patch]"),
    ("architecturesearches.archsearch.io/finalizers", "[]", "[update]"),
    ("trials.archsearch.io", "[]", "[get list watch create]"),
    ("trials.archsearch.io/status", "[]", "[get patch]"),
    ("trials.archsearch.io/finalizers", "[]", "[update]"),
    ("jobs.batch", "[]", "[get list watch create patch delete]"),
    ("pods", "[]", "[get list watch create delete patch]"),
    ("persistentvolumeclaims", "[]", "[get create patch]"),
    ("services", "[]", "[get create]"),
    ("serviceaccounts", "[]", "[get create]"),
    ("configmaps", "[]", "[get list create]"),
    ("roles.rbac.authorization.k8s.io", "[]", "[get create patch]"),
    ("rolebindings.rbac.authorization.k8s.io", "[]", "[get create patch]"),
    ("leases.coordination.k8s.io", "[]", "[get create update patch]"),
    ("events", "[]", "[create patch list delete]"),
    ("events.events.k8s.io", "[]", "[create patch list delete]"),
    # the admission policies it installs and upgrades (cluster-wide, its own by name)
    ("validatingadmissionpolicies.admissionregistration.k8s.io", "[]", "[create]"),
    ("validatingadmissionpolicybindings.admissionregistration.k8s.io", "[]", "[create]"),
    *(
        (f"{kind}.admissionregistration.k8s.io", f"[{policy}]", "[get update]")
        for kind in ("validatingadmissionpolicies", "validatingadmissionpolicybindings")
        for policy in (
            "archsearch.io-search-pods",
            "archsearch.io-controller-trials",
            "archsearch.io-controller-status",
            "archsearch.io-worker-pods",
        )
    ),
}


@pytest.fixture(scope="module")
def helm_binary() -> str:
    found = sorted(CACHE_ROOT.glob("helm-*/bin/helm"))
    if not found:
        pytest.skip("helm is not installed (make tools)")
    return str(found[-1])


def helm(binary: str, cluster, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [binary, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_rendered_manifests_pass_server_side_validation(cluster, crds, helm_binary, namespace):
    rendered = helm(
        helm_binary,
        cluster,
        "template",
        "nas",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        "1.34.0",
        "--set",
        f"watchNamespaces={{{namespace}}}",
    ).stdout
    result = kubectl(
        cluster,
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=rendered,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered) if doc]
    assert (
        kinds.count("Deployment") == 1 and "ServiceMonitor" not in kinds
    )  # no monitoring API here


def test_installed_release_runs_a_trial_with_the_charts_rights_only(
    cluster, crds, helm_binary, namespace, tmp_path
):
    values = {
        "watchNamespaces": [namespace],
        "operator": {
            "controllerCommand": IDLE_CONTROLLER,
            "statusIntervalSeconds": 1,
        },
        "metrics": {"port": free_port()},
        "healthPort": free_port(),
    }
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    helm(
        helm_binary,
        cluster,
        "install",
        "nas",
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(tmp_path / "values.yaml"),
    )
    try:
        pods = f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/instance=nas"
        wait_for(
            lambda: any(
                (p.get("status") or {}).get("phase") == "Running"
                for p in kube(cluster).get(pods)["items"]
            ),
            "the operator pod to run",
            timeout=90,
        )
        operator_account = f"system:serviceaccount:{namespace}:nas-nas-operator"
        assert rights(cluster, operator_account, namespace) == OPERATOR_RIGHTS
        search = search_manifest("charted", command=result_command(reward=0.6))
        search["metadata"]["namespace"] = namespace
        apply(cluster, search)
        live = wait_for(
            lambda: (
                (s := get(cluster, search_path(namespace, "charted")))
                and (s.get("status") or {}).get("observedGeneration")
                and s
            ),
            "the in-cluster operator to observe the search",
            timeout=90,
        )
        trial = trial_manifest(live, 0)
        trial["metadata"]["namespace"] = namespace
        apply(cluster, trial)
        status = wait_trial(cluster, namespace, trial["metadata"]["name"], timeout=120)["status"]
        assert status["phase"] == "Succeeded" and status["reward"] == 0.6
        wait_for(
            lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/charted-controller"),
            "the controller pod made by the in-cluster operator",
        )
        wait_for(
            lambda: (
                (get(cluster, search_path(namespace, "charted"))["status"].get("best") or {}).get(
                    "reward"
                )
                == 0.6
            ),
            "the search's best reward",
        )
    finally:
        helm(
            helm_binary,
            cluster,
            "uninstall",
            "nas",
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "60s",
        )
    # Helm never deletes CRDs: the searches and their results stay
    assert get(cluster, search_path(namespace, "charted")) is not None
