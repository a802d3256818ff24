"""`nas run` for a shared-weights search: each child runs through `nas-train`'s own
evaluate() in this process, one after another, so the dataset is loaded once and no trial
pays for starting Python and importing torch (a few seconds, more than the child's own
work). Each trial still writes its folder and the supernet's checkpoint exactly as a trial
pod does, so a search continued in a cluster, or by another `nas run`, goes on from the same
state."""
from __future__ import annotations

import json
import time
from typing import Any

from nas_contracts.result import EXIT_OK, EXIT_PERMANENT, parse_result

from ..results import ResultsFolder
from ..search import TrialOutcome, TrialRequest
from .processes import outcome_of_result


class SharedWeightsEvaluator:
    def __init__(self, folder: ResultsFolder, config: dict[str, Any]) -> None:
        self.folder, self.config = folder, dict(config)
        self.data_cache: dict[Any, Any] = {}

    def evaluate(self, request: TrialRequest) -> TrialOutcome:
        """Raises ValueError (a permanent failure) where nas-train would exit 3."""
        from ..train_cli import evaluate

        started = time.perf_counter()
        evaluation = evaluate(request.architecture.to_json(), lambda: self.config,
                              str(self.folder.trial_dir(request.index)), started, quiet=True,
                              data_cache=self.data_cache, prog="nas run")
        elapsed = time.perf_counter() - started
        if evaluation.code == EXIT_PERMANENT:
            raise ValueError(str(evaluation.doc.get("error") or "invalid"))
        if evaluation.code != EXIT_OK:
            return TrialOutcome(request.index, succeeded=False, reason="Failed",
                                seconds=elapsed, message=str(evaluation.doc.get("error") or ""))
        return outcome_of_result(request.index, parse_result(json.dumps(evaluation.doc)),
                                 elapsed)
