"""A search author is not a cluster admin: on the real control plane, with the operator's
admission policies installed, a search may reference only what its author may read, its
pods pass Pod Security ``restricted`` (the test namespace enforces it), and the
operator's per-search identities hold exactly the rights they need."""

from __future__ import annotations

import copy

import pytest
import yaml
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    apply,
    crds,
    get,
    kubectl,
    operator,
    rights,
    search_manifest,
    search_path,
    trial_manifest,
    wait_trial,
)

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster
AUTHOR = "alice@example.com"


def author_may_write_searches(cluster, namespace: str) -> None:
    """alice may manage searches and read one ConfigMap; no Secrets, no pods."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "search-author", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["archsearch.io"],
                "resources": ["architecturesearches", "trials"],
                "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["shared-config"],
                "verbs": ["get"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "search-author", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "search-author"},
        "subjects": [{"kind": "User", "name": AUTHOR, "apiGroup": "rbac.authorization.k8s.io"}],
    }
    apply(cluster, role)
    apply(cluster, binding)
    for name in ("shared-config", "private-config"):
        apply(cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": namespace},
                        "data": {"lr": "0.1"}})
    apply(cluster, {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "registry-token", "namespace": namespace},
                    "stringData": {"token": "s3cret"}})


def wait_policy_in_force(cluster, namespace: str) -> None:
    """The API server enforces a new admission policy a moment after the operator makes it
    (its policy informer): wait until a dry run of a Secret reference is refused."""
    probe = yaml.safe_dump(with_trainer(namespace, "probe", **SECRET_VOLUME))
    wait_for(
        lambda: kubectl(cluster, "apply", "--dry-run=server", "--as", AUTHOR, "-f", "-",
                        input=probe, check=False).returncode != 0,
        "the operator's admission policy to be in force",
        timeout=30,
    )


def with_trainer(namespace: str, name: str, **trainer) -> dict:
    search = search_manifest(name)
    search["metadata"]["namespace"] = namespace
    search["spec"]["trainer"].update(copy.deepcopy(trainer))
    return search


SECRET_VOLUME = {
    "volumes": [{"name": "token", "secret": {"secretName": "registry-token"}}],
    "volumeMounts": [{"name": "token", "mountPath": "/etc/token", "readOnly": True}],
}
SECRET_ENV = {
    "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "registry-token",
                                                             "key": "token"}}}],
}


def config_volume(name: str) -> dict:
    return {
        "volumes": [{"name": "settings", "configMap": {"name": name}}],
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings", "readOnly": True}],
    }


@pytest.mark.parametrize(
    "trainer, words",
    [
        (SECRET_VOLUME, "spec.trainer.volumes: a secret volume may name only secrets you may get"),
        (SECRET_ENV, "spec.trainer.env: secretKeyRef may name only Secrets you may get"),
        (config_volume("private-config"),
         "spec.trainer.volumes: a configMap volume may name only configmaps you may get"),
        ({"serviceAccountName": "default"},
         "spec.trainer.serviceAccountName: trial pods may run under a ServiceAccount only if"),
    ],
    ids=["secret-volume", "secret-env", "unreadable-configmap", "service-account"],
)
def test_a_search_may_not_reference_what_its_author_may_not_read(
    cluster, operator, namespace, trainer, words
):
    author_may_write_searches(cluster, namespace)
    wait_policy_in_force(cluster, namespace)
    refused = apply(cluster, with_trainer(namespace, "reach", **trainer), user=AUTHOR,
                    check=False)
    assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    assert get(cluster, search_path(namespace, "reach")) is None
    # the same search from someone who may read the Secret, the ConfigMap, create pods
    apply(cluster, with_trainer(namespace, "reach", **trainer))
    assert get(cluster, search_path(namespace, "reach")) is not None


@pytest.mark.parametrize(
    "trainer, words",
    [
        ({"securityContext": {"privileged": True}}, "spec.trainer.securityContext cannot be set"),
        ({"securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}},
         "spec.trainer.securityContext cannot be set"),
        ({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
         "hostPath"),
        ({"serviceAccountName": "escalate-controller"},
         "spec.trainer.serviceAccountName escalate-controller is the search's own controller"),
        ({"env": [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]},
         "spec.trainer.env name LD_PRELOAD is reserved"),
        ({"env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "10.0.0.1"}]},
         "spec.trainer.env name KUBERNETES_SERVICE_HOST is reserved"),
        ({"env": [{"name": "NAS_TRIAL_INDEX", "value": "0"}]},
         "spec.trainer.env name NAS_TRIAL_INDEX is reserved"),
    ],
    ids=["privileged", "root-and-capabilities", "host-path", "controller-account", "ld-preload",
         "api-server-override", "trainer-variable"],
)
def test_no_search_may_ask_for_privileges_host_access_or_the_operators_own_names(
    cluster, crds, namespace, trainer, words
):
    # refused by the CRD's schema and rules, for everyone (admins widen nothing of this)
    refused = apply(cluster, with_trainer(namespace, "escalate", **trainer), check=False)
    assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    assert get(cluster, search_path(namespace, "escalate")) is None


def test_an_authors_search_runs_restricted_trial_pods_with_what_they_may_read(
    cluster, operator, namespace
):
    author_may_write_searches(cluster, namespace)
    wait_policy_in_force(cluster, namespace)
    apply(cluster, with_trainer(namespace, "allowed", **config_volume("shared-config")),
          user=AUTHOR)
    live = wait_for(
        lambda: (s := get(cluster, search_path(namespace, "allowed")))
        and (s.get("status") or {}).get("observedGeneration") and s,
        "the operator to observe the search",
        timeout=60,
    )
    trial = trial_manifest(live, 0)
    trial["metadata"]["namespace"] = namespace
    apply(cluster, trial)
    # the namespace enforces Pod Security restricted: a pod that is not is never created
    status = wait_trial(cluster, namespace, trial["metadata"]["name"], timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    # an update that changes nothing the author wrote in spec.trainer is not re-checked
    # against the author's rights, and one that adds a Secret is
    edited = with_trainer(namespace, "allowed", **config_volume("shared-config"), **SECRET_ENV)
    refused = apply(cluster, edited, user=AUTHOR, check=False)
    assert "secretKeyRef may name only Secrets you may get" in refused.stderr


def test_the_per_search_identities_hold_only_what_they_use(cluster, operator, namespace):
    search = search_manifest("rights", mode="WarmPool", parallelism=2, max=4)
    search["metadata"]["namespace"] = namespace
    search["spec"]["trainer"].pop("command")  # a warm pool runs the built-in trainer
    search["spec"]["searchSpace"] = {"name": "nas-bench-graph", "options": {"dataset": "cora"}}
    search["spec"]["suspend"] = True  # identities are made; no pod needs to run
    apply(cluster, search)
    account = f"system:serviceaccount:{namespace}:rights"
    wait_for(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/serviceaccounts/rights-worker"),
             "the warm workers' ServiceAccount")
    assert rights(cluster, account + "-controller", namespace) == {
        ("architecturesearches.archsearch.io", "[]", "[get list watch]"),
        ("architecturesearches.archsearch.io/status", "[rights]", "[get patch]"),
        ("trials.archsearch.io", "[]", "[create get list watch]"),
        ("leases.coordination.k8s.io", "[]", "[create]"),
        ("leases.coordination.k8s.io", "[rights-controller]", "[get update patch]"),
        ("events", "[]", "[create patch]"),
        ("events.events.k8s.io", "[]", "[create patch]"),
    }
    assert rights(cluster, account + "-worker", namespace) == {
        ("pods", "[rights-worker-0]", "[get list watch patch]"),
        ("pods", "[rights-worker-1]", "[get list watch patch]"),
    }
