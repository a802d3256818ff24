"""The Helm chart: CRDs identical to crds/, documented values, what `helm template`
renders (lint and template need the Helm binary that tests/cluster/install-tools.sh
installs; those tests skip without it)."""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from nas_operator.builders.admission import build_admission_policies
from nas_operator.k8s import RESOURCES

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "nas-operator"
HELM_CANDIDATES = sorted((Path.home() / ".cache" / "nas-operator").glob("helm-*/bin/helm"))
HELM = str(HELM_CANDIDATES[-1]) if HELM_CANDIDATES else shutil.which("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not installed (make tools)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def render(*sets: str, api_versions: tuple[str, ...] = ()) -> list[dict]:
    args = ["template", "nas", str(CHART), "--namespace", "nas-system", "--kube-version", "1.34.0"]
    for value in sets:
        args += ["--set", value]
    for version in api_versions:
        args += ["--api-versions", version]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_chart_crds_are_the_repository_crds():
    names = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert names == sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    for name in names:
        assert filecmp.cmp(REPO / "crds" / name, CHART / "crds" / name, shallow=False), (
            f"charts/nas-operator/crds/{name} differs from crds/{name}: "
            "cp crds/*.yaml charts/nas-operator/crds/"
        )


def test_every_value_is_documented():
    """Each value has a comment line above it, or sits inside a documented block."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented, stack = [], []  # stack: (indent, documented) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z_]+):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = lines[i - 1].strip().startswith("#") or any(doc for _, doc in stack)
        leaf = line.split(":", 1)[1].strip() != ""
        if leaf and not documented:
            undocumented.append(match.group(2))
        stack.append((indent, documented))
    assert undocumented == []


def test_values_schema_is_json_schema_for_every_top_level_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])


@needs_helm
def test_helm_lint_strict():
    assert (
        "0 chart(s) failed"
        in helm("lint", str(CHART), "--strict", "--kube-version", "1.34.0").stdout
    )


@needs_helm
def test_deployment_is_one_recreated_non_root_replica_with_liveness():
    deployment = by_kind(render(), "Deployment")[0]
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["command"][:4] == ["kopf", "run", "-m", "nas_operator"]
    assert "--all-namespaces" in container["command"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert json.loads(env["NAS_OPERATOR_CONTROLLER_COMMAND"]) == ["nas-controller"]
    assert env["NAS_OPERATOR_METRICS_PORT"] == "8080"


@needs_helm
def test_watch_namespaces_bind_the_role_only_there():
    docs = render("watchNamespaces={team-a,team-b}")
    command = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--namespace=team-a" in command and "--all-namespaces" not in command
    assert sorted(b["metadata"]["namespace"] for b in by_kind(docs, "RoleBinding")) == [
        "team-a",
        "team-b",
    ]
    assert [b["metadata"]["name"] for b in by_kind(docs, "ClusterRoleBinding")] == [
        "nas-nas-operator-admission"
    ]


@needs_helm
def test_admission_cluster_role_may_upgrade_every_policy_the_operator_installs():
    role = next(
        r
        for r in by_kind(render(), "ClusterRole")
        if r["metadata"]["name"] == "nas-nas-operator-admission"
    )
    named = next(r for r in role["rules"] if r.get("resourceNames"))
    assert set(named["resourceNames"]) == {
        o["metadata"]["name"] for o in build_admission_policies()
    }


@needs_helm
def test_cluster_role_covers_every_kind_the_operator_touches_and_no_wildcards():
    role = next(
        r for r in by_kind(render(), "ClusterRole") if r["metadata"]["name"] == "nas-nas-operator"
    )
    granted = {
        (group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for (api_version, _kind), (plural, namespaced) in RESOURCES.items():
        group = api_version.split("/")[0] if "/" in api_version else ""
        if namespaced:
            assert (group, plural) in granted, f"{group}/{plural}"
    assert not any("*" in v for rule in role["rules"] for v in rule["verbs"] + rule["resources"])


@needs_helm
def test_monitoring_objects_follow_the_api_or_the_values():
    assert not by_kind(render(), "ServiceMonitor")
    assert by_kind(
        render(api_versions=("monitoring.coreos.com/v1/ServiceMonitor",)), "ServiceMonitor"
    )
    assert by_kind(render("serviceMonitor.enabled=true"), "PodMonitor")
    assert not by_kind(
        render(
            "serviceMonitor.enabled=false",
            api_versions=("monitoring.coreos.com/v1/ServiceMonitor",),
        ),
        "ServiceMonitor",
    )


@needs_helm
def test_dashboards_are_shipped_as_labelled_config_maps():
    maps = [
        m
        for m in by_kind(render(), "ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    shipped = {key: value for m in maps for key, value in m["data"].items()}
    files = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert set(shipped) == set(files) and len(files) == 3
    for name, text in files.items():
        assert json.loads(shipped[name]) == json.loads(text)
    assert not by_kind(render("dashboards.enabled=false"), "ConfigMap")


@needs_helm
@pytest.mark.parametrize(
    "value, complaint",
    [
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("operator.statusIntervalSeconds=0", "/operator/statusIntervalSeconds"),
        ("unknownKey=1", "additional properties 'unknownKey' not allowed"),
    ],
)
def test_schema_refuses_bad_values(value, complaint):
    result = helm(
        "template", "nas", str(CHART), "--kube-version", "1.34.0", "--set", value, check=False
    )
    assert result.returncode != 0 and complaint in result.stderr
