"""What the API server refuses reaches the user: the search's phase and condition, the
Trial's phase and reason, Warning Events with the server's own words; and the operator
keeps serving the other searches of its namespace.

The refusals come from the server's own admission (a LimitRange, a ValidatingAdmission-
Policy made here for the test's namespace), not from the CRD: they stay refusals however
the CRD's schema changes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    GROUP_VERSION,
    apply,
    crds,
    get,
    kube,
    kubectl,
    operator,
    result_command,
    search_manifest,
    search_path,
    trial_manifest,
    trial_path,
    wait_trial,
)
from test_search_e2e_helpers import CORA, search, search_operator, trials_of  # noqa: F401

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

LIMIT_MESSAGE = "maximum storage usage per PersistentVolumeClaim is 2Gi"


# --- what the test's namespace refuses --------------------------------------------------
def limit_claims_to_2gi(cluster, namespace: str) -> None:
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "claims-up-to-2gi", "namespace": namespace},
            "spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}}]},
        },
    )


def refuse_creates(
    cluster, namespace: str, group: str, resource: str, search_name: str, message: str
) -> str:
    """A ValidatingAdmissionPolicy (and its binding) refusing every ``resource`` created in
    ``namespace`` for ``search_name`` (label archsearch.io/search); returns its name."""
    name = f"test-refuse-{resource}-{namespace}"[:63]
    apply(
        cluster,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [group],
                            "apiVersions": ["*"],
                            "operations": ["CREATE"],
                            "resources": [resource],
                        }
                    ]
                },
                "matchConditions": [
                    {
                        "name": "of-the-search",
                        "expression": "has(object.metadata.labels) && "
                        "'archsearch.io/search' in object.metadata.labels && "
                        f"object.metadata.labels['archsearch.io/search'] == '{search_name}'",
                    }
                ],
                "validations": [{"expression": "false", "message": message}],
            },
        },
    )
    apply(
        cluster,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    }
                },
            },
        },
    )
    return name


def wait_policy_refuses(cluster, namespace: str, obj: dict[str, Any], message: str) -> None:
    """A new policy takes a moment to be enforced: probe with a server-side dry run."""

    def refused() -> bool:
        result = apply_dry_run(cluster, namespace, obj)
        return result.returncode != 0 and message in result.stderr

    wait_for(refused, f"the test policy to refuse {obj['kind']}s", timeout=60, interval=0.5)


def apply_dry_run(cluster, namespace: str, obj: dict[str, Any]):
    return kubectl(
        cluster, "create", "--dry-run=server", "-n", namespace, "-f", "-",
        input=json.dumps(obj), check=False,
    )


def delete_policy(cluster, name: str) -> None:
    kubectl(cluster, "delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
    kubectl(cluster, "delete", "validatingadmissionpolicy", name, "--ignore-not-found")


# --- what a user reads -----------------------------------------------------------------
def search_status(cluster, namespace: str, name: str) -> dict[str, Any]:
    return (get(cluster, search_path(namespace, name)) or {}).get("status") or {}


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def wait_phase(cluster, namespace: str, name: str, phase: str, timeout: float = 90):
    return wait_for(
        lambda: (s := search_status(cluster, namespace, name)).get("phase") == phase and s,
        f"search {name} to be {phase}",
        timeout=timeout,
        interval=0.5,
    )


def kubectl_phase(cluster, namespace: str, name: str) -> str:
    """The PHASE column of `kubectl get archsearch NAME`."""
    out = kubectl(cluster, "get", "archsearch", name, "-n", namespace).stdout.splitlines()
    header, row = out[0].split(), out[1].split()
    return row[header.index("PHASE")]


def warnings_on(cluster, namespace: str, name: str) -> list[str]:
    """`kubectl get events --field-selector involvedObject.name=NAME,type=Warning`."""
    out = kubectl(
        cluster, "get", "events", "-n", namespace, "-o", "json",
        "--field-selector", f"involvedObject.name={name},type=Warning",
    ).stdout
    return [f"{e['reason']}: {e['message']}" for e in json.loads(out)["items"]]


def wait_warning(cluster, namespace: str, name: str, reason: str, words: str) -> str:
    return wait_for(
        lambda: next(
            (w for w in warnings_on(cluster, namespace, name)
             if w.startswith(f"{reason}:") and words in w),
            None,
        ),
        f"a Warning {reason} on {name} saying {words!r}",
        timeout=60,
        interval=0.5,
    )


def in_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    obj["metadata"]["namespace"] = namespace
    return obj


def observed(cluster, namespace: str, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (s := get(cluster, search_path(namespace, name)))
        and (s.get("status") or {}).get("observedGeneration")
        and s,
        f"the operator to observe search {name}",
        timeout=60,
    )


# --- the tests ---------------------------------------------------------------------------
def test_refused_volume_and_trial_jobs_reach_the_user_while_other_searches_run(
    cluster, operator, namespace
):
    job_words = "trial Jobs of jobless are refused by this namespace's test policy"
    policy = refuse_creates(cluster, namespace, "batch", "jobs", "jobless", job_words)
    try:
        limit_claims_to_2gi(cluster, namespace)
        probe = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "probe", "labels": {"archsearch.io/search": "jobless"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "x", "command": ["true"]}]}}},
        }
        wait_policy_refuses(cluster, namespace, probe, job_words)

        # a volume the LimitRange refuses: the search fails at once, in the server's words
        big = search_manifest("bigvolume")
        big["spec"]["storage"] = {"size": "5Gi"}
        apply(cluster, in_namespace(big, namespace))
        status = wait_phase(cluster, namespace, "bigvolume", "Failed")
        failed = condition(status, "Failed")
        assert failed["status"] == "True" and failed["reason"] == "CreateRefused", status
        assert "PersistentVolumeClaim bigvolume-data" in failed["message"]
        assert LIMIT_MESSAGE in failed["message"]
        assert kubectl_phase(cluster, namespace, "bigvolume") == "Failed"
        wait_warning(cluster, namespace, "bigvolume", "CreateRefused", LIMIT_MESSAGE)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/pods/bigvolume-controller") is None

        # a search whose trial Jobs are refused, next to one that runs
        jobless = observed(cluster, namespace, apply_search(cluster, namespace, "jobless"))
        healthy = observed(
            cluster, namespace,
            apply_search(cluster, namespace, "healthy", command=result_command(reward=0.75)),
        )
        for index in (0, 1):
            apply(cluster, in_namespace(trial_manifest(jobless, index), namespace))
        apply(cluster, in_namespace(trial_manifest(healthy, 0), namespace))

        for index in (0, 1):
            refused = wait_trial(cluster, namespace, f"jobless-{index:05d}")["status"]
            assert refused["phase"] == "Failed" and refused["reason"] == "JobRefused", refused
            assert job_words in refused["message"] and "Job jobless-" in refused["message"]
        wait_warning(cluster, namespace, "jobless-00000", "JobRefused", job_words)
        wait_warning(cluster, namespace, "jobless", "JobRefused", job_words)
        counted = wait_for(
            lambda: (s := search_status(cluster, namespace, "jobless")).get("trials") and s,
            "the search's trial counts",
            timeout=60,
        )
        wait_for(
            lambda: search_status(cluster, namespace, "jobless")["trials"]["failed"] == 2,
            f"the refused trials to count as failed (status: {counted})",
            timeout=60,
        )
        assert get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/jobless-00000") is None

        done = wait_trial(cluster, namespace, "healthy-00000")["status"]
        assert done["phase"] == "Succeeded" and done["reward"] == 0.75, done
        assert operator.healthy(), "the operator must outlive every refusal"

        # the policy lifted and the spec changed: the refused search goes on
        kubectl(cluster, "delete", "limitrange", "claims-up-to-2gi", "-n", namespace)
        kubectl(
            cluster, "patch", "archsearch", "bigvolume", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"trials": {"max": 5}}}),
        )
        wait_for(
            lambda: search_status(cluster, namespace, "bigvolume").get("phase")
            in ("Pending", "Running"),
            "the refused search to leave Failed once its spec changed",
            timeout=60,
        )
        wait_for(
            lambda: get(
                cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/bigvolume-data"
            ),
            "the volume, no longer refused",
            timeout=60,
        )
        assert condition(search_status(cluster, namespace, "bigvolume"), "Failed").get(
            "status"
        ) != "True"
    finally:
        delete_policy(cluster, policy)


def apply_search(cluster, namespace: str, name: str, **kwargs: Any) -> str:
    apply(cluster, in_namespace(search_manifest(name, **kwargs), namespace))
    return name


# Specs `nas validate` refuses, each naming its field: the controller refuses them (if the
# CRD lets them through, which the CRD's own rules increasingly do not).
UNFIT_TRAINERS = [
    ("spec.trainer.dataset", {}),
    ("spec.trainer.model.nonsense", {"dataset": "synthetic", "model": {"nonsense": 1}}),
    ("spec.trainer.reward.metric", {"dataset": "synthetic", "reward": {"metric": "val_acc"}}),
]


def test_controller_refusals_fail_the_search_at_once(cluster, search_operator, namespace):
    trial_words = "Trials of untrialed are refused by this namespace's test policy"
    job_words = "trial Jobs of allrefused are refused by this namespace's test policy"
    policies = [
        refuse_creates(cluster, namespace, "archsearch.io", "trials", "untrialed", trial_words),
        refuse_creates(cluster, namespace, "batch", "jobs", "allrefused", job_words),
    ]
    try:
        # a spec the controller's checks (those of `nas validate`) refuse: Failed at once,
        # the field named, no restart of the controller
        accepted = None
        for index, (field, trainer) in enumerate(UNFIT_TRAINERS):
            name = f"unfit-{index}"
            manifest = search(
                name, namespace, {"name": "macro-cnn"}, {"name": "random", "seed": 0},
                {"max": 2, "parallelism": 1, "maxFailed": 1}, trainer,
            )
            result = apply(cluster, manifest, check=False)
            if result.returncode == 0:
                accepted = (name, field)
                break
            # refused at admission: then in a sentence naming the field, which is better
            assert field.rsplit(".", 1)[0] in result.stderr, result.stderr
        if accepted is not None:
            name, field = accepted
            status = wait_phase(cluster, namespace, name, "Failed", timeout=180)
            failed = condition(status, "Failed")
            assert failed["reason"] == "InvalidSpec", status
            assert field in failed["message"], failed
            assert int(status.get("controllerRestarts") or 0) == 0, status
            assert kubectl_phase(cluster, namespace, name) == "Failed"
            wait_warning(cluster, namespace, name, "InvalidSpec", field)

        # a Trial the API server refuses the controller: Failed at once with its words
        apply(cluster, search("untrialed", namespace, CORA, {"name": "random", "seed": 0},
                              {"max": 3, "parallelism": 1, "maxFailed": 1}))
        status = wait_phase(cluster, namespace, "untrialed", "Failed", timeout=180)
        failed = condition(status, "Failed")
        assert failed["reason"] == "TrialRefused", status
        assert trial_words in failed["message"] and "Trial untrialed-00000" in failed["message"]
        assert int(status.get("controllerRestarts") or 0) == 0, status
        wait_warning(cluster, namespace, "untrialed", "TrialRefused", trial_words)

        # every trial Job refused: each Trial fails, and spec.trials.maxFailed ends the search
        apply(cluster, search("allrefused", namespace, CORA, {"name": "random", "seed": 0},
                              {"max": 4, "parallelism": 1, "maxFailed": 2}))
        status = wait_phase(cluster, namespace, "allrefused", "Failed", timeout=240)
        assert condition(status, "Failed")["reason"] == "TooManyFailures", status
        trials = trials_of(cluster, namespace, "allrefused")
        assert len(trials) >= 2
        assert all(t["status"]["reason"] == "JobRefused" for t in trials), [
            t.get("status") for t in trials
        ]
        assert all(job_words in t["status"]["message"] for t in trials)
        assert search_operator.process.healthy()
    finally:
        for policy in policies:
            delete_policy(cluster, policy)


def test_a_missing_claim_is_named_in_a_condition(cluster, operator, namespace):
    """A claim named in spec.storage.claimName that does not exist: the search waits for
    it, and says so in a condition naming the claim (the condition clears once it is
    there)."""
    manifest = search_manifest("claimless")
    manifest["spec"]["storage"] = {"claimName": "not-made-yet"}
    apply(cluster, in_namespace(manifest, namespace))
    status = wait_for(
        lambda: condition(search_status(cluster, namespace, "claimless"), "VolumeReady"),
        "a VolumeReady condition",
        timeout=60,
    )
    assert status["status"] == "False" and status["reason"] == "ClaimNotFound", status
    assert "not-made-yet" in status["message"]
    assert search_status(cluster, namespace, "claimless")["phase"] == "Pending"
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "not-made-yet", "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    wait_for(
        lambda: condition(search_status(cluster, namespace, "claimless"), "VolumeReady").get(
            "status"
        )
        == "True",
        "VolumeReady to turn True once the claim exists",
        timeout=60,
    )
