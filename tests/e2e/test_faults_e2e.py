"""Faults in the middle of a NAS-Bench-Graph search on the real test control plane, with
the real operator, controller pod and trainer pods (trials are table look-ups, so a
search takes tens of seconds):

- the API server and etcd killed and started again (with the scheduler and controller
  manager, as when a control-plane node reboots);
- a node lost: its agent killed (its pods die with it) and the Node deleted, as a cloud
  node controller does; the pod garbage collector then removes its pods;
- the operator SIGKILLed and started again 5 times;
- trial pods deleted while they run;
- the controller killed at 10 moments.

Every moment is drawn from a seeded RNG; the seed is printed (NAS_FAULT_SEED=<seed>
replays a run's choices). After each fault the same invariants hold, read as a user
would (``kubectl get trials``, the search's status, the files on its volume):
succeeded + failed trials = spec.trials.max, no trial index and no architecture hash
twice, the controller's checkpoint (generation, next index, policy version, fencing
epoch) never went back while it was sampled during the run, and status.best is the best
over the Trials and over the results on the volume.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from test_operator_fixtures import kube, kubectl
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    CORA, apply, controller_pids, crds, search, search_object, search_operator, sigkill,
    trials_of, volume_of, wait_final,
)
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

SEED = int(os.environ.get("NAS_FAULT_SEED") or time.time_ns() % 1_000_000)
REINFORCE = {"name": "reinforce", "seed": 3, "rewardNormalization": "std"}
LOST_NODE = "node-c"
FINAL_TIMEOUT = 600


@pytest.fixture
def rng(request) -> random.Random:
    """This test's random moments: the session's seed and the test's name."""
    say(request, f"\nfault seed {SEED} (replay: NAS_FAULT_SEED={SEED}) for {request.node.name}")
    return random.Random(f"{SEED}:{request.node.originalname}")


def say(request, line: str) -> None:
    """A line on the terminal as the test goes (what fault, when), captured or not."""
    print(line)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def start_search(cluster, namespace: str, name: str, max_trials: int, parallelism: int,
                 retries: int = 1) -> None:
    apply(cluster, search(name, namespace, CORA, REINFORCE,
                          {"max": max_trials, "parallelism": parallelism, "retries": retries,
                           "timeoutSeconds": 300}))


def trial_count(cluster, namespace: str, name: str) -> int:
    try:
        return len(trials_of(cluster, namespace, name))
    except Exception:  # the API server may be the fault
        return 0


def moments(rng: random.Random, count: int, max_trials: int) -> list[int]:
    """``count`` distinct trial counts at which to strike, spread over the search."""
    return sorted(rng.sample(range(1, max_trials - 2), count))


def wait_trials(cluster, namespace: str, name: str, at_least: int) -> int:
    """Waits until ``at_least`` Trials exist; how many there are then."""
    def enough() -> int:
        count = trial_count(cluster, namespace, name)
        return count if count >= at_least else 0

    return wait_for(enough, f"{at_least} trials of {name}", timeout=300, interval=0.2)


# -- the checkpoint, sampled while the search runs ---------------------------------------

CHECKPOINT_COUNTERS = ("generation", "next_index", "policy_version", "epoch")


