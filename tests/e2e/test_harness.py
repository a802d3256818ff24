"""The test control plane and node agent behave as a Kubernetes cluster does, as far as
the project's end-to-end tests rely on it."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.cluster.kube import Kube
from tests.cluster.paths import venv_bin
from tests.cluster.pod_runtime import POD_MARKER
from tests.cluster.processes import marked_processes
from tests.cluster.waiting import wait_for
from tests.cluster.watching import list_watch

# the harness runs plain pods (busybox-style commands, no security context): the
# product's e2e tests run in namespaces that enforce restricted (tests/conftest.py)
pytestmark = [pytest.mark.cluster, pytest.mark.pod_security("privileged")]

Obj = dict[str, Any]


# -- helpers -----------------------------------------------------------------------------

def pod(name: str, command: str, **spec: Any) -> Obj:
    """A pod running `command` with sh (the image is never pulled)."""
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", command]}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [container], **spec}}


@pytest.fixture
def core(cluster) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(cluster.api_client())


def wait_phase(core, namespace: str, name: str, phases: set[str], timeout: float = 30):
    return wait_for(lambda: (p := core.read_namespaced_pod(name, namespace)).status.phase
                    in phases and p, f"pod {namespace}/{name} to reach {phases}", timeout)


def terminated(pod_obj) -> Any:
    return pod_obj.status.container_statuses[0].state.terminated


def pod_processes(pod_obj) -> list[int]:
    """Host pids of every process the node agent started for the pod, and of whatever
    they started (found by the marker in their environment)."""
    return [pid for pid in marked_processes(f"{POD_MARKER}={pod_obj.metadata.uid}")
            if not _zombie(pid)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# Ignores SIGTERM, and leaves a process of its own outside its process group.
STUBBORN = ["sh", "-c", "setsid sleep 300 & exec python -c 'import signal, time; "
                        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'"]


# -- API server --------------------------------------------------------------------------

def test_crd_is_served_and_its_schema_enforced(cluster):
    ext = kubernetes.client.ApiextensionsV1Api(cluster.api_client())
    custom = kubernetes.client.CustomObjectsApi(cluster.api_client())
    name = "widgets.harness.test"
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": "harness.test", "scope": "Cluster",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object", "required": ["size"],
                         "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]}})
    try:
        wait_for(lambda: any(c.type == "Established" and c.status == "True"
                             for c in ext.read_custom_resource_definition(name).status.conditions or []),
                 "the CRD to be established")
        body = {"apiVersion": "harness.test/v1", "kind": "Widget",
                "metadata": {"name": "ok"}, "spec": {"size": 3}}
        wait_for(lambda: custom.create_cluster_custom_object("harness.test", "v1", "widgets", body),
                 "a valid widget to be accepted")
        with pytest.raises(ApiException) as refused:
            custom.create_cluster_custom_object("harness.test", "v1", "widgets", {
                **body, "metadata": {"name": "bad"}, "spec": {"size": 0}})
        assert refused.value.status == 422
        assert "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1" \
            in json.loads(refused.value.body)["message"]
    finally:
        ext.delete_custom_resource_definition(name)


def test_admission_enforces_pod_security_and_validating_admission_policies(cluster, core, namespace):
    core.patch_namespace(namespace, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod("privileged", "true", container={
            "securityContext": {"privileged": True}}))
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]

    admission = kubernetes.client.AdmissionregistrationV1Api(cluster.api_client())
    name = f"no-forbidden-{namespace}"
    admission.create_validating_admission_policy({
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{
                     "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                     "resources": ["configmaps"]}]},
                 "validations": [{"expression": "!has(object.data) || !('forbidden' in object.data)",
                                  "message": "key 'forbidden' is not allowed"}]}})
    admission.create_validating_admission_policy_binding({
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {
                     "kubernetes.io/metadata.name": namespace}}}}})
    try:
        def denied():
            try:
                core.create_namespaced_config_map(namespace, {
                    "metadata": {"generateName": "probe-"}, "data": {"forbidden": "1"}})
            except ApiException as exc:
                return exc.status == 422 and json.loads(exc.body)["message"]
        assert "key 'forbidden' is not allowed" in wait_for(denied, "the policy to take effect")
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_watch_lists_again_when_its_resource_version_is_too_old(cluster, namespace):
    """The node agent's watches survive "410 Gone" by listing again. Events are watched
    here because the API server serves their watches from etcd, not from its watch
    cache, so compacting etcd's history expires old resource versions at once."""
    kube = Kube(cluster.api_client())
    path = f"/api/v1/namespaces/{namespace}/events"

    def event(name: str) -> Obj:
        return {"metadata": {"name": name}, "reason": "Test", "message": name,
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace}}

    stale = kube.request("POST", path, event("before"))["metadata"]["resourceVersion"]
    kube.request("POST", path, event("after-stale"))
    kube.request("POST", path, event("latest"))
    cluster.compact_etcd()  # keeps "latest" onwards: watching from `stale` is too old
    lists, events, stop = [], [], threading.Event()
    thread = threading.Thread(target=list_watch, daemon=True, args=(
        kube, path, lambda type_, obj: events.append((type_, obj["metadata"]["name"])),
        lambda items: lists.append({i["metadata"]["name"] for i in items}), stop),
        kwargs={"resource_version": stale})
    thread.start()
    try:
        assert wait_for(lambda: lists, "the watch to list again") == [{"before", "after-stale", "latest"}]
        kube.request("POST", path, event("after-relist"))
        wait_for(lambda: ("ADDED", "after-relist") in events, "the new event's watch event")
        assert ("ADDED", "after-stale") not in events  # known from the list, not replayed
    finally:
        stop.set()


