"""How `nas run` evaluates trials: in process from a table, or by running a trainer."""
from __future__ import annotations

from ..manifest import SearchManifest
from ..results import ResultsFolder
from ..search import Executor
from .in_process import Evaluator, InProcessExecutor
from .processes import SubprocessExecutor
from .tabular import TabularEvaluator, nas_bench_graph_evaluator, nas_bench_graph_table


def make_executor(manifest: SearchManifest, folder: ResultsFolder) -> Executor:
    """nas-bench-graph with the built-in trainer is answered from the package's tables in
    process (instant); everything else runs the trainer command per trial."""
    if manifest.space.name == "nas-bench-graph" and manifest.uses_builtin_trainer:
        dataset = manifest.space.build().options["dataset"]
        return InProcessExecutor(nas_bench_graph_evaluator(dataset))
    return SubprocessExecutor(folder, manifest.trainer.config(),
                              command=manifest.trainer.command or ("nas-train",),
                              args=manifest.trainer.args, retries=manifest.trials.retries,
                              timeout_seconds=manifest.trials.timeout_seconds,
                              env={"NAS_SEARCH_NAME": manifest.name},
                              parallelism=manifest.trials.parallelism)


__all__ = ["Evaluator", "InProcessExecutor", "SubprocessExecutor", "TabularEvaluator",
           "make_executor", "nas_bench_graph_evaluator", "nas_bench_graph_table"]
