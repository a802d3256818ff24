"""`nas`: run an ArchitectureSearch manifest on this machine, and look at its results.

    nas run SEARCH.yaml [--out DIR] [--max-trials N] [--parallelism N]
    nas best DIR
    nas plot DIR [-o FILE.png]
    nas validate SEARCH.yaml
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .manifest import POD_KEYS, ManifestError, SearchManifest, parse_search, read_manifest
from .preflight import trainer_problem
from .results import ResultsFolder, TrialRecord

app = typer.Typer(help="Neural architecture search, the same manifest as on Kubernetes.",
                  no_args_is_help=True, add_completion=False)
console = Console()
# one line per error, whatever the terminal's width (scripts and tests read it)
errors = Console(stderr=True, soft_wrap=True)

# Parts of the spec a results folder is tied to: a different space or strategy would make
# its checkpoint and trials meaningless for the new search.
IDENTITY_FIELDS = ("searchSpace", "strategy")
# spec.trainer keys that say what a reward measures (the data it is scored on, its formula,
# the program computing it): rewards from before and after a change of one are not
# comparable, so a folder is not continued with another. Other trainer settings (epochs,
# learning rate, ...) may change between runs, as on a cluster, and are only pointed out.
REWARD_FIELDS = ("command", "args", "dataset", "datasetOptions", "validation", "splitSeed",
                 "reward")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _fail(message: str, code: int = 2) -> None:
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _load(path: Path, max_trials: Optional[int] = None,
          parallelism: Optional[int] = None) -> SearchManifest:
    try:
        doc = read_manifest(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"{path}: cannot read it ({getattr(err, 'strerror', None) or err})")
    except ManifestError as err:
        _fail(str(err))
    if (max_trials is not None or parallelism is not None) and isinstance(doc, dict) \
            and isinstance(doc.get("spec"), dict):
        doc = copy.deepcopy(doc)
        trials = dict(doc["spec"].get("trials") or {})
        doc["spec"]["trials"] = trials
        if max_trials is not None:
            trials["max"] = max_trials
            if parallelism is None and isinstance(trials.get("parallelism"), int):
                # Fewer trials than the manifest runs at once: run them all at once.
                trials["parallelism"] = min(trials["parallelism"], max_trials)
            if isinstance(trials.get("maxFailed"), int):
                # fewer trials than the manifest may fail: all of them may
                trials["maxFailed"] = min(trials["maxFailed"], max_trials)
        if parallelism is not None:
            trials["parallelism"] = parallelism
    try:
        manifest = parse_search(doc)
    except ManifestError as err:
        _fail(f"{path}: {err}")
    problem = trainer_problem(manifest)
    if problem is not None:
        _fail(f"{path}: {problem}")
    return manifest


@app.command()
def run(manifest_path: Path = typer.Argument(..., metavar="SEARCH.yaml",
                                             help="An ArchitectureSearch manifest."),
        out: Optional[Path] = typer.Option(None, "--out", help="Results folder "
                                           "(default runs/<metadata.name>)."),
        max_trials: Optional[int] = typer.Option(None, "--max-trials",
                                                 help="Override spec.trials.max."),
        parallelism: Optional[int] = typer.Option(None, "--parallelism",
                                                  help="Override spec.trials.parallelism.")
        ) -> None:
    """Run a search here; run it again to continue where it stopped."""
    from .evaluators import make_executor
    from .search import TOO_MANY_FAILURES, Budget, SearchLoop

    manifest = _load(manifest_path, max_trials, parallelism)
    folder = ResultsFolder(out or Path("runs") / manifest.name)
    _check_same_search(folder, manifest)
    space = manifest.space.build()
    strategy = manifest.strategy.build(space)
    # Only now: a search that could not start must not tie the folder to its manifest.
    folder.write_manifest(manifest.document)
    if "torch" in sys.modules:
        # The controller's tensors are tiny: extra intra-op threads only contend for cores.
        sys.modules["torch"].set_num_threads(1)
    executor = make_executor(manifest, folder)
    trials = manifest.trials
    budget = Budget(max_trials=trials.max, parallelism=trials.parallelism,
                    max_failed=trials.max_failed, goal=trials.goal)
    before = _read_records(folder)
    done_before = len(before)
    if done_before:
        console.print(f"Continuing {folder.path}: {done_before} trials already done.")
    best_before = max((r.reward for r in before if r.succeeded), default=None)

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("best {task.fields[best]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    task = progress.add_task(manifest.name, total=trials.max, completed=done_before,
                             best=f"{best_before:.4f}" if best_before is not None else "-")

    def on_trial(record: TrialRecord, loop: SearchLoop) -> None:
        best = f"{loop.best.reward:.4f}" if loop.best is not None else "-"
        progress.update(task, completed=len(loop.records), best=best)

    loop = SearchLoop(space, strategy, executor, folder, budget, on_trial=on_trial)
    try:
        with progress:
            summary = loop.run()
    except KeyboardInterrupt:
        executor.cancel()
        console.print(f"\nInterrupted. {len(loop.records)} trials are saved in {folder.path}; "
                      f"run the same command again to continue.")
        raise typer.Exit(130)
    console.print(f"{summary.reason}: {summary.trials} trials ({summary.failed} failed, "
                  f"{summary.known_proposals} known proposals answered from results) "
                  f"in {summary.seconds:.1f} s.")
    if summary.failed:
        _print_failures(list(loop.records.values()), folder)
    if summary.best is not None:
        _print_trial(summary.best, "Best architecture", folder)
        shared = manifest.trainer.config().get("sharedWeights")
        if shared is not None:
            _retrain_best(loop.records.values(), manifest, shared, folder)
    console.print(f"Results in {folder.path}/")
    if summary.reason == TOO_MANY_FAILURES:
        raise typer.Exit(1)


def _retrain_best(records: Any, manifest: SearchManifest, shared: dict[str, Any],
                  folder: ResultsFolder) -> None:
    """A shared-weights search's best children, trained from scratch (oneshot/retrain)."""
    from .oneshot.retrain import retrain
    from .oneshot.settings import SharedWeights

    count = SharedWeights.from_dict(shared).retrain_top
    console.print(f"Training the best {count} from scratch "
                  f"(their rewards so far are shared-weights estimates)...")
    rows = retrain(list(records), manifest.trainer.config(), count, folder.path)
    table = Table("trial", "hash", "estimate", "stand-alone reward", "val_accuracy",
                  "test_accuracy", "seconds", title="Retrained from scratch")
    for row in rows:
        def fmt(value: Any) -> str:
            return "-" if value is None else f"{value:.4f}"

        table.add_row(str(row.index), row.hash, fmt(row.estimate), fmt(row.reward),
                      fmt(row.val_accuracy), fmt(row.test_accuracy),
                      "-" if row.seconds is None else f"{row.seconds:.1f}")
        if row.error:
            console.print(f"[red]trial {row.index}: {row.error}[/red]")
    console.print(table)