@dataclass
class CheckpointSampler:
    """Reads checkpoint/strategy.json on the search's volume every few tenths of a second
    in a thread; every counter it holds must only ever grow."""

    cluster: Any
    namespace: str
    name: str
    samples: list[dict[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    folder: Path | None = None

    def __enter__(self) -> "CheckpointSampler":
        self.thread = threading.Thread(target=self._run, daemon=True, name="checkpoint sampler")
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            if self.folder is None:
                try:
                    self.folder = volume_of(self.cluster, self.namespace, self.name)
                except Exception:  # not bound yet, or the API server is down
                    continue
            sample = read_checkpoint_counters(self.folder)
            if sample is not None and (not self.samples or sample != self.samples[-1]):
                self.samples.append(sample)


def read_checkpoint_counters(folder: Path) -> dict[str, int] | None:
    try:
        document = json.loads((folder / "checkpoint" / "strategy.json").read_text())
    except (OSError, ValueError):  # not written yet
        return None
    loop, strategy = document.get("loop") or {}, document.get("strategy") or {}
    return {"generation": int(document["generation"]), "next_index": int(loop["next_index"]),
            "policy_version": int(strategy.get("policy_version", 0)),
            "epoch": int(loop.get("epoch", 0))}


# -- the invariants ----------------------------------------------------------------------

def kubectl_json(cluster, *args: str) -> dict[str, Any]:
    return json.loads(kubectl(cluster, "get", *args, "-o", "json").stdout)


def assert_invariants(cluster, namespace: str, name: str, sampler: CheckpointSampler,
                      trials_may_fail: bool = False) -> str:
    """The invariants every fault must keep; returns a one-line summary of what held.
    ``trials_may_fail``: the fault itself may use up a Trial's retries (pods deleted);
    otherwise no Trial may fail (a fault is not the architecture's fault)."""
    final = wait_final(cluster, namespace, name, timeout=FINAL_TIMEOUT)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["controller"]["decision"] == "MaxTrialsReached", status["controller"]
    maximum = final["spec"]["trials"]["max"]

    trials = kubectl_json(cluster, "trials", "-n", namespace,
                          "-l", f"archsearch.io/search={name}")["items"]
    phases = [(t.get("status") or {}).get("phase") for t in trials]
    succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
    assert succeeded + failed == maximum == len(trials), (
        f"{succeeded} succeeded + {failed} failed of {len(trials)} Trials; spec.trials.max "
        f"{maximum}; phases {phases}")
    assert status["trials"]["succeeded"] == succeeded and status["trials"]["failed"] == failed
    assert trials_may_fail or not failed, [
        (t["metadata"]["name"], t["status"].get("reason"), t["status"].get("message"))
        for t in trials if t["status"]["phase"] == "Failed"]

    indices = sorted(t["spec"]["index"] for t in trials)
    assert indices == list(range(maximum)), f"trial indices: {indices}"
    hashes = [t["spec"]["architecture"]["hash"] for t in trials]
    repeated = {h for h in hashes if hashes.count(h) > 1}
    assert not repeated, f"architectures tried twice: {repeated}"

    folder = volume_of(cluster, namespace, name)
    records = [json.loads(line) for line in (folder / "trials.jsonl").read_text().splitlines()
               if line.strip()]
    recorded = sorted(r["index"] for r in records)
    assert recorded == indices, f"trials.jsonl holds indices {recorded}"
    by_index = {r["index"]: r for r in records}
    for trial in trials:
        record = by_index[trial["spec"]["index"]]
        assert record["hash"] == trial["spec"]["architecture"]["hash"], trial["metadata"]["name"]
        assert record["status"] == trial["status"]["phase"], trial["metadata"]["name"]

    last = read_checkpoint_counters(folder)
    assert last is not None, "no checkpoint on the volume"
    samples = sampler.samples + [last]
    for key in CHECKPOINT_COUNTERS:
        values = [s[key] for s in samples]
        back = [(a, b) for a, b in zip(values, values[1:]) if b < a]
        assert not back, f"checkpoint {key} went back: {back} (samples {values})"
    assert last["next_index"] == maximum

    trial_rewards = [t["status"]["reward"] for t in trials if t["status"]["phase"] == "Succeeded"]
    volume_rewards = [r["reward"] for r in records if r.get("reward") is not None]
    best_file = json.loads((folder / "best.json").read_text())
    best = status["best"]
    assert best["reward"] == pytest.approx(max(trial_rewards)), (best, max(trial_rewards))
    assert best["reward"] == pytest.approx(max(volume_rewards)) == pytest.approx(best_file["reward"])
    assert by_index[best["index"]]["reward"] == pytest.approx(best["reward"])
    return (f"{succeeded} succeeded + {failed} failed = max {maximum}; {len(set(indices))} "
            f"indices, {len(set(hashes))} hashes, all distinct; {len(samples)} checkpoint "
            f"samples, none went back (last {last}); best {best['reward']:.4f} = best of Trials "
            f"= best of trials.jsonl = best.json; attempts "
            f"{sum(t['status'].get('attempts') or 0 for t in trials)}, controller restarts "
            f"{status.get('controllerRestarts', 0)}")


# -- the faults --------------------------------------------------------------------------

@pytest.mark.pod_security("privileged")  # a plain sh pod, no security context
def test_a_pod_that_ends_while_the_api_server_is_down_is_reported_once_it_is_back(
        cluster, namespace):
    """The harness itself: kubelet's status manager retries a pod's terminal status until
    the API server has it, and so must the test node agent (else the pod stays Running
    and its Job never finishes)."""
    apply(cluster, {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "short", "namespace": namespace},
                    "spec": {"restartPolicy": "Never", "containers": [
                        {"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 3"]}]}})
    path = f"/api/v1/namespaces/{namespace}/pods/short"

    def phase() -> str:
        return ((kube(cluster).get_or_none(path) or {}).get("status") or {}).get("phase", "")

    wait_for(lambda: phase() == "Running", "the pod to run", timeout=60, interval=0.1)
    cluster.restart_api_server_and_etcd(down_seconds=6.0)  # it ends while nobody listens
    wait_for(lambda: phase() == "Succeeded", "the pod's final status", timeout=60)