# -- pods on the test nodes --------------------------------------------------------------

def test_pod_sees_its_env_downward_api_and_config_volumes(core, namespace, pod_log):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"},
                                                  "data": {"greeting": "hello"}})
    spec = pod("env", 'echo "$GREETING $WHO $NODE $POD_NS"; cat /etc/settings/greeting; '
                      'echo; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; '
                      'echo "$KUBERNETES_SERVICE_HOST"; echo "$PATH"; echo "$OMP_NUM_THREADS"',
               container={
                   "resources": {"limits": {"cpu": "1500m"}},
                   "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {
                               "name": "settings", "key": "greeting"}}},
                           {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                           {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                           {"name": "WHO", "value": "pod-in-$(POD_NS)"}],
                   "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}]},
               volumes=[{"name": "settings", "configMap": {"name": "settings"}}])
    core.create_namespaced_pod(namespace, spec)
    done = wait_phase(core, namespace, "env", {"Succeeded", "Failed"})
    lines = pod_log(namespace, "env").splitlines()
    assert done.status.phase == "Succeeded", lines
    assert lines[0] == f"hello pod-in-{namespace} {done.spec.node_name} {namespace}"
    assert lines[1:3] == ["hello", namespace]
    assert lines[3] == "127.0.0.1"
    assert lines[4].split(":")[0] == str(venv_bin()), "the project's virtualenv comes first"
    assert lines[5] == "2", "threads as a 1500m CPU quota would allow"
    assert not Path("/etc/settings").exists(), "mounts stay in the pod's mount namespace"


def test_termination_message_is_reported_in_the_pod_status(core, namespace):
    core.create_namespaced_pod(namespace, pod("result", "echo '{\"reward\": 0.5}' > /dev/termination-log"))
    core.create_namespaced_pod(namespace, pod(
        "custom-path", "echo done > /tmp/custom-termination; exit 0",
        container={"terminationMessagePath": "/tmp/custom-termination"}))
    core.create_namespaced_pod(namespace, pod(
        "from-logs", "echo 'disk full' >&2; exit 2",
        container={"terminationMessagePolicy": "FallbackToLogsOnError"}))
    result = terminated(wait_phase(core, namespace, "result", {"Succeeded"}))
    assert (result.exit_code, result.reason, result.message) == (0, "Completed", '{"reward": 0.5}\n')
    assert terminated(wait_phase(core, namespace, "custom-path", {"Succeeded"})).message == "done\n"
    failed = terminated(wait_phase(core, namespace, "from-logs", {"Failed"}))
    assert (failed.exit_code, failed.reason, failed.message) == (2, "Error", "disk full")
    assert not Path("/tmp/custom-termination").exists()


def test_on_failure_pod_is_restarted_until_it_succeeds(core, namespace):
    # The emptyDir outlives the container, so the second run finds the marker.
    core.create_namespaced_pod(namespace, pod(
        "flaky", "if [ -e /data/ran-once ]; then echo second; else touch /data/ran-once; exit 1; fi",
        restartPolicy="OnFailure",
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/data"}]},
        volumes=[{"name": "scratch", "emptyDir": {}}]))
    done = wait_phase(core, namespace, "flaky", {"Succeeded", "Failed"})
    status = done.status.container_statuses[0]
    assert done.status.phase == "Succeeded"
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert not Path("/data/ran-once").exists()