def _check_same_search(folder: ResultsFolder, manifest: SearchManifest) -> None:
    previous = folder.read_manifest()
    if not previous:
        return
    for key in IDENTITY_FIELDS:
        before = (previous.get("spec") or {}).get(key)
        now = (manifest.document.get("spec") or {}).get(key)
        if before != now:
            _fail(f"{folder.path} holds a search with a different spec.{key}; "
                  f"use another --out (or delete the folder) to start a new search")
    before = (previous.get("spec") or {}).get("trainer") or {}
    now = (manifest.document.get("spec") or {}).get("trainer") or {}
    changed = sorted(k for k in set(before) | set(now)
                     if (k not in POD_KEYS or k in REWARD_FIELDS) and before.get(k) != now.get(k))
    for key in changed:
        if key in REWARD_FIELDS:
            _fail(f"{folder.path} holds a search whose spec.trainer.{key} was "
                  f"{before.get(key)!r}, not {now.get(key)!r}: its rewards would not compare "
                  f"with the new ones; use another --out (or delete the folder) to start a "
                  f"new search")
    if changed:
        console.print(f"Note: spec.trainer {', '.join(changed)} changed since the last run "
                      f"in {folder.path}; trials from now on use the new settings.",
                      highlight=False)


def _print_failures(records: list[TrialRecord], folder: ResultsFolder) -> None:
    """Why trials failed, each distinct reason once (most frequent first), with the log
    of its latest trial: the summary's count alone sends the user digging in trials.jsonl."""
    by_reason: dict[str, list[TrialRecord]] = {}
    for record in sorted(records, key=lambda r: r.index):
        if not record.succeeded:
            first_line = (record.message or "").strip().splitlines()[:1] or ["no message"]
            key = f"{record.reason or 'Failed'}: {first_line[0][:300]}"
            by_reason.setdefault(key, []).append(record)
    shown = sorted(by_reason.items(), key=lambda item: -len(item[1]))
    for key, failed in shown[:3]:
        log = folder.trial_dir(failed[-1].index) / "log.txt"
        where = f" (log: {log})" if log.exists() else ""
        errors.print(f"[red]failed[/red] {len(failed)} × {key}{where}", highlight=False,
                     soft_wrap=True)
    if len(shown) > 3:
        errors.print(f"... and {len(shown) - 3} other reasons; see {folder.trials_file}",
                     highlight=False)


