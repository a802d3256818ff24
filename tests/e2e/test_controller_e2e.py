"""The controller pod SIGKILLed at random moments of one search: the operator replaces
it, the new controller takes the lease over, resumes from the volume and adopts the
Trials. Afterwards every trial index exists exactly once, none was lost or run twice,
and the policy version never went back."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest

from test_operator_fixtures import kubectl
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, assert_volume_agrees_with_trials, controller_pids, crds, search,
    search_object, search_operator, sigkill, trials_of, volume_of, wait_final,
)
from tests.cluster.paths import venv_bin
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

MAX_TRIALS = 40
KILLS = 5


def test_controller_killed_five_times_loses_and_repeats_no_trial(cluster, search_operator, namespace):
    seed = int(os.environ.get("NAS_TEST_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    kill_at = sorted(rng.sample(range(2, MAX_TRIALS - 4), KILLS))  # trials created before each kill
    print(f"\nseed {seed}: killing the controller once {kill_at} trials exist")
    started = time.monotonic()
    apply(cluster, search("killed", namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                          {"name": "reinforce", "seed": 2, "preset": "paper"},
                          {"max": MAX_TRIALS, "parallelism": 3, "timeoutSeconds": 120}))
    killed = []
    for kill, target in enumerate(kill_at):
        # each kill hits a controller that took over (epoch kill+1), somewhere in its loop
        wait_for(lambda: _epoch(cluster, namespace) >= kill + 1,
                 f"controller number {kill + 1} to take over", timeout=300, interval=0.2)
        wait_for(lambda: len(trials_of(cluster, namespace, "killed")) >= target,
                 f"{target} trials", timeout=300, interval=0.2)
        time.sleep(rng.uniform(0.0, 1.0))  # land anywhere in the loop, not just after a create
        pids = wait_for(lambda: controller_pids(namespace, "killed"), "a running controller process",
                        timeout=120, interval=0.2)
        for pid in pids:
            sigkill(pid)
        killed.append(len(trials_of(cluster, namespace, "killed")))

    final = wait_final(cluster, namespace, "killed", timeout=600)
    seconds = time.monotonic() - started
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["controller"]["decision"] == "MaxTrialsReached"
    assert status["controllerRestarts"] >= KILLS

    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "killed", MAX_TRIALS)
    # a controller resumed from an older state would write Trials with a lower version
    versions = [t["spec"]["policyVersion"] for t in trials]
    assert versions == sorted(versions), f"policy version went back: {versions}"
    recorded = [r["policy_version"] for r in sorted(report.records, key=lambda r: r["index"])]
    assert recorded == versions
    strategy, loop = report.checkpoint["strategy"], report.checkpoint["loop"]
    # the paper's settings, batch size 1: one update per tell, so every result was told
    # exactly once
    assert strategy["policy_version"] == MAX_TRIALS + loop["known_proposals"]
    assert report.epoch == KILLS + 1 and status["controller"]["epoch"] == report.epoch
    print(f"killed at {killed} trials; search finished in {seconds:.1f}s, "
          f"epoch {report.epoch}, {status['controllerRestarts']} controller restarts")


def test_suspended_search_creates_nothing_until_resumed(cluster, search_operator, namespace):
    apply(cluster, search("paused", namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                          {"name": "reinforce", "seed": 5},
                          {"max": 12, "parallelism": 2, "timeoutSeconds": 120}))
    wait_for(lambda: len(trials_of(cluster, namespace, "paused")) >= 3, "3 trials", timeout=300)
    kubectl(cluster, "patch", "archsearch", "paused", "-n", namespace, "--type", "merge",
            "-p", '{"spec": {"suspend": true}}')
    wait_for(lambda: search_object(cluster, namespace, "paused")["status"].get("phase") == "Suspended",
             "the search to be Suspended", timeout=60)
    wait_for(lambda: not controller_pids(namespace, "paused"), "the controller to stop", timeout=60)
    suspended_with = len(trials_of(cluster, namespace, "paused"))
    time.sleep(5)
    assert len(trials_of(cluster, namespace, "paused")) == suspended_with
    assert suspended_with < 12

    kubectl(cluster, "patch", "archsearch", "paused", "-n", namespace, "--type", "merge",
            "-p", '{"spec": {"suspend": false}}')
    final = wait_final(cluster, namespace, "paused", timeout=600)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert final["status"]["controller"]["decision"] == "MaxTrialsReached"
    report, _ = assert_volume_agrees_with_trials(cluster, namespace, "paused", 12)
    assert report.epoch >= 2  # a second controller carried on from the volume


def test_a_second_controller_waits_for_the_lease_and_writes_nothing(cluster, search_operator, namespace,
                                                                     tmp_path):
    apply(cluster, search("leased", namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                          {"name": "reinforce", "seed": 6},
                          # one trial at a time: the search outlasts the second controller's
                          # start (it checks the spec first, as nas validate does)
                          {"max": 24, "parallelism": 1, "timeoutSeconds": 120}))
    wait_for(lambda: _epoch(cluster, namespace, "leased") == 1, "the controller pod to take over",
             timeout=300)
    # the same program on this machine, with admin credentials and the same volume
    log_path = tmp_path / "second-controller.log"
    with open(log_path, "wb") as log:
        second = subprocess.Popen(
            [str(venv_bin() / "nas-controller")], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "NAS_SEARCH_NAME": "leased",
                 "NAS_NAMESPACE": namespace, "NAS_DATA_DIR": str(volume_of(cluster, namespace, "leased")),
                 "NAS_LEASE_SECONDS": "3", "NAS_METRICS_PORT": "0", "NAS_CONTROLLER_ID": "intruder"})
    try:
        wait_for(lambda: "waiting for lease held by leased-controller/" in log_path.read_text(),
                 "the second controller to wait for the lease", timeout=120)
        time.sleep(4)  # longer than the lease: the holder renews it, so it is never taken
        assert _epoch(cluster, namespace, "leased") == 1
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    final = wait_final(cluster, namespace, "leased", timeout=600)
    assert final["status"]["controller"]["decision"] == "MaxTrialsReached"
    report, _ = assert_volume_agrees_with_trials(cluster, namespace, "leased", 24)
    assert report.epoch == 1
    assert "intruder" not in (volume_of(cluster, namespace, "leased") / "checkpoint" / "epoch").read_text()


def _epoch(cluster, namespace: str, name: str = "killed") -> int:
    """The fencing epoch on the search's volume (0 before the first controller)."""
    try:
        path = volume_of(cluster, namespace, name) / "checkpoint" / "epoch"
        return int(json.loads(path.read_text())["epoch"])
    except (AssertionError, OSError, ValueError, KeyError):
        return 0