def test_init_containers_run_first_and_in_order(core, namespace, pod_log):
    def step(name: str, command: str) -> Obj:
        return {"name": name, "image": "busybox", "command": ["sh", "-c", command],
                "volumeMounts": [{"name": "work", "mountPath": "/work-dir"}]}

    spec = pod("staged", "cat /work-dir/steps",
               container={"volumeMounts": [{"name": "work", "mountPath": "/work-dir"}]},
               volumes=[{"name": "work", "emptyDir": {}}])
    spec["spec"]["initContainers"] = [step("first", "echo first >> /work-dir/steps"),
                                      step("second", "echo second >> /work-dir/steps")]
    core.create_namespaced_pod(namespace, spec)
    done = wait_phase(core, namespace, "staged", {"Succeeded", "Failed"})
    assert done.status.phase == "Succeeded"
    assert pod_log(namespace, "staged", "main") == "first\nsecond\n"
    assert [s.state.terminated.reason for s in done.status.init_container_statuses] == \
        ["Completed", "Completed"]


def test_pod_runs_as_its_security_context_user(core, namespace, pod_log):
    core.create_namespaced_pod(namespace, pod(
        "non-root", "id -u; python -c 'import os; print(os.getuid())'; touch /scratch/ok",
        securityContext={"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        volumes=[{"name": "scratch", "emptyDir": {}}]))
    core.create_namespaced_pod(namespace, pod("root-image", "true",
                                              securityContext={"runAsNonRoot": True}))
    done = wait_phase(core, namespace, "non-root", {"Succeeded", "Failed"})
    assert (done.status.phase, pod_log(namespace, "non-root")) == ("Succeeded", "10001\n10001\n")

    def refused():
        state = core.read_namespaced_pod("root-image", namespace).status.container_statuses[0].state
        return state.waiting and state.waiting.reason == "CreateContainerConfigError" and state.waiting
    assert "runAsNonRoot" in wait_for(refused, "the root image to be refused").message


def test_active_deadline_fails_the_pod(core, namespace):
    core.create_namespaced_pod(namespace, pod("slow", "sleep 60", activeDeadlineSeconds=1))
    failed = wait_phase(core, namespace, "slow", {"Failed", "Succeeded"})
    assert (failed.status.phase, failed.status.reason) == ("Failed", "DeadlineExceeded")


def test_deleted_pod_has_its_processes_ended(core, namespace):
    core.create_namespaced_pod(namespace, pod("stubborn", "", container={"command": STUBBORN}))
    running = wait_phase(core, namespace, "stubborn", {"Running"})
    # launcher, container init, python, and the setsid'd sleep
    wait_for(lambda: len(pod_processes(running)) == 4, "the pod's four processes")
    core.delete_namespaced_pod("stubborn", namespace, grace_period_seconds=1)
    wait_for(lambda: not pod_processes(running), "the pod's processes to end", timeout=15)

    def deleted():
        try:
            core.read_namespaced_pod("stubborn", namespace)
        except ApiException as exc:
            return exc.status == 404
    wait_for(deleted, "the pod object to be deleted", timeout=15)


def test_evicted_pod_keeps_disruption_target_in_its_final_status(cluster, core, namespace):
    """The Eviction API adds the DisruptionTarget condition, then deletes the pod. Like
    kubelet, the agent keeps conditions it does not own whenever it writes the status, and
    reports the terminal phase with the containers' terminated states before it completes
    the deletion: that last status is what a Job's podFailurePolicy judges."""
    core.create_namespaced_pod(namespace, pod("evicted", "exec sleep 300"))
    running = wait_phase(core, namespace, "evicted", {"Running"})
    wait_for(lambda: pod_processes(running), "the pod's processes")
    kube = Kube(cluster.api_client())
    events: list[tuple[str, Obj]] = []
    stop = threading.Event()
    threading.Thread(target=list_watch, daemon=True, args=(
        kube, f"/api/v1/namespaces/{namespace}/pods",
        lambda type_, obj: events.append((type_, obj)), lambda items: None, stop),
        kwargs={"resource_version": running.metadata.resource_version,
                "fieldSelector": "metadata.name=evicted"}).start()
    try:
        kube.request("POST", f"/api/v1/namespaces/{namespace}/pods/evicted/eviction", {
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "evicted", "namespace": namespace},
            "deleteOptions": {"gracePeriodSeconds": 10}})
        wait_for(lambda: any(t == "DELETED" for t, _ in events), "the pod's deletion", timeout=30)
    finally:
        stop.set()

    def disruption(obj: Obj) -> Obj | None:
        return next((c for c in obj["status"].get("conditions") or []
                     if c["type"] == "DisruptionTarget"), None)

    before_deletion = [obj for type_, obj in events if type_ == "MODIFIED"]
    first = next(i for i, obj in enumerate(before_deletion) if disruption(obj))
    assert all(disruption(obj) for obj in before_deletion[first:]), \
        "a status written after the eviction dropped DisruptionTarget"
    final = next(obj for obj in reversed(before_deletion) if obj["status"]["phase"] == "Failed")
    assert final["metadata"]["deletionTimestamp"]
    condition = disruption(final)
    assert (condition["status"], condition["reason"]) == ("True", "EvictionByEvictionAPI")
    types = [c["type"] for c in final["status"]["conditions"]]
    assert types.count("DisruptionTarget") == 1 and "PodScheduled" in types, types
    state = final["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] != 0 and state["terminated"]["reason"] == "Error", state
    wait_for(lambda: not pod_processes(running), "the evicted pod's processes to end", timeout=5)


def test_exited_container_takes_its_leftover_processes_along(core, namespace):
    core.create_namespaced_pod(namespace, pod("leaves-a-child", "setsid sleep 300 & exit 0"))
    done = wait_phase(core, namespace, "leaves-a-child", {"Succeeded"})
    wait_for(lambda: not pod_processes(done), "the container's leftover sleep to end", timeout=5)


def test_deleting_the_owner_garbage_collects_its_pods(cluster, core, namespace):
    batch = kubernetes.client.BatchV1Api(cluster.api_client())
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "worker"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "300"]}]}}}})
    pods = wait_for(lambda: core.list_namespaced_pod(namespace, label_selector="job-name=worker").items,
                    "the job's pod")
    running = wait_phase(core, namespace, pods[0].metadata.name, {"Running"})
    assert pod_processes(running)
    batch.delete_namespaced_job("worker", namespace, propagation_policy="Background")
    wait_for(lambda: not core.list_namespaced_pod(namespace).items,
             "the garbage collector to delete the job's pod", timeout=30)
    assert not pod_processes(running)