def test_api_server_and_etcd_restarted_mid_search(cluster, search_operator, namespace, rng,
                                                  request):
    name, max_trials = "apidown", 30
    strikes = moments(rng, 2, max_trials)
    downs = [round(rng.uniform(1.0, 8.0), 1) for _ in strikes]
    say(request, f"restarting the API server and etcd once {strikes} trials exist, "
                 f"down {downs} s")
    started = time.monotonic()
    with CheckpointSampler(cluster, namespace, name) as sampler:
        start_search(cluster, namespace, name, max_trials, parallelism=3)
        for target, down in zip(strikes, downs):
            seen = wait_trials(cluster, namespace, name, target)
            time.sleep(rng.uniform(0.0, 1.0))
            unreachable = cluster.restart_api_server_and_etcd(down_seconds=down)
            say(request, f"  restarted at {seen} trials: API unreachable {unreachable:.1f}s")
        summary = assert_invariants(cluster, namespace, name, sampler)
    assert search_operator.process.healthy(), "the operator did not survive the restart"
    agent = cluster.plane.procs["node-agent"]
    assert agent.poll() is None, f"the node agent exited ({agent.returncode})"
    say(request, f"API server + etcd restarts: {summary}; {time.monotonic() - started:.0f}s")


def test_node_lost_mid_search(cluster, search_operator, namespace, rng, request):
    """All of the search's work (controller and trial pods) is on one node when it is
    lost: the others are cordoned until then."""
    name, max_trials = "nodelost", 30
    target = moments(rng, 1, max_trials)[0]
    say(request, f"losing {LOST_NODE} once {target} trials exist")
    others = list(cluster.node_names)
    started = time.monotonic()
    cluster.start_node_agent(LOST_NODE)
    try:
        for node in others:
            kubectl(cluster, "cordon", node)
        with CheckpointSampler(cluster, namespace, name) as sampler:
            start_search(cluster, namespace, name, max_trials, parallelism=3)
            wait_trials(cluster, namespace, name, target)
            wait_for(lambda: running_trial_pods(cluster, namespace), "a running trial pod",
                     timeout=120, interval=0.2)
            time.sleep(rng.uniform(0.0, 1.0))
            on_node = pods_on(cluster, LOST_NODE, phase="Running")
            cluster.kill_node_agent(LOST_NODE)
            kubectl(cluster, "delete", "node", LOST_NODE, "--wait=false")
            for node in others:
                kubectl(cluster, "uncordon", node)
            say(request, f"  lost {LOST_NODE} at {trial_count(cluster, namespace, name)} trials "
                         f"with running pods {on_node}")
            assert any(p.endswith("-controller") for p in on_node), on_node
            summary = assert_invariants(cluster, namespace, name, sampler)
        assert not pods_on(cluster, LOST_NODE), "pods of the lost node are still there"
        restarts = search_object(cluster, namespace, name)["status"].get("controllerRestarts", 0)
        assert restarts >= 1, "the controller of the lost node was not replaced"
    finally:
        for node in others:
            kubectl(cluster, "uncordon", node, check=False)
        kubectl(cluster, "delete", "node", LOST_NODE, "--ignore-not-found", "--wait=false",
                check=False)
    say(request, f"node lost: {summary}; {time.monotonic() - started:.0f}s")