def _print_trial(record: TrialRecord, title: str, folder: ResultsFolder | None = None) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_row("trial", str(record.index))
    table.add_row("reward", f"{record.reward:.6g}" if record.reward is not None else "-")
    for name, value in record.metrics.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    if record.parameters is not None:
        table.add_row("parameters", f"{record.parameters:,}")
    table.add_row("hash", record.hash)
    table.add_row("architecture", json.dumps(record.architecture.get("canonical"),
                                             sort_keys=False))
    weights = folder.best_weights(record.index) if folder is not None else None
    if weights is not None:
        table.add_row("weights", Text(str(weights), overflow="fold"))  # never cut a path
    console.print(table)


def _folder_records(directory: Path) -> list[TrialRecord]:
    folder = ResultsFolder(directory)
    if not folder.trials_file.exists():
        _fail(f"{directory} has no {folder.trials_file.name}: not a results folder "
              f"(or no trial finished yet)")
    return _read_records(folder)


def _read_records(folder: ResultsFolder) -> list[TrialRecord]:
    """The folder's trials; a line that is not a record (edited by hand, a damaged disk)
    is an error to fix, not a traceback."""
    try:
        return folder.read_trials()
    except ValueError as err:
        _fail(f"{err}; fix or delete that line")
    raise AssertionError("unreachable")


@app.command()
def best(directory: Path = typer.Argument(..., metavar="DIR", help="A results folder."),
         as_json: bool = typer.Option(False, "--json", help="Print the trial record as JSON.")
         ) -> None:
    """Print the best trial of a results folder, and where its weights are."""
    succeeded = [r for r in _folder_records(directory) if r.succeeded]
    if not succeeded:
        _fail(f"no trial in {directory} succeeded yet", code=1)
    record = max(succeeded, key=lambda r: r.reward)
    if as_json:
        console.print_json(json.dumps(record.to_json()))
    else:
        _print_trial(record, f"Best of {len(succeeded)} succeeded trials",
                     ResultsFolder(directory))


@app.command()
def plot(directory: Path = typer.Argument(..., metavar="DIR", help="A results folder."),
         output: Optional[Path] = typer.Option(None, "-o", "--output",
                                               help="Image file (default DIR/progress.png).")
         ) -> None:
    """Plot each trial's reward and the best so far, in the order trials finished."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = _folder_records(directory)
    output = output or directory / "progress.png"
    points = [(n, r.reward) for n, r in enumerate(records, start=1) if r.succeeded]
    failures = [n for n, r in enumerate(records, start=1) if not r.succeeded]
    best_so_far: list[float] = []
    for _, reward in points:
        best_so_far.append(max(reward, best_so_far[-1]) if best_so_far else reward)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    if points:
        axes.scatter([n for n, _ in points], [r for _, r in points], s=8, alpha=0.5,
                     label="reward")
        axes.step([n for n, _ in points], best_so_far, where="post", color="C3",
                  label="best so far")
    if failures:
        low = min((r for _, r in points), default=0.0)
        axes.scatter(failures, [low] * len(failures), marker="x", color="grey", label="failed")
    axes.set_xlabel("trial (in order of completion)")
    axes.set_ylabel("reward")
    axes.set_title(f"{directory.name}: {len(records)} trials")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)
    console.print(f"Wrote {output}")


@app.command()
def validate(manifest_path: Path = typer.Argument(..., metavar="SEARCH.yaml",
                                                  help="An ArchitectureSearch manifest.")
             ) -> None:
    """Check a manifest without running it."""
    manifest = _load(manifest_path)
    space = manifest.space.build()
    size = space.size()
    trials = manifest.trials
    # on a cluster only (`nas run` ignores the mode): each warm worker holds a pack
    packs = (f" (on a cluster: {trials.parallelism} warm workers holding up to "
             f"{trials.max_per_worker} each)" if (trials.max_per_worker or 1) > 1 else "")
    console.print(
        f"{manifest_path}: valid. Search {manifest.name}: space {space.name} "
        f"({plural(len(space.decisions), 'decision')}, "
        f"{size if size is not None else 'uncounted'} "
        f"architectures), strategy {manifest.strategy.name} (seed {manifest.strategy.seed}), "
        f"up to {plural(trials.max, 'trial')}, {trials.parallelism} at a time"
        f"{packs}.", highlight=False)


if __name__ == "__main__":
    app()
