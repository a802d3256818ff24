"""How `nas run` evaluates trials: in process from a table, or by running a trainer."""
from __future__ import annotations

from typing import Any

from ..manifest import SearchManifest
from ..results import ResultsFolder
from ..search import Executor
from .in_process import Evaluator, InProcessExecutor
from .processes import SubprocessExecutor
from .tabular import TabularEvaluator, nas_bench_graph_evaluator, nas_bench_graph_table

LOCAL_POLL_SECONDS = 0.1  # how often `nas run` reads its running trials' progress (a few small files)


def make_executor(manifest: SearchManifest, folder: ResultsFolder) -> Executor:
    """nas-bench-graph with the built-in trainer is answered from the package's tables in
    process (instant); everything else runs the trainer command per trial."""
    if manifest.space.name == "nas-bench-graph" and manifest.uses_builtin_trainer:
        dataset = manifest.space.build().options["dataset"]
        return InProcessExecutor(nas_bench_graph_evaluator(dataset))
    if "sharedWeights" in manifest.trainer.config() and manifest.uses_builtin_trainer:
        from .shared_weights import SharedWeightsEvaluator

        return InProcessExecutor(SharedWeightsEvaluator(folder, manifest.trainer.config()))
    executor = SubprocessExecutor(folder, manifest.trainer.config(),
                                  command=manifest.trainer.command or ("nas-train",),
                                  args=manifest.trainer.args, retries=manifest.trials.retries,
                                  timeout_seconds=manifest.trials.timeout_seconds,
                                  env={"NAS_SEARCH_NAME": manifest.name},
                                  parallelism=manifest.trials.parallelism)
    if manifest.early_stopping is None:
        return executor
    return with_early_stopping(executor, manifest, folder, poll_seconds=LOCAL_POLL_SECONDS)


def with_early_stopping(executor: Executor, manifest: SearchManifest, folder: ResultsFolder,
                        poll_seconds: float, **monitor_options: Any) -> Executor:
    """`executor` with spec.earlyStopping applied to its trials (their folders are
    `folder`'s), the curves of trials already run read back first."""
    from ..early_stopping.monitor import EarlyStoppingExecutor, EarlyStoppingMonitor

    assert manifest.early_stopping is not None
    monitor = EarlyStoppingMonitor(manifest.early_stopping, folder.trial_dir, **monitor_options)
    monitor.load_existing(folder.path / "trials")
    return EarlyStoppingExecutor(executor, monitor, poll_seconds)


__all__ = ["Evaluator", "InProcessExecutor", "SubprocessExecutor", "TabularEvaluator",
           "make_executor", "nas_bench_graph_evaluator", "with_early_stopping", "nas_bench_graph_table"]
