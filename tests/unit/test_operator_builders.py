"""The operator's pure builders: the objects a search and a trial turn into."""

from __future__ import annotations

import json
import re

import pytest
from nas_operator.builders.admission import (
    build_admission_policies,
    build_policy_binding,
    build_status_admission_policy,
    build_trial_admission_policy,
    build_worker_admission_policy,
)
from nas_operator.builders.controller_pod import build_controller_pod
from nas_operator.builders.final_job import build_final_job
from nas_operator.builders.rbac import build_rbac
from nas_operator.builders.snapshot import (
    build_trainer_snapshot,
    read_trainer_snapshot,
    trial_run_spec,
)
from nas_operator.builders.storage import build_pvc, claim_name, trial_pods_mount_volume
from nas_operator.builders.trial_job import build_trial_job, trainer_config
from nas_operator.builders.worker_pod import build_worker_pod
from nas_operator.config import OperatorSettings


def search(**spec) -> dict:
    return {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "ArchitectureSearch",
        "metadata": {"name": "cora", "namespace": "team", "uid": "uid-1", "generation": 3},
        "spec": {
            "searchSpace": {"name": "nas-bench-graph"},
            "trials": {"max": 10, "parallelism": 2, "retries": 4, "timeoutSeconds": 600},
            "trainer": {"image": "trainer:1", "epochs": 5, "dataset": "digits"},
            "storage": {
                "size": "2Gi",
                "accessModes": ["ReadWriteOnce"],
                "retentionPolicy": "Retain",
            },
            **spec,
        },
    }


def trial(index: int = 7, generation: int = 3) -> dict:
    return {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "Trial",
        "metadata": {"name": f"cora-{index:05d}", "namespace": "team", "uid": "trial-uid"},
        "spec": {
            "searchName": "cora",
            "index": index,
            "architecture": {
                "space": "nas-bench-graph",
                "tokens": [0, 1],
                "canonical": {"ops": ["gcn"]},
                "hash": "abc",
            },
            "searchGeneration": generation,
        },
    }


SETTINGS = OperatorSettings(trial_job_ttl_seconds=600)


# --- volume ---------------------------------------------------------------------------


def test_pvc_is_made_from_storage_and_outlives_the_search_by_default():
    pvc = build_pvc(search())
    assert pvc["metadata"]["name"] == "cora-data"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["metadata"]["ownerReferences"] == []


def test_pvc_is_owned_by_the_search_with_retention_delete():
    pvc = build_pvc(search(storage={"retentionPolicy": "Delete", "storageClassName": "fast"}))
    assert [o["name"] for o in pvc["metadata"]["ownerReferences"]] == ["cora"]
    assert pvc["spec"]["storageClassName"] == "fast"


def test_existing_claim_is_used_not_made():
    s = search(storage={"claimName": "shared"})
    assert build_pvc(s) is None
    assert claim_name(s) == "shared"


@pytest.mark.parametrize(
    "trainer, modes, mounted",
    [
        ({}, ["ReadWriteOnce"], False),
        ({}, ["ReadWriteMany"], True),
        ({"mountSearchVolume": True}, ["ReadWriteOnce"], True),
    ],
)
def test_trial_pods_mount_the_volume_only_when_shareable_or_asked(trainer, modes, mounted):
    assert trial_pods_mount_volume(trainer, modes) is mounted


# --- RBAC -----------------------------------------------------------------------------


def test_controller_rbac_is_least_privilege():
    sa, role, binding = build_rbac(search())
    assert (
        sa["metadata"]["name"]
        == role["metadata"]["name"]
        == binding["metadata"]["name"]
        == "cora-controller"
    )
    rules = {
        (tuple(r["resources"]), tuple(r.get("resourceNames", []))): set(r["verbs"])
        for r in role["rules"]
    }
    assert rules[(("architecturesearches",), ())] == {"get", "list", "watch"}
    assert rules[(("architecturesearches/status",), ("cora",))] == {"get", "patch"}
    assert rules[(("trials",), ())] == {"create", "get", "list", "watch"}
    assert rules[(("leases",), ("cora-controller",))] == {"get", "update", "patch"}
    assert not any("delete" in verbs for verbs in rules.values())
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cora-controller", "namespace": "team"}
    ]
    for obj in (sa, role, binding):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


# --- controller pod -------------------------------------------------------------------


