"""Trials as local trainer processes: results, permanent failures, retries, timeouts."""
from __future__ import annotations

import json
import sys
import textwrap
import time

import pytest

from nas_trainer.evaluators import SubprocessExecutor
from nas_trainer.results import ResultsFolder
from nas_trainer.search import Budget, TrialRequest, run_search
from nas_trainer.spaces import get_space
from nas_trainer.strategies import make_strategy

# A stand-in trainer: behaves as the architecture's "mode" decision says.
TRAINER = textwrap.dedent("""
    import argparse, json, os, sys, time
    parser = argparse.ArgumentParser()
    for flag in ("--architecture", "--config", "--out", "--termination-log"):
        parser.add_argument(flag)
    args = parser.parse_args()
    arch = json.load(open(args.architecture))
    assert json.loads(os.environ["NAS_ARCHITECTURE"]) == arch
    config = json.load(open(args.config))
    mode, width = arch["canonical"]["mode"], arch["canonical"]["width"]
    attempts = os.path.join(args.out, "attempts")
    attempt = int(open(attempts).read()) + 1 if os.path.exists(attempts) else 1
    open(attempts, "w").write(str(attempt))
    if mode == "broken":
        json.dump({"schema": "nas.result/v1", "error": "width too odd", "permanent": True},
                  open(args.termination_log, "w"))
        sys.exit(3)
    if mode == "flaky" and attempt == 1 or mode == "down":
        sys.exit(1)
    if mode == "slow":
        time.sleep(60)
    result = {"schema": "nas.result/v1", "reward": width / 100, "metrics": {"epochs": config["epochs"]},
              "seconds": 0.1, "parameters": width * 10}
    target = args.termination_log if mode == "terminal" else os.path.join(args.out, "result.json")
    json.dump(result, open(target, "w"))
""")
MODES = ["ok", "broken", "flaky", "down", "slow", "terminal"]


@pytest.fixture
def space():
    return get_space("custom", None, [{"name": "mode", "choices": MODES},
                                      {"name": "width", "choices": [8, 16, 32]}])


@pytest.fixture
def executor(tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    executor = SubprocessExecutor(ResultsFolder(tmp_path / "out"), {"epochs": 3},
                                  command=[sys.executable, str(script)], retries=1,
                                  timeout_seconds=3)
    yield executor
    executor.cancel()


def run_trials(executor, requests):
    for request in requests:
        executor.submit(request)
    outcomes = {}
    deadline = time.monotonic() + 60
    while len(outcomes) < len(requests) and time.monotonic() < deadline:
        for outcome in executor.wait(1.0):
            outcomes[outcome.index] = outcome
    return outcomes


def test_outcomes_of_trainer_processes(space, executor, tmp_path):
    requests = [TrialRequest(i, space.from_canonical({"mode": m, "width": 32}))
                for i, m in enumerate(MODES)]
    outcomes = run_trials(executor, requests)
    ok, broken, flaky, down, slow, terminal = (outcomes[i] for i in range(len(MODES)))
    assert ok.succeeded and ok.reward == 0.32 and ok.parameters == 320
    assert ok.metrics == {"epochs": 3}  # the trainer config travelled
    assert not broken.succeeded and broken.reason == "PermanentError"
    assert broken.message == "width too odd"
    assert flaky.succeeded  # exit 1 is retried
    assert not down.succeeded and down.reason == "RetriesExhausted"
    assert "after 2 attempts" in down.message
    assert not slow.succeeded and slow.reason == "Timeout"
    assert terminal.succeeded and terminal.reward == 0.32  # read from the termination log
    trial = tmp_path / "out" / "trials" / "00002"
    assert (trial / "attempts").read_text() == "2"
    assert (trial / "log.txt").read_text().count("--- attempt") == 2
    assert json.loads((trial / "architecture.json").read_text())["canonical"]["mode"] == "flaky"


def test_a_search_runs_trainer_processes_in_parallel(executor):
    # Only the "ok" mode, three widths: a space of 3 that the search exhausts.
    ok_space = get_space("custom", None, [{"name": "mode", "choices": ["ok"]},
                                          {"name": "width", "choices": [8, 16, 32]}])
    summary = run_search(ok_space, make_strategy("random", ok_space, seed=0), executor,
                         executor.folder, Budget(max_trials=5, parallelism=2), wait_seconds=1)
    assert summary.trials == 3 and summary.best.reward == 0.32
    assert not executor.running


def test_cancel_stops_running_trials(space, executor):
    executor.submit(TrialRequest(0, space.from_canonical({"mode": "slow", "width": 8})))
    process = executor.running[0].process
    executor.cancel()
    assert process.poll() is not None and not executor.running