def test_in_cluster_client_gets_what_rbac_allows_and_no_more(cluster, core, namespace):
    rbac = kubernetes.client.RbacAuthorizationV1Api(cluster.api_client())
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "read-config-maps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "read-config-maps"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    script = (
        "import json, kubernetes\n"
        "kubernetes.config.load_incluster_config()\n"
        "core = kubernetes.client.CoreV1Api()\n"
        "ns = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n"
        "seen = {'configmaps': [c.metadata.name for c in core.list_namespaced_config_map(ns).items]}\n"
        "try:\n"
        "    core.list_namespaced_secret(ns)\n"
        "    seen['secrets'] = 'allowed'\n"
        "except kubernetes.client.ApiException as e:\n"
        "    seen['secrets'] = e.status\n"
        "open('/dev/termination-log', 'w').write(json.dumps(seen))\n")
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reader"},
        "spec": {"restartPolicy": "Never", "serviceAccountName": "reader",
                 "containers": [{"name": "main", "image": "python",
                                 "command": ["python", "-c", script]}]}})
    done = wait_phase(core, namespace, "reader", {"Succeeded", "Failed"}, timeout=60)
    assert done.status.phase == "Succeeded", terminated(done)
    seen = json.loads(terminated(done).message)
    assert "kube-root-ca.crt" in seen["configmaps"]
    assert seen["secrets"] == 403


