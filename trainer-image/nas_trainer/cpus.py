"""How many CPUs this process may really use: the cores it is pinned to, capped by its
cgroup's CPU quota (a pod's `resources.limits.cpu`). `os.cpu_count()` reports the whole
node, and a trainer that starts that many threads inside a 4-CPU limit is throttled
into running slower than with 4. Torch-free: `nas run` uses it to share cores between
trials."""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (1.5 for `limits.cpu: 1500m`), or None when unlimited.
    cgroup v2 (`cpu.max`: "<quota> <period>" or "max <period>") first, then v1."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may run on, capped by the cgroup quota (rounded up: 1.5 CPUs
    of quota are still kept busy best by 2 threads); at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def threads_per_trial(parallelism: int, root: Path = CGROUP_ROOT) -> int:
    """The usable cores shared out between `parallelism` trials run side by side."""
    return max(1, usable_cpus(root) // max(1, parallelism))
