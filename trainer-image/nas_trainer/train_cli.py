"""`nas-train`: train one child network and report its result (contract 3).

    nas-train --architecture arch.json --config trainer.json --out DIR
    NAS_ARCHITECTURE='{...}' NAS_TRAINER_CONFIG='{...}' nas-train      # as in a trial pod

--architecture takes a file or '-' (stdin); --config a JSON/YAML file holding the
manifest's spec.trainer block (or a whole ArchitectureSearch manifest). Without them the
inline JSON of NAS_ARCHITECTURE / NAS_TRAINER_CONFIG is used; --out defaults to
NAS_OUTPUT_DIR. The result goes to the termination log (default /dev/termination-log
when writable), to stdout as one JSON line, and with --out to DIR/result.json,
DIR/epochs.jsonl and DIR/model.pt.

Exit codes: 0 done; 3 permanent — the architecture or the configuration is invalid, or
the child does not fit in GPU memory at this batch size (the same trial would fail the
same way again: lower trainer.batchSize instead); any other code (1) is an
infrastructure error worth retrying (data not reachable, a lost device, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import distributed_launch

from nas_contracts.result import EXIT_OK, EXIT_PERMANENT, EXIT_RETRYABLE
from nas_contracts.result import TERMINATION_LOG as DEFAULT_TERMINATION_LOG


class InputError(ValueError):
    """An argument or document that cannot be read: permanent."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nas-train", description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", "-a", help="architecture JSON file, or - for stdin "
                        "(default: $NAS_ARCHITECTURE, inline JSON)")
    parser.add_argument("--config", "-c", help="trainer config: spec.trainer as JSON/YAML, or "
                        "a whole manifest (default: $NAS_TRAINER_CONFIG, inline JSON)")
    parser.add_argument("--out", "-o", help="folder for result.json, epochs.jsonl, model.pt "
                        "(default: $NAS_OUTPUT_DIR)")
    parser.add_argument("--termination-log", help="where to write the result for Kubernetes "
                        f"(default: {DEFAULT_TERMINATION_LOG} when writable; '' for none)")
    parser.add_argument("--device", help="override trainer.device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-epoch log on stderr")
    return parser.parse_args(argv)


def read_document(source: str | None, env: str, what: str) -> Any:
    """JSON/YAML from a file, '-' (stdin), or else the inline JSON of $env."""
    if source == "-":
        text, origin = sys.stdin.read(), "stdin"
    elif source:
        try:
            text, origin = Path(source).read_text(), source
        except OSError as err:
            raise InputError(f"cannot read {what} {source}: {err.strerror}") from err
    elif os.environ.get(env):
        text, origin = os.environ[env], f"${env}"
    else:
        raise InputError(f"no {what}: pass --{what} FILE or set {env}")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import yaml

        return yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - any parse failure is the same user error
        raise InputError(f"{what} from {origin} is neither JSON nor YAML: {err}") from err


