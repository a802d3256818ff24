"""spec.trials.mode WarmPool on the real control plane: the operator keeps
spec.trials.parallelism worker pods (`nas-worker`) that train successive Trials in one
process each; Trials still read like a results table, and a lost worker or a killed
operator neither loses a Trial nor runs one twice."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from urllib.parse import quote

import pytest
from kubernetes.client.exceptions import ApiException
from test_operator_fixtures import events_of, kube, kubectl, operator  # noqa: F401
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    CORA,
    apply,
    assert_volume_agrees_with_trials,
    crds,
    search,
    search_operator,
    trials_of,
    wait_final,
)

from tests.cluster.kube import STRATEGIC_MERGE_PATCH, Kube, pod_path
from tests.cluster.watching import list_watch
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

RANDOM = {"name": "random", "seed": 3}


def warm(trials: dict) -> dict:
    return {**trials, "mode": "WarmPool", "timeoutSeconds": trials.get("timeoutSeconds", 120)}


def digits_search(name: str, namespace: str, trials: dict, epochs: int = 1,
                  batch: int = 32) -> dict:
    """A WarmPool search training small digits children, without the final training."""
    manifest = search(name, namespace, {"name": "macro-cnn", "options": {"layers": 1}},
                      RANDOM, warm(trials), {"dataset": "digits", "epochs": epochs,
                                             "batchSize": batch})
    manifest["spec"]["finalTraining"] = {"enabled": False}
    return manifest


def one_real_trial(name: str, namespace: str) -> dict:
    """One worker training one small digits child, no retry."""
    return digits_search(name, namespace, {"max": 1, "parallelism": 1, "retries": 0,
                                           "timeoutSeconds": 300})


class WorkerPods:
    """Every worker pod of a search ever created (uids), seen by a watch from the start."""

    def __init__(self, cluster, namespace: str, name: str) -> None:
        self.uids: set[str] = set()
        self.stop = threading.Event()
        selector = f"archsearch.io/search={name},archsearch.io/component=worker"

        def seen(pods) -> None:
            self.uids.update(p["metadata"]["uid"] for p in pods)

        self.thread = threading.Thread(
            target=list_watch,
            args=(kube(cluster), f"/api/v1/namespaces/{namespace}/pods",
                  lambda _type, pod: seen([pod]), seen, self.stop),
            kwargs={"labelSelector": selector}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()


def pods_left(cluster, namespace: str, name: str) -> list[dict]:
    return kube(cluster).get(f"/api/v1/namespaces/{namespace}/pods?labelSelector="
                             f"archsearch.io/search={name},archsearch.io/component=worker")["items"]


def test_nas_bench_graph_warm_pool_runs_every_trial_on_parallelism_workers(
        cluster, search_operator, namespace):
    watch = WorkerPods(cluster, namespace, "warm")
    started = time.monotonic()
    apply(cluster, search("warm", namespace, CORA, RANDOM, warm({"max": 20, "parallelism": 3})))
    final = wait_final(cluster, namespace, "warm", timeout=300)
    seconds = time.monotonic() - started
    watch.close()
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    _, trials = assert_volume_agrees_with_trials(cluster, namespace, "warm", 20)
    assert all(t["status"]["phase"] == "Succeeded" for t in trials)
    assert not any(t["status"].get("jobName") for t in trials)
    jobs = kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert [j["metadata"]["name"] for j in jobs] == [], "a WarmPool search made Jobs"
    per_worker = Counter(t["status"]["podName"] for t in trials)
    assert set(per_worker) == {"warm-worker-0", "warm-worker-1", "warm-worker-2"}, per_worker
    assert all(n >= 2 for n in per_worker.values()), per_worker
    assert len(watch.uids) == 3, f"{len(watch.uids)} worker pods were created for 3 workers"
    wait_for(lambda: not pods_left(cluster, namespace, "warm"),
             "the workers to be deleted once the search ended", timeout=60)
    print(f"\n20 nas-bench-graph trials on 3 warm workers: {seconds:.1f}s; per worker "
          f"{dict(per_worker)}")


def test_packing_trains_three_trials_at_once_on_one_worker(cluster, search_operator, namespace):
    """spec.trials.packing.maxPerWorker 3, one worker, 6 real digits trials: the worker is
    given packs of 3 and trains each pack's children together; every Trial still reads as
    its own run with its own reward."""
    manifest = digits_search("packed", namespace, {"max": 6, "parallelism": 1, "retries": 0,
                                                   "timeoutSeconds": 300}, batch=64)
    manifest["spec"]["trials"]["packing"] = {"maxPerWorker": 3}
    apply(cluster, manifest)
    final = wait_final(cluster, namespace, "packed", timeout=400)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    _, trials = assert_volume_agrees_with_trials(cluster, namespace, "packed", 6)
    assert all(t["status"]["phase"] == "Succeeded" for t in trials)
    assert all(0.0 < t["status"]["reward"] <= 1.0 for t in trials)
    assert {t["status"]["podName"] for t in trials} == {"packed-worker-0"}
    best = max(trials, key=lambda t: t["status"]["reward"])
    assert final["status"]["best"]["reward"] == pytest.approx(best["status"]["reward"])
    assigned = {t["metadata"]["name"]: [e for e in events_of(cluster, namespace,
                                                              t["metadata"]["name"])
                                        if e.startswith("Assigned: ")] for t in trials}
    assert all(events == ["Assigned: running in a pack of 3 on worker pod packed-worker-0"]
               for events in assigned.values()), assigned
    text = cluster.pod_log(namespace, "packed-worker-0")
    together = re.findall(r"nas-worker: pid (\d+): trial \S+ attempt 1: reward \S+ "
                          r"\(trained in a pack of 3\)", text)
    assert len(together) == 6 and len(set(together)) == 1, text[-3000:]
    assert text.count("packed 3 children on cpu") == 2, text[-3000:]


def test_real_training_imports_torch_once_per_worker(cluster, search_operator, namespace):
    apply(cluster, digits_search("digits", namespace,
                                 {"max": 4, "parallelism": 2, "timeoutSeconds": 300}, batch=64))
    wait_final(cluster, namespace, "digits", timeout=300)
    final = wait_final(cluster, namespace, "digits", timeout=10)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    _, trials = assert_volume_agrees_with_trials(cluster, namespace, "digits", 4)
    assert all(0.0 < t["status"]["metrics"]["val_accuracy"] <= 1.0 for t in trials)
    assert all(t["status"]["parameters"] > 0 for t in trials)
    ran = Counter(t["status"]["podName"] for t in trials)
    for pod, count in ran.items():
        text = cluster.pod_log(namespace, pod)  # kept after the pod is deleted
        pids = set(re.findall(r"nas-worker: pid (\d+): trial ", text))
        assert len(re.findall(r"nas-worker: pid \d+: trial ", text)) == count, text[-2000:]
        assert len(pids) == 1, f"{pod} trained in several processes: {pids}"
        assert text.count("imported torch") == 1, f"{pod}: torch imported " \
            f"{text.count('imported torch')} times for {count} trials"
    assert max(ran.values()) >= 2, ran


def test_a_worker_deleted_mid_trial_gives_its_trial_to_a_new_worker_without_a_retry(
        cluster, search_operator, namespace):
    apply(cluster, one_real_trial("lost", namespace))

    def running():
        for trial in trials_of(cluster, namespace, "lost"):
            if (trial.get("status") or {}).get("phase") == "Running":
                return trial
        return None

    victim = wait_for(running, "a trial to run on the worker", timeout=120, interval=0.2)
    pod = victim["status"]["podName"]
    kube(cluster).request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod}")
    final = wait_final(cluster, namespace, "lost", timeout=300)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    trial = next(t for t in trials_of(cluster, namespace, "lost")
                 if t["metadata"]["name"] == victim["metadata"]["name"])
    status = trial["status"]
    # retries: 0, yet it succeeded: the lost run did not use a retry
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 2 and not status.get("failedAttempts"), status


def test_operator_sigkilled_mid_search_assigns_no_trial_twice(cluster, search_operator, namespace):
    total = 20
    apply(cluster, search("steady", namespace, CORA, RANDOM,
                          warm({"max": total, "parallelism": 3})))
    wait_for(lambda: sum((t.get("status") or {}).get("phase") == "Succeeded"
                         for t in trials_of(cluster, namespace, "steady")) >= 4,
             "4 trials to succeed", timeout=120, interval=0.2)
    operator = search_operator.process
    operator.stop(signal.SIGKILL)
    time.sleep(3)
    operator.start()
    final = wait_final(cluster, namespace, "steady", timeout=300)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    # every trial once: attempts == 1 each, and trials.jsonl agrees
    _, trials = assert_volume_agrees_with_trials(cluster, namespace, "steady", total)
    assert all(t["status"]["phase"] == "Succeeded" for t in trials)


def test_admission_refuses_a_warm_pool_with_a_custom_trainer_and_a_mode_change(
        cluster, crds, namespace):
    custom = search("mine", namespace, CORA, RANDOM, warm({"max": 2}),
                    {"command": ["my-trainer"]})
    refused = apply(cluster, custom, check=False)
    assert refused.returncode != 0
    assert "WarmPool runs the built-in trainer (`nas-worker`)" in refused.stderr, refused.stderr
    assert "use spec.trials.mode Job to run your own trainer" in refused.stderr
    apply(cluster, search("fixed", namespace, CORA, RANDOM, {"max": 2}))
    changed = apply(cluster, search("fixed", namespace, CORA, RANDOM, warm({"max": 2})),
                    check=False)
    assert changed.returncode != 0 and "spec.trials.mode is immutable" in changed.stderr, \
        changed.stderr


class _Impersonating(Kube):
    """The admin's connection, impersonating (Impersonate-* headers) another user."""

    def __init__(self, cluster, headers: dict[str, str]) -> None:
        super().__init__(cluster.api_client())
        self.impersonate = headers

    def _headers(self, content_type: str) -> dict[str, str]:
        return {**super()._headers(content_type), **self.impersonate}


