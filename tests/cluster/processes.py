"""Starting and ending the harness's processes so that none outlives its test run.

Three guards, from cheapest to last resort:
- every process is a process-group leader, stopped with SIGTERM then SIGKILL to the group;
- PR_SET_PDEATHSIG: the kernel kills a child when the process that started it dies;
- every process (and every pod process the node agent starts) carries
  `NAS_TEST_RUN=<run id>` in its environment, inherited by whatever it spawns, so a
  sweep of /proc finds even double-forked stragglers of a run whose owner was SIGKILLed.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Mapping, Sequence

RUN_MARKER = "NAS_TEST_RUN"
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent (thread) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: (pid, start time) names a
    process for good, where a pid alone may be recycled."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_alive(pid: int, started: int | None) -> bool:
    return started is not None and start_time(pid) == started


def spawn(
    argv: Sequence[str],
    *,
    run_id: str,
    log: IO[bytes],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Starts `argv` as its own process group, marked with the run id, killed when the
    calling thread dies, stdout and stderr appended to `log`."""
    full_env = dict(os.environ if env is None else env)
    full_env[RUN_MARKER] = run_id
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=set_parent_death_signal,
    )


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # children it may have left behind
        return
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def marked_processes(marker: str) -> list[int]:
    """Pids of every live process whose environment holds `marker` ("NAME=value")."""
    needle = marker.encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def sweep(run_id: str, grace: float = 2.0) -> int:
    """Ends every process of the run still alive: SIGTERM, then SIGKILL after `grace`
    seconds. Returns how many there were."""
    return sweep_marked(f"{RUN_MARKER}={run_id}", grace)


def sweep_marked(marker: str, grace: float = 2.0) -> int:
    """Ends every process whose environment holds `marker`; returns how many."""
    pids = marked_processes(marker)
    found = len(pids)
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    for pid in marked_processes(marker):
        _kill(pid, signal.SIGKILL)
    return found


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def write_owner(run_dir: Path) -> None:
    """Records which process owns a run, so a later reaper can tell a live run from
    one whose pytest was killed."""
    pid = os.getpid()
    (run_dir / "owner.json").write_text(json.dumps({"pid": pid, "start_time": start_time(pid)}))


def owner_alive(run_dir: Path) -> bool:
    try:
        owner = json.loads((run_dir / "owner.json").read_text())
    except (OSError, ValueError):
        return False
    return is_alive(owner["pid"], owner["start_time"])
