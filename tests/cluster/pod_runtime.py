"""Runs one pod on a test node, as kubelet would: volumes, init containers, containers as
local processes (see launcher.py), restarts with back-off, activeDeadlineSeconds,
graceful deletion, and the pod status that tells the API server all of it.

Not done (documented in tests/cluster/README.md): probes (a running container is ready),
lifecycle hooks, sidecar init containers (`restartPolicy: Always` on an init container),
resource limits, network isolation (pods share the host's network), image pulls.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException

from .events import record_pod_event
from .kube import STRATEGIC_MERGE_PATCH, Kube, pod_path
from .logs import container_log_path
from .pod_dns import PodHosts
from .pod_env import ConfigError, NodeFacts, container_argv, container_env, expand, run_as
from .pod_status import ContainerRecord, build_status, now_iso, pod_phase, status_patch
from .paths import REPO_ROOT
from .processes import RUN_MARKER, sweep_marked
from .volumes import ClaimRegistry, Volume, VolumeNotReady, prepare_volumes

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LAUNCHER = Path(__file__).with_name("launcher.py")
POD_MARKER = "NAS_TEST_POD"
MAX_TERMINATION_MESSAGE = 4096
POLL_SECONDS = 0.2
FINAL_REPORT_SECONDS = 30  # a deleted pod's terminal status is tried this long


@dataclass
class NodeRuntime:
    """What every pod worker of a node shares."""

    kube: Kube
    node: NodeFacts
    run_dir: Path
    run_id: str
    claims: ClaimRegistry
    backoff_base: float = 1.0  # kubelet's is 10 s; tests want restarts fast
    backoff_max: float = 60.0
    entrypoints: dict[str, list[str]] = field(default_factory=dict)

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        plural = {"ConfigMap": "configmaps", "Secret": "secrets",
                  "PersistentVolumeClaim": "persistentvolumeclaims"}
        if kind == "PersistentVolume":
            return self.kube.get_or_none(f"/api/v1/persistentvolumes/{name}")
        return self.kube.get_or_none(f"/api/v1/namespaces/{namespace}/{plural[kind]}/{name}")

    def issue_token(self, namespace: str, service_account: str, audience: str | None,
                    expiration: int, pod: Obj) -> str:
        """A service-account token bound to the pod (TokenRequest API), as kubelet
        projects it."""
        spec: Obj = {"expirationSeconds": expiration,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                        "name": pod["metadata"]["name"],
                                        "uid": pod["metadata"]["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        try:
            answer = self.kube.request(
                "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        except ApiException as exc:
            raise VolumeNotReady("FailedMount", (
                f"cannot get a token for service account {namespace}/{service_account}: "
                f"{exc.status} {exc.reason}")) from exc
        return answer["status"]["token"]


@dataclass
class Process:
    proc: subprocess.Popen
    started_at: str
    log_path: Path
    log_offset: int
    termination_file: Path
    start_error_file: Path


class PodWorker:
    """One thread per pod, from its first sight on the node to a terminal phase or its
    deletion."""

    def __init__(self, rt: NodeRuntime, pod: Obj, on_done: Callable[[str], None]) -> None:
        self.rt = rt
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir = rt.run_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.on_done = on_done
        self.wake = threading.Event()
        self.gone = False  # the pod object no longer exists
        self.hosts: PodHosts | None = None  # /etc/hosts of a pod with a subdomain
        spec = pod["spec"]
        first_reason = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.init = [ContainerRecord(c["name"], c.get("image", ""),
                                     {"waiting": {"reason": "PodInitializing"}})
                     for c in spec.get("initContainers") or []]
        self.main = [ContainerRecord(c["name"], c.get("image", ""),
                                     {"waiting": {"reason": first_reason}})
                     for c in spec["containers"]]
        self.starts: dict[str, int] = {}
        self.procs: dict[str, Process] = {}
        self.next_start: dict[str, float] = {}
        self.volumes: dict[str, Volume] = {}
        self.start_time = (pod.get("status") or {}).get("startTime") or now_iso()
        self.started_monotonic = time.monotonic()
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.initialized = not self.init
        self.sandbox_ready = False
        self._last_report: str | None = None
        self._warned: set[str] = set()
        self.thread = threading.Thread(target=self._main, daemon=True,
                                       name=f"pod {self.namespace}/{self.name}")

    # -- inputs from the node's pod watch --------------------------------------------

    def update(self, pod: Obj) -> None:
        if int(pod["metadata"]["resourceVersion"]) >= int(self.pod["metadata"]["resourceVersion"]):
            self.pod = pod
        self.wake.set()

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    def _sleep(self, seconds: float = POLL_SECONDS) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    # -- lifecycle -------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._report()
            if self._prepare_volumes() and self._run_init_containers():
                self._run_containers()
        except Exception:
            log.exception("pod %s/%s: node agent error", self.namespace, self.name)
            self._kill_all(grace=0)
        finally:
            self.rt.claims.release(self.uid)
            self.on_done(self.uid)
            log.info("pod %s/%s: done (phase %s)", self.namespace, self.name, self.phase)

    def _why_stop(self) -> str | None:
        if self.gone or self.pod["metadata"].get("deletionTimestamp"):
            return "deleted"
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is not None and time.monotonic() - self.started_monotonic > deadline:
            return "deadline"
        return None

    def _prepare_volumes(self) -> bool:
        while True:
            why = self._why_stop()
            if why:
                self._stop_pod(why)
                return False
            try:
                self.volumes = prepare_volumes(self.pod, self.dir, self.rt.node, self.rt.lookup,
                                               self.rt.issue_token, self.rt.claims)
                self.sandbox_ready = True
                return True
            except VolumeNotReady as exc:
                self._warn_once(exc.reason, str(exc))
            self._report()
            self._sleep(1.0)

    def _run_init_containers(self) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for spec, record in zip(self.pod["spec"].get("initContainers") or [], self.init):
            if spec.get("restartPolicy") == "Always":
                self.reason = "SidecarsNotSupported"
                self.message = (f"init container {spec['name']!r} is a sidecar "
                                "(restartPolicy: Always): the test node agent does not run those")
                self._warn_once("Failed", self.message)
                self._finish("Failed")
                return False
            self.next_start[spec["name"]] = 0.0
            while True:
                why = self._why_stop()
                if why:
                    self._stop_pod(why)
                    return False
                code = self._step(spec, record,
                                  restart=lambda code: code != 0 and policy != "Never")
                if code == 0:
                    break
                if code is not None and policy == "Never":
                    self._finish("Failed")
                    return False
                self._report()
                self._sleep()
        self.initialized = True
        for record in self.main:
            record.state = {"waiting": {"reason": "ContainerCreating"}}
        return True

    def _run_containers(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        specs = self.pod["spec"]["containers"]
        for spec in specs:
            self.next_start[spec["name"]] = 0.0
        while True:
            why = self._why_stop()
            if why:
                self._stop_pod(why)
                return
            for spec, record in zip(specs, self.main):
                self._step(spec, record, restart=lambda code: policy == "Always"
                           or (policy == "OnFailure" and code != 0))
            phase = pod_phase(self.main, policy)
            if phase in ("Succeeded", "Failed"):
                self._finish(phase)
                return
            self.phase = phase
            self._report()
            if self.hosts is not None:
                self.hosts.refresh()
            self._sleep()

    def _step(self, spec: Obj, record: ContainerRecord,
              restart: Callable[[int], bool]) -> int | None:
        """Starts the container when due, or notices it exited: returns its exit code
        when it just exited, else None. An exited container is scheduled to start again
        when `restart(exit code)` says so."""
        name = spec["name"]
        if name in self.procs:
            code = self._reap(spec, record)
            if code is not None and restart(code):
                self._schedule_restart(name, record)
            return code
        due = self.next_start.get(name)
        if due is not None and time.monotonic() >= due:
            self._start(spec, record)
        return None

    def _schedule_restart(self, name: str, record: ContainerRecord) -> None:
        restarts = max(0, self.starts.get(name, 1) - 1)
        delay = min(self.rt.backoff_base * 2 ** restarts, self.rt.backoff_max)
        self.next_start[name] = time.monotonic() + delay
        record.last_state = record.state
        message = (f"back-off {delay:g}s restarting failed container={name} "
                   f"pod={self.name}_{self.namespace}({self.uid})")
        record.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        record_pod_event(self.rt.kube, self.pod, self.rt.node.name, "BackOff",
                         "Back-off restarting failed container " + name, "Warning")

    def _finish(self, phase: str) -> None:
        self.phase = phase
        self.next_start.clear()
        self.rt.claims.release(self.uid)  # a finished pod no longer holds its claims
        # Kubelet's status manager retries a terminal status until the API server has
        # it: a pod that ends while the API server is down must not stay Running.
        while not self._report() and not self.gone:
            self._sleep(1.0)

    def _stop_pod(self, why: str) -> None:
        """Deletion or deadline: stop every container, report, and complete a
        deletion."""
        self.next_start.clear()
        if why == "deadline":
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
            self._kill_all(grace)
            self.reason = "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            record_pod_event(self.rt.kube, self.pod, self.rt.node.name, "DeadlineExceeded",
                             self.message, "Normal")
            self._finish("Failed")
            return
        grace = 0 if self.gone else self.pod["metadata"].get("deletionGracePeriodSeconds", 30)
        self._kill_all(grace)
        if self.gone:
            return
        # Kubelet's getPhase for a terminated pod: Succeeded only if every container
        # exited 0. Its status manager sends the terminal status (with the containers'
        # terminated states, and every condition it does not own, such as the Eviction
        # API's DisruptionTarget, which a Job's podFailurePolicy looks for) and deletes
        # the pod only once the API server has it.
        if self.phase not in ("Succeeded", "Failed"):
            done_ok = all(c.terminated and c.terminated["exitCode"] == 0 for c in self.main)
            self.phase = "Succeeded" if done_ok else "Failed"
        deadline = time.monotonic() + FINAL_REPORT_SECONDS
        while not self._report():
            if self.gone:
                return
            if time.monotonic() > deadline:
                log.warning("pod %s/%s: deleting it without its final status",
                            self.namespace, self.name)
                break
            time.sleep(0.5)
        try:
            self.rt.kube.request("DELETE", pod_path(self.namespace, self.name), {
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # -- processes -------------------------------------------------------------------

    def _start(self, spec: Obj, record: ContainerRecord) -> None:
        name = spec["name"]
        markers = {RUN_MARKER: self.rt.run_id, POD_MARKER: self.uid}
        try:
            uid, gid = run_as(self.pod, spec)
            # An unknown non-root user has no home; runtimes then use "/".
            env = container_env(self.pod, spec, self.rt.node, self.rt.lookup, markers,
                                home="/root" if not uid else "/")
            argv = container_argv(spec, env, self.rt.entrypoints)
            mounts = self._mounts(spec, env)
        except (ConfigError, VolumeNotReady) as exc:
            record.state = {"waiting": {"reason": "CreateContainerConfigError",
                                        "message": str(exc)}}
            self._warn_once("Failed", f"Error: {exc}")
            self.next_start[name] = time.monotonic() + 2.0
            return
        cdir = self.dir / "containers" / name
        (cdir / "root").mkdir(parents=True, exist_ok=True)
        termination = cdir / "termination-log"
        termination.write_bytes(b"")
        termination.chmod(0o666)
        start_error = cdir / "start-error"
        start_error.unlink(missing_ok=True)
        mounts.append({"source": str(termination), "kind": "file", "readonly": False,
                       "target": spec.get("terminationMessagePath") or "/dev/termination-log"})
        hosts = self._pod_hosts()
        if hosts is not None:  # <hostname>.<subdomain> names (pod_dns.py)
            hosts.refresh(force=True)
            mounts.append({"source": str(hosts.path), "kind": "file", "readonly": True,
                           "target": "/etc/hosts"})
        mounts.extend(image_mounts(mounts))
        launch = {
            "parent_pid": os.getpid(),
            "root": str(cdir / "root"),
            "argv": argv,
            "env": env,
            "working_dir": spec.get("workingDir") or "/",
            "uid": uid,
            "gid": gid,
            "mounts": mounts,
            "start_error_file": str(start_error),
            "traverse": image_paths() + [str(shared_host_dir(self.rt.run_dir))],
        }
        (cdir / "launch.json").write_text(json.dumps(launch, indent=1))
        log_path = container_log_path(self.rt.run_dir, self.namespace, self.name, name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log_file:
            # The launcher sets its own parent-death signal: no preexec_fn in a threaded
            # process. This thread lives as long as the process, as the signal needs.
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(cdir / "launch.json")],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, env={**markers, "PATH": os.environ.get("PATH", "")})
        self.starts[name] = self.starts.get(name, 0) + 1
        record.restart_count = self.starts[name] - 1
        record.container_id = f"nas-test://{self.uid[:8]}-{name}-{self.starts[name]}"
        started = now_iso()
        record.state = {"running": {"startedAt": started}}
        self.procs[name] = Process(proc, started, log_path, offset, termination, start_error)
        self.next_start.pop(name, None)
        record_pod_event(self.rt.kube, self.pod, self.rt.node.name, "Started",
                         f"Started container {name}")

    def _pod_hosts(self) -> PodHosts | None:
        """The pod's /etc/hosts when it has a subdomain (made once, shared by its containers)."""
        subdomain = self.pod["spec"].get("subdomain")
        if subdomain and self.hosts is None:
            self.hosts = PodHosts(self.rt.kube, self.namespace, subdomain, self.dir / "hosts")
        return self.hosts

    def _mounts(self, spec: Obj, env: dict[str, str]) -> list[Obj]:
        mounts = []
        for vm in spec.get("volumeMounts") or []:
            volume = self.volumes.get(vm["name"])
            if volume is None:
                raise ConfigError(f"volumeMount {vm['name']!r} names no volume of the pod")
            source = volume.path
            sub = vm.get("subPath") or expand(vm.get("subPathExpr", ""), env)
            if sub:
                source = source / sub
                if not source.exists():
                    source.mkdir(parents=True)  # kubelet makes missing subPaths
            mounts.append({"source": str(source), "target": vm["mountPath"],
                           "kind": "dir" if source.is_dir() else "file",
                           "readonly": bool(vm.get("readOnly")) or volume.read_only})
        return mounts

    def _reap(self, spec: Obj, record: ContainerRecord) -> int | None:
        """If the container's process exited: records it as terminated and returns its
        exit code (128+N for signal N)."""
        name = spec["name"]
        running = self.procs[name]
        code = running.proc.poll()
        if code is None:
            return None
        del self.procs[name]
        _kill_group(running.proc.pid, signal.SIGKILL)  # what it left behind dies with it
        code = 128 - code if code < 0 else code
        finished = now_iso()
        if running.start_error_file.exists() and running.start_error_file.stat().st_size:
            code = 128
            terminated = {"exitCode": 128, "reason": "StartError",
                          "message": running.start_error_file.read_text(errors="replace"),
                          "startedAt": running.started_at, "finishedAt": finished}
        else:
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                          "startedAt": running.started_at, "finishedAt": finished}
            message = _read_head(running.termination_file, MAX_TERMINATION_MESSAGE)
            if (not message and code != 0
                    and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"):
                message = _log_tail(running.log_path, running.log_offset)
            if message:
                terminated["message"] = message
        terminated["containerID"] = record.container_id
        record.state = {"terminated": terminated}
        return code

    def _kill_all(self, grace: float) -> None:
        """SIGTERM to every container, SIGKILL to what is left after `grace` seconds,
        including processes that left their process group."""
        for name, running in self.procs.items():
            record_pod_event(self.rt.kube, self.pod, self.rt.node.name, "Killing",
                             f"Stopping container {name}")
            _kill_group(running.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while (any(r.proc.poll() is None for r in self.procs.values())
               and time.monotonic() < deadline):
            time.sleep(0.05)
        for running in self.procs.values():
            _kill_group(running.proc.pid, signal.SIGKILL)
        sweep_marked(f"{POD_MARKER}={self.uid}", grace=0)
        records = {r.name: r for r in self.init + self.main}
        specs = {c["name"]: c for c in (self.pod["spec"].get("initContainers") or [])
                 + self.pod["spec"]["containers"]}
        for name in list(self.procs):
            self.procs[name].proc.wait()
            self._reap(specs[name], records[name])

    # -- reporting -------------------------------------------------------------------

    def _warn_once(self, reason: str, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.info("pod %s/%s: %s: %s", self.namespace, self.name, reason, message)
            record_pod_event(self.rt.kube, self.pod, self.rt.node.name, reason, message,
                             "Warning")

    def _report(self) -> bool:
        """Patches the pod's status when it changed since the last report. False when
        the patch failed (it is tried again at the next report) or the pod is gone."""
        if self.gone:
            return False
        status = build_status(
            self.pod, phase=self.phase, host_ip=self.rt.node.host_ip,
            start_time=self.start_time, init_containers=self.init, containers=self.main,
            initialized=self.initialized, sandbox_ready=self.sandbox_ready,
            reason=self.reason, message=self.message)
        patch = status_patch(status, self.uid)
        key = json.dumps({**patch["status"], "conditions": [
            (c["type"], c["status"]) for c in patch["status"]["conditions"]]}, sort_keys=True)
        if key == self._last_report:
            return True
        try:
            updated = self.rt.kube.request("PATCH", pod_path(self.namespace, self.name) + "/status",
                                           patch, content_type=STRATEGIC_MERGE_PATCH)
        except ApiException as exc:
            if exc.status == 404 or (exc.status == 422 and self._replaced()):
                self.gone = True
            else:  # tried again at the next change or poll
                log.warning("pod %s/%s: status update failed: %s %s",
                            self.namespace, self.name, exc.status, exc.body)
            return False
        except Exception as exc:  # a dropped connection, a timeout
            log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc)
            return False
        self._last_report = key
        self.update(updated)
        return True

    def _replaced(self) -> bool:
        """The pod's name now belongs to another pod (the uid precondition failed)."""
        try:
            current = self.rt.kube.get_or_none(pod_path(self.namespace, self.name))
        except Exception:
            return False
        return current is None or current["metadata"]["uid"] != self.uid


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_head(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


def _log_tail(path: Path, offset: int, lines: int = 80, limit: int = 2048) -> str:
    """The last lines the container wrote in this run (FallbackToLogsOnError)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return ""
    text = b"\n".join(data.splitlines()[-lines:])[-limit:]
    return text.decode(errors="replace")


def image_mounts(mounts: list[Obj]) -> list[Obj]:
    """The project folder stands for the image's contents (the virtualenv and the
    editable sources). A volume mounted over one of its parents, such as an emptyDir at
    /tmp while the checkout lives under /tmp, must not hide it: bind it back on top."""
    project = str(REPO_ROOT)
    shadowed = any(m["kind"] == "dir" and project.startswith(m["target"].rstrip("/") + "/")
                   for m in mounts)
    if not shadowed:
        return []
    return [{"source": project, "target": project, "kind": "dir", "readonly": False}]



def image_paths() -> list[str]:
    """What a container must reach to run the image's programs: the project (virtualenv
    and sources) and the interpreter the virtualenv was made from."""
    return sorted({str(REPO_ROOT), sys.prefix, sys.base_prefix,
                   os.path.dirname(os.path.realpath(sys.executable))})


def shared_host_dir(run_dir: Path) -> Path:
    """A folder of the host that every container sees and may write, whatever its user:
    where tests leave marks a later attempt of a pod reads (pods have their own /tmp)."""
    return run_dir / "host"