# a pod-bound service-account token's user extra; the key percent-encoded in the header name
POD_NAME_HEADER = "Impersonate-Extra-" + quote("authentication.kubernetes.io/pod-name", safe="")


def test_a_worker_service_account_may_patch_only_the_result_annotation_of_its_own_pod(
        cluster, operator, namespace):
    # the operator's idle controller makes no Trials: the worker waits, unassigned
    apply(cluster, search("guard", namespace, CORA, RANDOM, warm({"max": 1, "parallelism": 1})))
    pod = wait_for(lambda: kube(cluster).get_or_none(
        f"/api/v1/namespaces/{namespace}/pods/guard-worker-0"), "the worker pod", timeout=60)
    container = pod["spec"]["containers"][0]["name"]

    def patch(body: dict, bound_to: str | None = "guard-worker-0") -> str | None:
        """As the worker ServiceAccount with a token bound to pod `bound_to` (None: to no
        pod), patches guard-worker-0; the refusal's message, None if it passed."""
        headers = {"Impersonate-User": f"system:serviceaccount:{namespace}:guard-worker"}
        if bound_to:
            headers[POD_NAME_HEADER] = bound_to
        try:
            _Impersonating(cluster, headers).request(
                "PATCH", pod_path(namespace, "guard-worker-0"), body,
                content_type=STRATEGIC_MERGE_PATCH)
        except ApiException as exc:
            assert exc.status == 403, (exc.status, exc.body)
            return exc.body
        return None

    result = {"metadata": {"annotations": {"archsearch.io/result": "{}"}}}
    assert patch(result) is None
    own_pod = "a warm worker may only write the archsearch.io/result annotation of its own pod"
    # the same patch with a token bound to another worker pod of the search, or to no pod
    for bound_to in ("guard-worker-1", None):
        refused = patch(result, bound_to)
        assert refused is not None and own_pod in refused, (bound_to, refused)
    for body in ({"metadata": {"labels": {"archsearch.io/search": "other"}}},
                 {"metadata": {"annotations": {"archsearch.io/assignment": '{"trial": "x"}'}}},
                 {"spec": {"containers": [{"name": container, "image": "evil:1"}]}}):
        refused = patch(body)
        assert refused is not None and own_pod in refused, (body, refused)