def test_operator_killed_five_times_at_random_moments(cluster, search_operator, namespace, rng,
                                                      request):
    name, max_trials = "opkilled", 30
    strikes = moments(rng, 5, max_trials)
    downs = [round(rng.uniform(0.0, 3.0), 1) for _ in strikes]
    say(request, f"SIGKILLing the operator once {strikes} trials exist, down {downs} s")
    operator = search_operator.process
    started = time.monotonic()
    with CheckpointSampler(cluster, namespace, name) as sampler:
        start_search(cluster, namespace, name, max_trials, parallelism=3)
        for target, down in zip(strikes, downs):
            seen = wait_trials(cluster, namespace, name, target)
            time.sleep(rng.uniform(0.0, 1.0))
            operator.stop(signal.SIGKILL)
            time.sleep(down)
            operator.start()
            say(request, f"  operator killed at {seen} trials")
        summary = assert_invariants(cluster, namespace, name, sampler)
    say(request, f"operator killed 5 times: {summary}; {time.monotonic() - started:.0f}s")


def test_trial_pods_deleted_while_running(cluster, search_operator, namespace, rng, request):
    name, max_trials, deletions = "poddeleted", 30, 6
    strikes = moments(rng, deletions, max_trials)
    say(request, f"deleting a running trial pod once {strikes} trials exist")
    started = time.monotonic()
    deleted: dict[str, str] = {}  # pod -> the phase it ended in
    with CheckpointSampler(cluster, namespace, name) as sampler:
        start_search(cluster, namespace, name, max_trials, parallelism=3, retries=2)
        for target in strikes:
            wait_trials(cluster, namespace, name, target)
            running = wait_for(lambda: running_trial_pods(cluster, namespace),
                               "a running trial pod", timeout=120, interval=0.1)
            pod = rng.choice(sorted(running))
            if kubectl(cluster, "delete", "pod", pod, "-n", namespace, "--wait=false",
                       check=False).returncode == 0:
                deleted[pod] = last_phase(cluster, namespace, pod)
        say(request, f"  deleted (pod: the phase it ended in) {deleted}")
        summary = assert_invariants(cluster, namespace, name, sampler, trials_may_fail=True)
    trials = {t["metadata"]["name"]: t for t in trials_of(cluster, namespace, name)}
    struck = {pod.rsplit("-", 1)[0] for pod in deleted}
    for pod, phase in deleted.items():
        got = trials[pod.rsplit("-", 1)[0]]["status"]
        if phase == "Failed":  # killed before it finished: ran again (or used up its retries)
            assert got["phase"] == "Failed" or got["attempts"] >= 2, (pod, got)
        elif got["phase"] == "Failed":  # deleted as it finished: its result went with it
            assert got["reason"] == "ResultLost", (pod, got)
    for trial_name, trial in trials.items():  # no other trial failed, and each says why
        if trial["status"]["phase"] == "Failed":
            assert trial_name in struck, (trial_name, trial["status"])
            assert trial["status"]["reason"] in ("ResultLost", "RetriesExhausted"), (
                trial_name, trial["status"])
    assert "Failed" in deleted.values(), f"no deletion interrupted a trial: {deleted}"
    say(request, f"{len(deleted)} trial pods deleted: {summary}; "
                 f"{time.monotonic() - started:.0f}s")