def test_controller_pod_runs_the_controller_non_root_with_the_volume():
    pod = build_controller_pod(search(), OperatorSettings())
    spec = pod["spec"]
    container = spec["containers"][0]
    assert pod["metadata"]["name"] == "cora-controller"
    assert container["image"] == "trainer:1" and container["command"] == ["nas-controller"]
    assert spec["serviceAccountName"] == "cora-controller"
    assert (
        spec["securityContext"]["runAsNonRoot"] is True
        and spec["securityContext"]["runAsUser"] == 65532
    )
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e for e in container["env"]}
    assert env["NAS_SEARCH_NAME"]["value"] == "cora"
    assert env["NAS_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["NAS_DATA_DIR"]["value"] == "/data"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts) == {"/data", "/tmp"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == "cora-data"
    assert spec["restartPolicy"] == "Never"


def test_operator_settings_override_the_controller_image_and_user():
    settings = OperatorSettings(controller_image="controller:2", run_as_user=None)
    pod = build_controller_pod(search(), settings)
    assert pod["spec"]["containers"][0]["image"] == "controller:2"
    assert "runAsUser" not in pod["spec"]["securityContext"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_controller_uses_the_default_image_without_one_in_the_search():
    s = search(trainer={})
    assert (
        build_controller_pod(s, OperatorSettings(default_trainer_image="d:1"))["spec"][
            "containers"
        ][0]["image"]
        == "d:1"
    )


# --- trainer snapshot and trial Job ---------------------------------------------------


def test_snapshot_records_the_trainer_of_the_generation():
    cm = build_trainer_snapshot(search(), ["ReadWriteMany"])
    assert cm["metadata"]["name"] == "cora-trainer-3" and cm["immutable"] is True
    run = read_trainer_snapshot(cm)
    assert run == trial_run_spec(search(), ["ReadWriteMany"])
    stored = json.loads(cm["data"]["trainer.json"])  # the ConfigMap's keys, as in contract 7
    assert (
        stored["trainer"]["image"] == "trainer:1"
        and stored["retries"] == 4
        and stored["mountSearchVolume"] is True
    )


def test_trial_job_follows_the_snapshot():
    s = search(
        trainer={
            "image": "trainer:1",
            "epochs": 5,
            "resources": {"limits": {"nvidia.com/gpu": 1}},
            "nodeSelector": {"gpu": "h100"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "priorityClassName": "nas",
            "env": [{"name": "EXTRA", "value": "1"}],
            "volumes": [{"name": "datasets", "emptyDir": {}}],
            "volumeMounts": [{"name": "datasets", "mountPath": "/datasets"}],
        }
    )
    run = trial_run_spec(s, ["ReadWriteOnce"])
    job = build_trial_job(trial(), run, SETTINGS)
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert job["metadata"]["name"] == "cora-00007"
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "Trial",
        "name": "cora-00007",
        "uid": "trial-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert spec["backoffLimit"] == 4 and spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 600 and spec["suspend"] is False
    fail, ignore = spec["podFailurePolicy"]["rules"]
    assert fail == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [3]},
    }
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"gpu": "h100"} and pod["priorityClassName"] == "nas"
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert container["command"] == ["nas-train"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["NAS_ARCHITECTURE"])["hash"] == "abc"
    assert json.loads(env["NAS_TRAINER_CONFIG"]) == {"epochs": 5}
    assert env["EXTRA"] == "1" and env["NAS_TRIAL_INDEX"] == "7"
    assert "NAS_OUTPUT_DIR" not in env
    assert pod["volumes"] == [{"name": "datasets", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    assert container["volumeMounts"] == [
        {"name": "datasets", "mountPath": "/datasets"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    assert job["spec"]["template"]["metadata"]["labels"]["archsearch.io/trial"] == "cora-00007"


RESTRICTED_POD = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def test_a_trial_pod_is_restricted_whatever_an_older_spec_asked_for():
    # a snapshot made before the CRD refused these fields still gets none of them
    s = search(
        trainer={
            "securityContext": {"privileged": True, "runAsUser": 0},
            "env": [
                {"name": "NAS_TRIAL_INDEX", "value": "999"},
                {"name": "HOME", "value": "/root"},
                {"name": "EXTRA", "value": "1"},
            ],
        }
    )
    job = build_trial_job(trial(), trial_run_spec(s, ["ReadWriteOnce"]), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"] == RESTRICTED_POD
    assert container["securityContext"] == RESTRICTED_CONTAINER
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    # where a name repeats the last entry wins (kubelet): the operator's come last
    last = {e["name"]: e.get("value") for e in container["env"]}
    assert last["NAS_TRIAL_INDEX"] == "7" and last["HOME"] == "/tmp" and last["EXTRA"] == "1"


def test_every_pod_the_operator_makes_has_the_restricted_contexts():
    s = search(trainer={"image": "trainer:1"}, finalTraining={"epochs": 2})
    run = trial_run_spec(s, ["ReadWriteMany"])
    pods = [
        build_controller_pod(s, SETTINGS)["spec"],
        build_trial_job(trial(), run, SETTINGS)["spec"]["template"]["spec"],
        build_final_job(s, trial(), run, SETTINGS)["spec"]["template"]["spec"],
        build_worker_pod(s, run, SETTINGS, 0)["spec"],
    ]
    for pod in pods:
        assert pod["securityContext"] == RESTRICTED_POD
        assert [c["securityContext"] for c in pod["containers"]] == [RESTRICTED_CONTAINER]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_trial_job_mounts_the_search_volume_when_the_snapshot_says_so():
    run = trial_run_spec(search(), ["ReadWriteMany"])
    job = build_trial_job(trial(index=12), run, SETTINGS, suspend=True)
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["NAS_OUTPUT_DIR"] == "/data/trials/00012"
    assert pod["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "search-data", "persistentVolumeClaim": {"claimName": "cora-data"}},
    ]
    assert job["spec"]["suspend"] is True


def test_trainer_config_keeps_only_the_trainers_own_options():
    trainer = {
        "image": "x",
        "command": ["y"],
        "epochs": 3,
        "reward": {"metric": "val_accuracy"},
        "env": [],
    }
    assert trainer_config(trainer) == {"epochs": 3, "reward": {"metric": "val_accuracy"}}


def test_trial_job_without_ttl_setting_keeps_jobs():
    job = build_trial_job(
        trial(), trial_run_spec(search(), []), OperatorSettings(trial_job_ttl_seconds=None)
    )
    assert "ttlSecondsAfterFinished" not in job["spec"]


# --- final training Job --------------------------------------------------------------

PLACED = {
    "image": "trainer:1",
    "epochs": 5,
    "resources": {"limits": {"nvidia.com/gpu": 1}},
    "nodeSelector": {"gpu": "h100"},
    "tolerations": [{"key": "gpu", "operator": "Exists"}],
    "env": [{"name": "EXTRA", "value": "1"}],
}


def test_final_job_retrains_the_best_trial_like_a_trial_with_the_volume_at_best():
    s = search(trainer=PLACED, finalTraining={"epochs": 12})
    run = trial_run_spec(s, ["ReadWriteOnce"])
    final = build_final_job(s, trial(index=7), run, SETTINGS)
    trial_job = build_trial_job(trial(index=7), run, SETTINGS)
    meta, spec = final["metadata"], final["spec"]
    pod, trial_pod = spec["template"]["spec"], trial_job["spec"]["template"]["spec"]
    assert meta["name"] == "cora-final"
    assert meta["labels"] == {
        "archsearch.io/search": "cora",
        "archsearch.io/component": "final-training",
        "app.kubernetes.io/managed-by": "nas-operator",
    }
    assert spec["template"]["metadata"]["labels"] == meta["labels"]  # no trial label
    assert [(o["kind"], o["name"], o["uid"]) for o in meta["ownerReferences"]] == [
        ("ArchitectureSearch", "cora", "uid-1")
    ]
    # the trial's pod placement, resources, security and failure rules ...
    for key in ("nodeSelector", "tolerations", "restartPolicy", "automountServiceAccountToken"):
        assert pod[key] == trial_pod[key]
    container, trial_container = pod["containers"][0], trial_pod["containers"][0]
    for key in ("image", "command", "resources", "securityContext", "terminationMessagePolicy"):
        assert container[key] == trial_container[key]
    for key in ("podFailurePolicy", "backoffLimit", "ttlSecondsAfterFinished", "suspend"):
        assert spec[key] == trial_job["spec"][key]
    # ... with the volume mounted, the output at /data/best and the final epochs
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NAS_OUTPUT_DIR"] == "/data/best"
    assert json.loads(env["NAS_ARCHITECTURE"])["hash"] == "abc"
    assert json.loads(env["NAS_TRAINER_CONFIG"]) == {"epochs": 12}
    assert env["EXTRA"] == "1"
    assert {"name": "search-data", "mountPath": "/data"} in container["volumeMounts"]
    assert {"name": "search-data", "persistentVolumeClaim": {"claimName": "cora-data"}} in pod[
        "volumes"
    ]
    assert pod["securityContext"]["fsGroup"] == 65532  # the controller's files are writable
    assert spec["activeDeadlineSeconds"] == 600 * 3  # 12 epochs where trials had 5


def test_final_job_keeps_the_trainers_epochs_and_follows_suspend():
    s = search(suspend=True)
    run = trial_run_spec(s, ["ReadWriteOnce"])
    final = build_final_job(s, trial(), run, SETTINGS)
    container = final["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["NAS_TRAINER_CONFIG"]) == {"dataset": "digits", "epochs": 5}
    assert final["spec"]["suspend"] is True and final["spec"]["activeDeadlineSeconds"] == 600


# --- admission ------------------------------------------------------------------------


def test_trial_policy_checks_label_name_and_owner_of_a_controllers_trials():
    policy = build_trial_admission_policy()
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules[0]["resources"] == ["trials"] and rules[0]["operations"] == ["CREATE"]
    expressions = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for needle in (
        "archsearch.io/search",
        "spec.searchName",
        "ownerReferences",
        "params.metadata.uid",
    ):
        assert needle in expressions
    assert policy["spec"]["paramKind"] == {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "ArchitectureSearch",
    }
    controller = next(v for v in policy["spec"]["variables"] if v["name"] == "isController")[
        "expression"
    ]
    assert (
        "'system:serviceaccount:' + params.metadata.namespace" in controller
        and "'-controller'" in controller
    )


def test_status_policy_protects_every_operator_field():
    expression = build_status_admission_policy()["spec"]["validations"][0]["expression"]
    for field in ("phase", "conditions", "trials", "best", "final", "observedGeneration"):
        assert f"object.status.{field} == oldObject.status.{field}" in expression
    assert not re.search(r"status\.controller\b", expression)  # the controller's own part


def test_worker_policy_lets_a_warm_worker_change_only_its_result_annotation():
    policy = build_worker_admission_policy()
    rule = policy["spec"]["matchConstraints"]["resourceRules"][0]
    # pods only (not pods/status: the node agent's), UPDATE only (not the operator's deletes)
    assert (rule["apiGroups"], rule["resources"], rule["operations"]) == (
        [""],
        ["pods"],
        ["UPDATE"],
    )
    worker = next(v for v in policy["spec"]["variables"] if v["name"] == "isWorker")
    assert "'system:serviceaccount:' + params.metadata.namespace" in worker["expression"]
    assert "'-worker'" in worker["expression"]
    (validation,) = policy["spec"]["validations"]
    expression = validation["expression"]
    assert expression.startswith("!variables.isWorker || (")
    for needle in (
        "object.metadata.labels == oldObject.metadata.labels",
        "object.metadata.ownerReferences == oldObject.metadata.ownerReferences",
        "object.metadata.finalizers == oldObject.metadata.finalizers",
        "object.spec == oldObject.spec",
        "k == 'archsearch.io/result'",  # the one annotation it may write, both directions
        "oldObject.metadata.annotations.all(",
        # only its own pod: the one its pod-bound token names; no such token, no write
        "has(request.userInfo.extra) && 'authentication.kubernetes.io/pod-name' in "
        "request.userInfo.extra",
        "request.userInfo.extra['authentication.kubernetes.io/pod-name'] == "
        "[object.metadata.name]",
    ):
        assert needle in expression, needle
    assert "resourceVersion" not in expression and "managedFields" not in expression
    assert (
        "a warm worker may only write the archsearch.io/result annotation of its own pod, with a"
        " token bound to that pod" in validation["messageExpression"]
    )


def test_bindings_select_every_search_of_the_namespace_and_allow_without_any():
    binding = build_policy_binding("p")
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
    assert binding["spec"]["validationActions"] == ["Deny"]
    kinds = [o["kind"] for o in build_admission_policies()]
    assert kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 4


def test_final_job_of_a_shared_weights_search_trains_the_best_alone():
    """The trials' rewards were estimates on the supernet: the final training is the
    stand-alone accuracy a user reads, so sharedWeights is not passed on."""
    shared = {"dataset": "digits", "epochs": 5, "sharedWeights": {"stepsPerChild": 30}}
    s = search(trainer=shared, finalTraining={"epochs": 8})
    run = trial_run_spec(s, ["ReadWriteMany"])
    trial_env = {e["name"]: e.get("value") for e in build_trial_job(
        trial(), run, SETTINGS)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(trial_env["NAS_TRAINER_CONFIG"])["sharedWeights"] == {"stepsPerChild": 30}
    final = build_final_job(s, trial(), run, SETTINGS)
    env = {e["name"]: e.get("value")
           for e in final["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["NAS_TRAINER_CONFIG"]) == {"dataset": "digits", "epochs": 8}