def test_suspend_deletes_the_workers_and_requeues_their_trial_without_a_retry(
        cluster, search_operator, namespace):
    apply(cluster, one_real_trial("nap", namespace))
    wait_for(lambda: any((t.get("status") or {}).get("phase") == "Running"
                         for t in trials_of(cluster, namespace, "nap")),
             "the trial to run on the worker", timeout=120, interval=0.2)
    kubectl(cluster, "patch", "archsearch", "nap", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"suspend": true}}')

    def paused():
        trial = trials_of(cluster, namespace, "nap")[0]
        status = trial.get("status") or {}
        idle = not pods_left(cluster, namespace, "nap")
        return status if idle and status.get("reason") == "Suspended" else None

    status = wait_for(paused, "the worker deleted and its trial requeued", timeout=60,
                      interval=0.3)
    assert status["phase"] == "Pending" and not status.get("failedAttempts"), status
    time.sleep(2)
    assert not pods_left(cluster, namespace, "nap"), "a worker was made while suspended"
    kubectl(cluster, "patch", "archsearch", "nap", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"suspend": false}}')
    final = wait_final(cluster, namespace, "nap", timeout=300)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    trial = trials_of(cluster, namespace, "nap")[0]["status"]
    assert trial["phase"] == "Succeeded" and trial["attempts"] == 2, trial
    assert not trial.get("failedAttempts"), trial


def test_a_trial_past_its_timeout_fails_and_its_stuck_worker_is_deleted(
        cluster, search_operator, namespace):
    apply(cluster, digits_search("slow", namespace,
                                 {"max": 1, "parallelism": 1, "timeoutSeconds": 2}, epochs=200))
    wait_final(cluster, namespace, "slow", timeout=120)
    status = trials_of(cluster, namespace, "slow")[0]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status
    assert "deleted worker pod slow-worker-0" in status["message"], status
    # enforced when it falls due (no event announces it), not at the next minute's resync
    started, ended = (datetime.fromisoformat(status[k].replace("Z", "+00:00"))
                      for k in ("startTime", "completionTime"))
    assert (ended - started).total_seconds() < 30, status
