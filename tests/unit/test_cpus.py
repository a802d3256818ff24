"""CPU threads: a trial uses the cores its pod may use (affinity capped by the cgroup
quota), and trials run side by side by `nas run` share them instead of oversubscribing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from nas_trainer.cpus import cgroup_cpu_limit, threads_per_trial, usable_cpus
from nas_trainer.evaluators import SubprocessExecutor
from nas_trainer.results import ResultsFolder
from nas_trainer.search import TrialRequest
from nas_trainer.spaces import get_space
from nas_trainer.training import TrainerConfig
from nas_trainer.training.run import limit_cpu_threads

AFFINITY = len(os.sched_getaffinity(0))


def cgroup(tmp_path, v2: str | None = None, v1: tuple[int, int] | None = None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{v1[0]}\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{v1[1]}\n")
    return tmp_path


@pytest.mark.parametrize("v2, v1, limit", [
    ("150000 100000", None, 1.5),        # limits.cpu: 1500m
    ("max 100000", None, None),          # no limit
    (None, (400000, 100000), 4.0),       # cgroup v1
    (None, (-1, 100000), None),          # cgroup v1, no limit
    (None, None, None),                  # no cgroup files at all
])
def test_cgroup_cpu_limit(tmp_path, v2, v1, limit):
    assert cgroup_cpu_limit(cgroup(tmp_path, v2, v1)) == limit


def test_usable_cpus_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    assert usable_cpus(cgroup(tmp_path, "max 100000")) == AFFINITY
    (tmp_path / "cpu.max").write_text("50000 100000")
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("100001 100000")
    assert usable_cpus(tmp_path) == min(AFFINITY, 2)


def test_threads_per_trial_shares_the_cores(tmp_path):
    root = cgroup(tmp_path, "max 100000")
    assert threads_per_trial(1, root) == AFFINITY
    assert threads_per_trial(AFFINITY, root) == 1
    assert threads_per_trial(4 * AFFINITY, root) == 1  # never 0


@pytest.fixture
def torch_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


def test_trainer_uses_every_usable_core_by_default(torch_threads):
    torch.set_num_threads(1)
    limit_cpu_threads(TrainerConfig.from_dict({}), torch.device("cpu"))
    assert torch.get_num_threads() == usable_cpus()


def test_trainer_threads_from_the_manifest_win(torch_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    limit_cpu_threads(TrainerConfig.from_dict({"cpuThreads": 2}), torch.device("cpu"))
    assert torch.get_num_threads() == 2


# A stand-in trainer that reports the OMP_NUM_THREADS it was given as its reward.
REPORT_THREADS = textwrap.dedent("""
    import argparse, json, os
    parser = argparse.ArgumentParser()
    for flag in ("--architecture", "--config", "--out", "--termination-log"):
        parser.add_argument(flag)
    args = parser.parse_args()
    json.dump({"schema": "nas.result/v1", "reward": int(os.environ["OMP_NUM_THREADS"]),
               "metrics": {}}, open(os.path.join(args.out, "result.json"), "w"))
""")


@pytest.mark.parametrize("parallelism, env, expected", [
    (1, {}, "all"),
    (2 * AFFINITY, {}, 1),
    (1, {"OMP_NUM_THREADS": "7"}, 7),   # the user's setting is kept
])
def test_nas_run_shares_the_cores_between_trials(tmp_path, monkeypatch, parallelism, env,
                                                 expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = usable_cpus() if expected == "all" else expected
    script = tmp_path / "trainer.py"
    script.write_text(REPORT_THREADS)
    executor = SubprocessExecutor(ResultsFolder(tmp_path / "out"), {},
                                  command=[sys.executable, str(script)],
                                  parallelism=parallelism)
    space = get_space("custom", None, [{"name": "x", "choices": [1, 2]}])
    executor.submit(TrialRequest(0, space.from_canonical({"x": 1})))
    deadline, outcomes = time.monotonic() + 30, []
    while not outcomes and time.monotonic() < deadline:
        outcomes = executor.wait(1.0)
    assert [o.reward for o in outcomes] == [expected], json.dumps([vars(o) for o in outcomes],
                                                                  default=str)


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_told_otherwise(given, expected):
    """Set by importing nas_trainer, before torch loads OpenMP (which reads it once)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", "import nas_trainer, os; "
                          "print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected
