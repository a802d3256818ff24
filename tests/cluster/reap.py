"""Ends the processes of test control planes whose pytest is gone (SIGKILLed, or the
machine's session cut). Runs at every fixture start; `make clean-cluster` runs it by hand:

    python -m tests.cluster.reap          # runs whose owner is dead
    python -m tests.cluster.reap --all    # every run, live owners included
"""
from __future__ import annotations

import argparse
import shutil

from .paths import RUN_ROOT
from .processes import owner_alive, sweep


def reap_orphans(include_live: bool = False) -> list[str]:
    """Sweeps the processes of every run whose owner is dead (or of every run); returns
    the ids of the runs that still had processes."""
    reaped = []
    if not RUN_ROOT.is_dir():
        return reaped
    for run_dir in sorted(RUN_ROOT.iterdir()):
        if not run_dir.is_dir() or (owner_alive(run_dir) and not include_live):
            continue
        if sweep(run_dir.name):
            reaped.append(run_dir.name)
        # etcd data is the bulk of a run and useless once its etcd is gone.
        shutil.rmtree(run_dir / "etcd-data", ignore_errors=True)
    return reaped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true",
                        help="also end runs whose pytest is still alive")
    args = parser.parse_args()
    reaped = reap_orphans(include_live=args.all)
    print(f"ended leftover processes of {len(reaped)} run(s)" +
          (f": {', '.join(reaped)}" if reaped else ""))


if __name__ == "__main__":
    main()