def trainer_block(doc: Any) -> dict[str, Any]:
    """spec.trainer of a manifest, or the document itself."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError("the trainer config must be an object")
    if isinstance(doc.get("spec"), dict) and "trainer" in doc["spec"]:
        return dict(doc["spec"]["trainer"] or {})
    return doc


def termination_path(arg: str | None) -> str | None:
    if arg is not None:
        return arg or None
    path = DEFAULT_TERMINATION_LOG
    return path if os.path.exists(path) and os.access(path, os.W_OK) else None


@dataclass
class Evaluation:
    """What one trial ended with: the exit code nas-train would return, the result JSON
    (contract 3; an error JSON when the code is not 0), and the retryable error, if any."""
    code: int
    doc: dict[str, Any] | None  # None: a later node of a multi-node trial (index 0 reports)
    error: BaseException | None = None


def evaluate(architecture: Any, read_config: Callable[[], dict[str, Any]], out: str | None,
             started: float, quiet: bool = False, data_cache: dict[Any, Any] | None = None,
             prog: str = "nas-train") -> Evaluation:
    """Train (or look up) one architecture and classify how it ended: nas-train's code
    path, also run in process by nas-worker for successive trials. `read_config` is called
    only when the architecture needs training (a nas-bench-graph lookup needs none).
    `data_cache` keeps datasets loaded between calls (keyed by the trainer config)."""
    from .errors import ArchitectureError
    from .training.result import error_json

    def fail(message: str, permanent: bool, error: BaseException | None = None) -> Evaluation:
        print(f"{prog}: {'invalid' if permanent else 'error'}: {message}", file=sys.stderr)
        code = EXIT_PERMANENT if permanent else EXIT_RETRYABLE
        return Evaluation(code, error_json(message, permanent), error)

    try:
        if isinstance(architecture, InputError):
            raise architecture
        if not isinstance(architecture, dict):
            raise InputError("the architecture must be a JSON object (contract 2)")
        if architecture.get("space") == "nas-bench-graph":
            return Evaluation(EXIT_OK, answer_from_table(architecture, out, started))
    except (InputError, ArchitectureError) as err:
        return fail(str(err), permanent=True)
    # torch is imported here, after argument parsing, and counted in `seconds`.
    from .training import ConfigError, TrainerConfig, train_architecture
    from .data import DatasetError, DatasetUnavailable
    from .training.run import log_to_stderr

    try:
        config_doc = read_config()
        config = TrainerConfig.from_dict(config_doc)
        data = cached_data(config_doc, config, str(architecture.get("space")), data_cache)
        outcome = train_architecture(architecture, config, out_dir=out, started=started,
                                     log=(lambda _: None) if quiet else log_to_stderr, data=data)
    except (InputError, ArchitectureError, ConfigError) as err:
        return fail(str(err), permanent=True)
    except DatasetError as err:  # missing or malformed files stay so; a failed fetch may not
        return fail(str(err), permanent=not isinstance(err, DatasetUnavailable), error=err)
    except Exception as err:  # noqa: BLE001 - classify, report, and exit
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return fail(f"CUDA out of memory: the child does not fit at this batch size "
                        f"({str(err).splitlines()[0]})", permanent=True)
        traceback.print_exc()
        return fail(f"{type(err).__name__}: {err}", permanent=False, error=err)
    return Evaluation(EXIT_OK, outcome.result.to_json())


def cached_data(config_doc: dict[str, Any], config: Any, space: str,
                data_cache: dict[Any, Any] | None) -> Any:
    """The dataset of ``config`` (a TrainerConfig read from ``config_doc``), kept in
    ``data_cache`` between trials of one process; None without a cache (train loads it)."""
    if data_cache is None:
        return None
    from .training.run import load_data

    key = json.dumps(config_doc, sort_keys=True, default=str)
    if key not in data_cache:
        data_cache.clear()  # one dataset at a time: a new config replaces the old
        data_cache[key] = load_data(config, space)
    return data_cache[key]


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    log_path = termination_path(args.termination_log)
    from .training.result import write_termination_message

    def read_config() -> dict[str, Any]:
        config_doc = trainer_block(read_document(args.config, "NAS_TRAINER_CONFIG", "config")
                                   if args.config or os.environ.get("NAS_TRAINER_CONFIG")
                                   else {})
        if args.device:
            config_doc["device"] = args.device
        return config_doc

    try:
        architecture = read_document(args.architecture, "NAS_ARCHITECTURE", "architecture")
    except InputError as err:
        architecture = err  # evaluate() reports it like any other invalid architecture
    out = args.out or os.environ.get("NAS_OUTPUT_DIR") or None
    processes = distributed_launch.processes_for(architecture, read_config)
    if processes > 1 or distributed_launch.nodes() > 1:
        evaluation = evaluate_in_workers(processes, architecture, read_config(), out, args.quiet)
    else:
        evaluation = evaluate(architecture, read_config, out, started, quiet=args.quiet)
    if distributed_launch.hand_over(evaluation.code, evaluation.doc):
        return evaluation.code  # a torchrun worker: the launching process reports
    if evaluation.doc is None:
        return evaluation.code  # a later node of a multi-node trial: index 0 reports
    write_termination_message(log_path, evaluation.doc)
    if evaluation.code == EXIT_OK:
        print(json.dumps(evaluation.doc, sort_keys=True))
    return evaluation.code


def evaluate_in_workers(processes: int, architecture: dict[str, Any], config: dict[str, Any],
                        out: str | None, quiet: bool) -> Evaluation:
    """A data-parallel trial: its workers under torchrun; rank 0's outcome is the trial's."""
    code, handed = distributed_launch.run_workers(processes, architecture, config, out, quiet)
    if handed is not None:
        return Evaluation(int(handed["code"]), handed["doc"])
    if code == EXIT_OK and distributed_launch.node_rank() > 0:
        return Evaluation(EXIT_OK, None)
    from .training.result import error_json

    where = (f" (node {distributed_launch.node_rank()} of {distributed_launch.nodes()})"
             if distributed_launch.nodes() > 1 else "")
    message = (f"the trial's {processes} data-parallel processes{where} ended (torchrun exit "
               f"code {code}) before rank 0 reported a result: see the log above")
    print(f"nas-train: error: {message}", file=sys.stderr)
    return Evaluation(EXIT_RETRYABLE, error_json(message, False))


def answer_from_table(architecture: dict[str, Any], out: str | None,
                      started: float) -> dict[str, Any]:
    """A nas-bench-graph trial: a table lookup, without torch (about a second a pod)."""
    from .training.result import write_trial_folder
    from .training.tabular import tabular_result

    doc = tabular_result(architecture, started).to_json()
    if out:
        write_trial_folder(Path(out), doc, [])
    return doc


if __name__ == "__main__":
    sys.exit(main())