def test_controller_killed_at_ten_random_moments(cluster, search_operator, namespace, rng,
                                                 request):
    name, max_trials, kills = "ctlkilled", 80, 10
    # strikes in the first half: each replacement waits out its predecessor's lease while
    # the trials in flight finish, and a controller may create several trials before its
    # kill lands; the second half leaves every kill a controller that still has work
    strikes = moments(rng, kills, max_trials // 2)
    delays = [round(rng.uniform(0.0, 1.5), 2) for _ in strikes]
    say(request, f"SIGKILLing the controller once {strikes} trials exist, {delays} s later")
    started = time.monotonic()
    killed_at = []
    with CheckpointSampler(cluster, namespace, name) as sampler:
        start_search(cluster, namespace, name, max_trials, parallelism=3)
        for kill, (target, delay) in enumerate(zip(strikes, delays)):
            # the kill hits controller number kill+1, somewhere in its loop
            wait_for(lambda: fencing_epoch(cluster, namespace, name) >= kill + 1,
                     f"controller number {kill + 1} to take over", timeout=300, interval=0.1)
            wait_trials(cluster, namespace, name, target)
            time.sleep(delay)
            pids = controller_pids(namespace, name)
            if not pids:
                break  # the search is over: the controller has exited
            for pid in pids:
                sigkill(pid)
            killed_at.append(trial_count(cluster, namespace, name))
        say(request, f"  killed at {killed_at} trials")
        summary = assert_invariants(cluster, namespace, name, sampler)
    assert len(killed_at) == kills, f"only {len(killed_at)} kills before the search ended"
    status = search_object(cluster, namespace, name)["status"]
    # every kill hit another controller, and each was replaced by the next epoch's, except
    # one killed after it had decided (the search was over: nothing to replace)
    epoch = status["controller"]["epoch"]
    assert epoch >= kills and status["controllerRestarts"] == epoch - 1, status
    say(request, f"controller killed {kills} times: {summary}; {time.monotonic() - started:.0f}s")


def fencing_epoch(cluster, namespace: str, name: str) -> int:
    """The epoch of the controller that took the search over last (0 before the first)."""
    try:
        path = volume_of(cluster, namespace, name) / "checkpoint" / "epoch"
        return int(json.loads(path.read_text())["epoch"])
    except (AssertionError, OSError, ValueError, KeyError):
        return 0


# -- pods --------------------------------------------------------------------------------

def running_trial_pods(cluster, namespace: str) -> list[str]:
    pods = kube(cluster).get(f"/api/v1/namespaces/{namespace}/pods"
                             "?labelSelector=archsearch.io/component=trial")["items"]
    return [p["metadata"]["name"] for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def last_phase(cluster, namespace: str, pod: str) -> str:
    """Follows a pod being deleted until it is gone; the last phase it had."""
    seen = {"phase": "Unknown"}

    def gone() -> bool:
        obj = kube(cluster).get_or_none(f"/api/v1/namespaces/{namespace}/pods/{pod}")
        if obj is not None:
            seen["phase"] = (obj.get("status") or {}).get("phase", "Unknown")
        return obj is None

    wait_for(gone, f"pod {pod} to be gone", timeout=120, interval=0.1)
    return seen["phase"]


def pods_on(cluster, node: str, phase: str | None = None) -> list[str]:
    pods = kube(cluster).get(f"/api/v1/pods?fieldSelector=spec.nodeName={node}")["items"]
    return sorted(p["metadata"]["name"] for p in pods
                  if phase is None or (p.get("status") or {}).get("phase") == phase)
