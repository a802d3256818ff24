"""Executor that runs each trial as a local process of a trainer command (`nas-train` by
default), the way a trial pod would run it.

Command line: `<command> <args> --architecture A.json --config C.json --out DIR
--termination-log FILE`; the same values are also in the environment of contract 7
(NAS_ARCHITECTURE, NAS_TRAINER_CONFIG, NAS_TRIAL_INDEX, NAS_OUTPUT_DIR), so a user's own
trainer may read either. Exit 0: the result JSON (contract 3) is read from DIR/result.json
or the termination log; exit 3: permanent failure; anything else is retried up to
`retries` times. A trial running longer than `timeout_seconds` (all attempts together)
is killed and fails with Timeout.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from nas_contracts.cluster import (ENV_ARCHITECTURE, ENV_OUTPUT_DIR, ENV_TRAINER_CONFIG,
                                   ENV_TRIAL_INDEX)
from nas_contracts.result import EXIT_PERMANENT, TrialResult, parse_result
from nas_contracts.volume import RESULT_FILE

from ..cpus import threads_per_trial
from ..results import ResultsFolder, atomic_write
from ..search import TrialOutcome, TrialRequest

POLL_SECONDS = 0.05
KILL_GRACE_SECONDS = 5.0


@dataclass
class _Running:
    request: TrialRequest
    directory: Path
    started: float
    attempts: int
    process: subprocess.Popen
    log: IO[bytes]


def resolve_command(command: Sequence[str]) -> list[str]:
    """The command with its program found first next to the running Python, then on PATH:
    as if this Python's virtualenv were activated (`nas-train`, `python` are its own)."""
    program, *rest = command
    sibling = Path(sys.executable).parent / program
    if "/" not in program and sibling.exists():
        return [str(sibling), *rest]
    return [shutil.which(program) or program, *rest]


class SubprocessExecutor:
    def __init__(self, folder: ResultsFolder, trainer_config: Mapping[str, Any],
                 command: Sequence[str] = ("nas-train",), args: Sequence[str] = (),
                 retries: int = 2, timeout_seconds: float = 3600,
                 env: Mapping[str, str] | None = None, parallelism: int = 1) -> None:
        self.folder = folder
        self.trainer_config = dict(trainer_config)
        self.command = resolve_command(command)
        self.args = list(args)
        self.retries = retries
        self.timeout_seconds = timeout_seconds
        self.env = dict(env or {})
        if "OMP_NUM_THREADS" not in {**os.environ, **self.env}:
            # Trials side by side share the cores: more threads than cores makes OpenMP's
            # spin-waiting cost several times the work (the trainer honours this).
            self.env["OMP_NUM_THREADS"] = str(threads_per_trial(parallelism))
        self.running: dict[int, _Running] = {}

    def submit(self, request: TrialRequest) -> None:
        if request.index in self.running:
            return
        directory = self.folder.trial_dir(request.index)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in ("result.json", "termination-log"):  # from a run cut short by a restart
            (directory / stale).unlink(missing_ok=True)
        architecture = json.dumps(request.architecture.to_json(), sort_keys=True)
        atomic_write(directory / "architecture.json", architecture.encode())
        atomic_write(directory / "config.json", json.dumps(self.trainer_config).encode())
        log = open(directory / "log.txt", "ab")
        process = self._launch(request, directory, 1, log)
        self.running[request.index] = _Running(request, directory, time.monotonic(), 1,
                                               process, log)

    def _launch(self, request: TrialRequest, directory: Path, attempt: int, log: IO[bytes]
                ) -> subprocess.Popen:
        argv = [*self.command, *self.args,
                "--architecture", str(directory / "architecture.json"),
                "--config", str(directory / "config.json"),
                "--out", str(directory),
                "--termination-log", str(directory / "termination-log")]
        env = {**os.environ, **self.env,
               ENV_ARCHITECTURE: (directory / "architecture.json").read_text(),
               ENV_TRAINER_CONFIG: json.dumps(self.trainer_config),
               ENV_TRIAL_INDEX: str(request.index),
               ENV_OUTPUT_DIR: str(directory)}
        log.write(f"--- attempt {attempt}: {' '.join(argv)}\n".encode())
        log.flush()
        # Own session: a Ctrl-C at the terminal reaches `nas`, which stops its trials itself.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            outcomes = [o for o in (self._check(run) for run in list(self.running.values()))
                        if o is not None]
            if outcomes:
                return outcomes
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        return []

    def cancel(self) -> None:
        for run in self.running.values():
            _signal_group(run.process, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for run in self.running.values():
            try:
                run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(run.process, signal.SIGKILL)
                run.process.wait()
            run.log.close()
        self.running.clear()

    def _check(self, run: _Running) -> TrialOutcome | None:
        code = run.process.poll()
        elapsed = time.monotonic() - run.started
        if code is None:
            if elapsed <= self.timeout_seconds:
                return None
            _signal_group(run.process, signal.SIGKILL)
            run.process.wait()
            return self._done(run, TrialOutcome(
                run.request.index, succeeded=False, reason="Timeout", seconds=elapsed,
                message=f"killed after {self.timeout_seconds:g} s (spec.trials.timeoutSeconds)"))
        if code == 0:
            return self._done(run, self._read_result(run, elapsed))
        if code == EXIT_PERMANENT:
            return self._done(run, TrialOutcome(run.request.index, succeeded=False,
                                                reason="PermanentError", seconds=elapsed,
                                                message=self._error_message(run)))
        if run.attempts <= self.retries:
            run.attempts += 1
            run.process = self._launch(run.request, run.directory, run.attempts, run.log)
            return None
        return self._done(run, TrialOutcome(
            run.request.index, succeeded=False, reason="RetriesExhausted", seconds=elapsed,
            message=f"exit code {code} after {run.attempts} attempts: {self._error_message(run)}"))

    def _done(self, run: _Running, outcome: TrialOutcome) -> TrialOutcome:
        run.log.close()
        del self.running[run.request.index]
        return outcome

    def _read_result(self, run: _Running, elapsed: float) -> TrialOutcome:
        return outcome_of_result(run.request.index, self._result(run), elapsed)

    @staticmethod
    def _result(run: _Running) -> TrialResult | None:
        """result.json, else the termination log (a trainer without an output folder)."""
        for name in (RESULT_FILE, "termination-log"):
            try:
                result = parse_result((run.directory / name).read_text())
            except OSError:
                continue
            if result is not None:
                return result
        return None

    def _error_message(self, run: _Running) -> str:
        result = self._result(run)
        if result is not None and result.error:
            return result.error
        try:
            lines = (run.directory / "log.txt").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:500] if lines else ""


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def outcome_of_result(index: int, result: TrialResult | None, elapsed: float) -> TrialOutcome:
    """The outcome of a trainer that exited 0, by contract 3's one reader and rule."""
    if result is None or not result.succeeded:
        message = (result.error if result is not None and result.error else
                   "the trainer exited 0 without a result JSON with a numeric reward")
        return TrialOutcome(index, succeeded=False, reason="InvalidResult", seconds=elapsed,
                            message=message)
    return TrialOutcome(index, succeeded=True, reward=result.reward,
                        metrics=dict(result.metrics),
                        seconds=result.seconds if result.seconds is not None else elapsed,
                        parameters=result.parameters,
                        stopped_early=result.stopped_early,
                        message=result.stop_reason or "",
                        epochs=result.epochs)
