"""`nas run` for a shared-weights search: the children are scored and trained in this
process, one after another, so the dataset is loaded once and no trial pays for starting
Python and importing torch (a few seconds, more than the child's own work). Each trial
still writes its folder and the supernet's checkpoint, exactly as a trial pod does, so
a search continued in a cluster, or by another `nas run`, goes on from the same state."""
from __future__ import annotations

import time
from typing import Any

from ..results import ResultsFolder
from ..search import TrialOutcome, TrialRequest


class SharedWeightsEvaluator:
    def __init__(self, folder: ResultsFolder, config: dict[str, Any]) -> None:
        from ..training.config import TrainerConfig

        self.folder = folder
        self.config = TrainerConfig.from_dict(config)
        self.data: Any = None

    def evaluate(self, request: TrialRequest) -> TrialOutcome:
        """Raises ValueError (a permanent failure) for a child or setting the trainer
        refuses, as the trainer's exit code 3 would."""
        from ..errors import ArchitectureError
        from ..training import ConfigError, train_architecture
        from ..training.run import load_data

        started = time.perf_counter()
        architecture = request.architecture.to_json()
        try:
            if self.data is None:
                self.data = load_data(self.config, str(architecture.get("space")))
            outcome = train_architecture(architecture, self.config,
                                         out_dir=self.folder.trial_dir(request.index),
                                         log=lambda _: None, started=started, data=self.data)
        except (ArchitectureError, ConfigError) as err:
            raise ValueError(str(err)) from err
        result = outcome.result
        return TrialOutcome(request.index, succeeded=True, reward=result.reward,
                            metrics=dict(result.metrics), seconds=result.seconds,
                            parameters=result.parameters, epochs=result.epochs)
