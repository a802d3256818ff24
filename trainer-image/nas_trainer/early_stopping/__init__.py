"""Early stopping (spec.earlyStopping): stop unpromising trials after a few epochs.

How the parts talk (contract 5, files in each trial's folder, no API objects):

    trainer     appends one line per epoch to progress.jsonl: {"epoch", "of", "reward"}
                (the reward it would report if it stopped there), and after each epoch
                looks for stop.json; when it is there it ends at once with a result marked
                {"stoppedEarly": true, "epochs": k, "stopReason": ...}.
    controller  (or `nas run`) reads progress.jsonl of the running trials, applies the
                rule (median stopping or ASHA) and writes stop.json.

Modules, one job each: spec (the manifest section, checked), files (the two files, read
and written; no torch), rules (the pure decisions), monitor (the search side: follows
running trials, decides, writes stop markers).
"""
from .spec import EarlyStoppingSpec, parse_early_stopping

__all__ = ["EarlyStoppingSpec", "parse_early_stopping"]