def test_scheduler_honours_gpu_requests_and_node_selectors(core, namespace):
    gpus = lambda n: {"resources": {"limits": {"nvidia.com/gpu": str(n)}}}  # noqa: E731
    core.create_namespaced_pod(namespace, pod("too-many-gpus", "true", container=gpus(3)))
    core.create_namespaced_pod(namespace, pod("two-gpus", "true", container=gpus(2)))
    core.create_namespaced_pod(namespace, pod("on-b", "true",
                                              nodeSelector={"kubernetes.io/hostname": "node-b"}))
    assert wait_phase(core, namespace, "on-b", {"Succeeded"}).spec.node_name == "node-b"
    assert wait_phase(core, namespace, "two-gpus", {"Succeeded"}).spec.node_name in ("node-a", "node-b")

    def unschedulable():
        p = core.read_namespaced_pod("too-many-gpus", namespace)
        return next((c for c in p.status.conditions or []
                     if c.type == "PodScheduled" and c.reason == "Unschedulable"), None)
    condition = wait_for(unschedulable, "the 3-GPU pod to be found unschedulable")
    assert "Insufficient nvidia.com/gpu" in condition.message
    assert core.read_namespaced_pod("too-many-gpus", namespace).status.phase == "Pending"


def test_read_write_once_claim_is_used_by_one_node_at_a_time(core, namespace, pod_log):
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "results"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    mount = {"volumeMounts": [{"name": "results", "mountPath": "/results"}]}
    volumes = [{"name": "results", "persistentVolumeClaim": {"claimName": "results"}}]

    def on(node: str, name: str, command: str) -> Obj:
        return pod(name, command, container=mount, volumes=volumes,
                   nodeSelector={"kubernetes.io/hostname": node})

    core.create_namespaced_pod(namespace, on("node-a", "writer",
                                             "echo from-a > /results/note; exec sleep 300"))
    wait_phase(core, namespace, "writer", {"Running"})
    core.create_namespaced_pod(namespace, on("node-a", "same-node", "cat /results/note"))
    core.create_namespaced_pod(namespace, on("node-b", "other-node", "cat /results/note"))
    wait_phase(core, namespace, "same-node", {"Succeeded"})
    assert pod_log(namespace, "same-node") == "from-a\n"

    def multi_attach_event():
        return [e for e in core.list_namespaced_event(namespace).items
                if e.involved_object.name == "other-node" and e.reason == "FailedAttachVolume"]
    event = wait_for(multi_attach_event, "a Multi-Attach event for the pod on node-b")[0]
    assert "Multi-Attach error" in event.message
    assert core.read_namespaced_pod("other-node", namespace).status.phase == "Pending"

    core.delete_namespaced_pod("writer", namespace, grace_period_seconds=0)
    wait_phase(core, namespace, "other-node", {"Succeeded"})
    assert pod_log(namespace, "other-node") == "from-a\n"


def test_read_write_many_claim_is_shared_across_nodes(core, namespace, pod_log):
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "shared"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    def on(node: str, name: str, command: str) -> Obj:
        return pod(name, command, nodeSelector={"kubernetes.io/hostname": node},
                   container={"volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
                   volumes=[{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}])

    core.create_namespaced_pod(namespace, on("node-a", "writer", "echo from-a > /shared/note; exec sleep 300"))
    wait_phase(core, namespace, "writer", {"Running"})
    core.create_namespaced_pod(namespace, on("node-b", "reader", "cat /shared/note"))
    wait_phase(core, namespace, "reader", {"Succeeded"})
    assert pod_log(namespace, "reader") == "from-a\n"
    claim = core.read_namespaced_persistent_volume_claim("shared", namespace)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == "standard"


def test_container_without_a_runnable_command_reports_why(core, namespace):
    core.create_namespaced_pod(namespace, pod("typo", "", container={"command": ["no-such-program"]}))
    failed = wait_phase(core, namespace, "typo", {"Failed"})
    state = terminated(failed)
    assert (state.exit_code, state.reason) == (128, "StartError")
    assert 'exec: "no-such-program"' in state.message


def test_volume_over_a_parent_of_the_project_keeps_the_image_contents(core, namespace):
    """The project folder plays the image: an emptyDir at /tmp (what a pod with a
    read-only root filesystem mounts) must not hide the virtualenv of a checkout under
    /tmp. Here the emptyDir covers the project's top-level folder, whatever it is."""
    top = "/" + venv_bin().parts[1]
    core.create_namespaced_pod(namespace, pod(
        "shadowed", f"echo scratch > {top}/scratch && nas-train --help >/dev/null "
                    f"&& cat {top}/scratch > /dev/termination-log",
        volumes=[{"name": "scratch", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "scratch", "mountPath": top}]}))
    done = terminated(wait_phase(core, namespace, "shadowed", {"Succeeded", "Failed"}, 60))
    assert (done.exit_code, done.message) == (0, "scratch\n")
    assert not (Path(top) / "scratch").exists()
