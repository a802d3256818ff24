"""How the operator copes with a long search: one nas-bench-graph (Cora) ArchitectureSearch
of --trials trials (default 2,000) on the real test control plane (tests/cluster/), run by
the real operator, controller pod (`nas-controller`) and trial pods (`nas-train`).

    .venv/bin/python benchmarks/operator_scale.py                 # 2,000 trials, 16 at once
    .venv/bin/python benchmarks/operator_scale.py --trials 100    # a few minutes
    .venv/bin/python benchmarks/operator_scale.py --trials 200 --mode WarmPool   # warm workers

Measures the time from `kubectl apply` to the first trial pod Running, the wall time to
Succeeded, trials per minute, and the size of every object of the namespace as listed
through the API (`len(json.dumps(obj))`): the top 5 and the ArchitectureSearch's own size
(largest seen while it ran, and at the end). The reference, measured in the same run
before the cluster starts: the same manifest run by `nas run` on this machine (the
in-process tabular evaluator), so the operator's overhead per trial shows.

With --instant: the operator's own overhead at high concurrency, with trials that cost
nothing (a shell trainer that writes its result JSON at once, in a custom space of 10^6
architectures, random strategy). Two searches on the same cluster and operator: the
reference (--reference-parallelism, default 10 at once, --reference-trials) and the
measured one (--parallelism, e.g. 1,000 at once, --trials, e.g. 20,000). Per step, p50 /
p99 / max seconds (step_timeline.py): Trial created -> pod created, pod finished ->
reward in the Trial's status, reward -> next Trial created; the operator's CPU seconds
and peak RSS (/proc), the largest object, and the Jobs, Pods and Events left at the end.

    .venv/bin/python benchmarks/operator_scale.py --instant --trials 2000 --parallelism 100
    .venv/bin/python benchmarks/operator_scale.py --instant --trials 20000 --parallelism 1000

Needs the control-plane binaries (`make binaries`). Everything started is stopped at the
end, on Ctrl-C and on SIGTERM too.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
for folder in (REPO_ROOT, REPO_ROOT / "tests" / "e2e", REPO_ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import step_timeline  # noqa: E402
from test_operator_fixtures import apply, apply_crds, kube, kubectl  # noqa: E402
from test_search_e2e_helpers import search, search_path, start_search_operator  # noqa: E402
from tests.cluster.controlplane import ControlPlane  # noqa: E402
from tests.cluster.waiting import wait_for  # noqa: E402

NAME = "cora"
NAMESPACE = "operator-scale"
FINAL = ("Succeeded", "Failed")
# (kind, list path under the namespace): everything a search makes, and what the
# cluster adds to a namespace.
RESOURCES = [
    ("ArchitectureSearch", "/apis/archsearch.io/v1alpha1/namespaces/{ns}/architecturesearches"),
    ("Trial", "/apis/archsearch.io/v1alpha1/namespaces/{ns}/trials"),
    ("Job", "/apis/batch/v1/namespaces/{ns}/jobs"),
    ("Pod", "/api/v1/namespaces/{ns}/pods"),
    ("ConfigMap", "/api/v1/namespaces/{ns}/configmaps"),
    ("Lease", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"),
    ("Event", "/api/v1/namespaces/{ns}/events"),
    ("ServiceAccount", "/api/v1/namespaces/{ns}/serviceaccounts"),
    ("Role", "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
    ("RoleBinding", "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
    ("PersistentVolumeClaim", "/api/v1/namespaces/{ns}/persistentvolumeclaims"),
]


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


# reinforce as tuned on cora (benchmarks/results/tuning-cora.md): the entropy bonus keeps
# the policy from collapsing, so it proposes new architectures for all 2,000 trials. With
# the e2e test's settings ({"seed": 0, "rewardNormalization": "std"}) the policy collapses
# and the search ends SpaceExhausted after ~1,000-1,200 trials, with fewer than
# `parallelism` trials running towards the end.
TUNED_REINFORCE = {"seed": 0, "rewardNormalization": "rank", "learningRate": 0.03,
                   "batchSize": 4, "entropyWeight": 0.3}


def manifest(trials: int, parallelism: int, namespace: str,
             strategy: dict[str, Any], mode: str = "Job") -> dict[str, Any]:
    """The search of test_search_e2e's 50-trial test, at this scale; ``mode`` is
    spec.trials.mode (Job: a Job per trial; WarmPool: parallelism worker pods)."""
    return search(NAME, namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                  {"name": "reinforce", **strategy},
                  {"max": trials, "parallelism": parallelism, "timeoutSeconds": 120,
                   "mode": mode})


# -- the reference: `nas run` on this machine ----------------------------------------------

def run_locally(doc: dict[str, Any]) -> dict[str, Any]:
    """`nas run` of the same manifest; wall time of the whole command and the loop's own."""
    with tempfile.TemporaryDirectory(prefix="operator-scale-") as tmp:
        path = Path(tmp) / "search.yaml"
        local = json.loads(json.dumps(doc))
        local["metadata"].pop("namespace", None)
        path.write_text(yaml.safe_dump(local))
        started = time.monotonic()
        done = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "nas"), "run", str(path),
                               "--out", str(Path(tmp) / "out")],
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"nas run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        found = re.search(r"(\w+): (\d+) trials \((\d+) failed, (\d+) known.*?in ([\d.]+) s",
                          done.stdout, re.S)
        best = json.loads((Path(tmp) / "out" / "best.json").read_text())
        if not found:
            raise RuntimeError(f"nas run printed no summary:\n{done.stdout}")
        return {"wall": wall, "loop": float(found.group(5)), "decision": found.group(1),
                "trials": int(found.group(2)), "failed": int(found.group(3)),
                "known": int(found.group(4)), "best": best.get("reward")}


# -- the namespace's objects ---------------------------------------------------------------

def list_all(k, path: str) -> list[dict[str, Any]]:
    """Every item of a list, read in pages."""
    items, token = [], None
    while True:
        page = k.get(path, limit=500, **({"continue": token} if token else {}))
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def object_sizes(k, namespace: str) -> tuple[list[tuple[str, str, int]], dict[str, int],
                                                list[dict[str, Any]]]:
    """(kind, name, bytes) of every object, counts per kind, and the Trials (as listed).
    An item gets its kind and apiVersion back, as a GET of it would return it."""
    sizes, counts, trials = [], {}, []
    for kind, template in RESOURCES:
        items = list_all(k, template.format(ns=namespace))
        counts[kind] = len(items)
        for item in items:
            obj = {"apiVersion": _item_version(template), "kind": kind, **item}
            sizes.append((kind, item["metadata"]["name"], len(json.dumps(obj))))
        if kind == "Trial":
            trials = items
    sizes.sort(key=lambda s: -s[2])
    return sizes, counts, trials


def _item_version(template: str) -> str:
    parts = template.split("/namespaces/")[0].strip("/").split("/")
    return "/".join(parts[1:])  # "api/v1" -> "v1", "apis/batch/v1" -> "batch/v1"


# -- the run on the cluster ----------------------------------------------------------------

def create_namespace(k, namespace: str) -> None:
    k.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    wait_for(lambda: k.get_or_none(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
             f"the default ServiceAccount of {namespace}", timeout=60)


def wait_first_trial_pod_running(k, namespace: str, deadline: float, mode: str) -> float:
    """Monotonic time at which a watch saw the first trial pod (WarmPool: worker pod)
    Running."""
    path = f"/api/v1/namespaces/{namespace}/pods"
    selector = "archsearch.io/component=worker" if mode == "WarmPool" else "archsearch.io/trial"
    while time.monotonic() < deadline:
        query = {"watch": "1", "labelSelector": selector, "timeoutSeconds": 120}
        for line in k.stream_lines(path, query, read_timeout=150):
            event = json.loads(line)
            if (event.get("object", {}).get("status") or {}).get("phase") == "Running":
                return time.monotonic()
        phase = ((k.get(search_path(namespace, NAME)).get("status") or {}).get("phase"))
        if phase in FINAL:
            raise RuntimeError(f"the search ended ({phase}) before a trial pod ran")
    raise TimeoutError("no trial pod Running")


def run_on_cluster(args, doc: dict[str, Any], plane_box: list) -> dict[str, Any]:
    plane = ControlPlane.start()
    plane_box.append(plane)
    cluster = plane.cluster
    times = cluster.startup_seconds
    log(f"test cluster up in {times['total']:.1f}s; logs in {cluster.run_dir}")
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    k = kube(cluster)
    create_namespace(k, args.namespace)
    apply_crds(cluster)
    operator = start_search_operator(cluster, [args.namespace])
    plane_box.append(operator.process)
    log(f"operator running (log {operator.process.log_path})")

    result: dict[str, Any] = {"run_dir": str(cluster.run_dir), "startup": times["total"]}
    started = time.monotonic()
    apply(cluster, doc)
    first_pod = wait_first_trial_pod_running(k, args.namespace, started + 600, args.mode)
    result["first_pod"] = first_pod - started
    log(f"first trial pod Running {result['first_pod']:.1f}s after apply")

    search_max, mid_scan, last_print, obj = 0, None, 0.0, {}
    deadline = started + args.timeout
    while True:
        obj = k.get(search_path(args.namespace, NAME))
        now = time.monotonic()
        search_max = max(search_max, len(json.dumps(obj)))
        status = obj.get("status") or {}
        done = (status.get("trials") or {})
        finished = (done.get("succeeded") or 0) + (done.get("failed") or 0)
        if status.get("phase") in FINAL:
            break
        if mid_scan is None and finished >= args.trials // 2:
            mid_scan = object_sizes(k, args.namespace)[0]
            log(f"half-way scan: largest {mid_scan[0][0]} {mid_scan[0][1]} {mid_scan[0][2]} B")
        if now - last_print >= 60:
            minutes = (now - started) / 60
            log(f"{finished}/{args.trials} trials done, {done.get('running', 0)} running, "
                f"{finished / minutes:.1f} trials/min, search object {search_max} B max")
            last_print = now
        if now > deadline:
            raise TimeoutError(f"the search did not finish in {args.timeout}s "
                               f"({finished}/{args.trials} trials done)")
        time.sleep(args.poll)
    result["wall"] = now - started
    status = obj["status"]
    result.update(phase=status.get("phase"), decision=(status.get("controller") or {}).get("decision"),
                  counts=status.get("trials"), best=(status.get("best") or {}).get("reward"))
    log(f"search {result['phase']} after {result['wall']:.1f}s")

    sizes, kinds, trials = object_sizes(k, args.namespace)
    ended = {(kind, name): size for kind, name, size in sizes}
    merged = dict(ended)
    for kind, name, size in mid_scan or []:
        if size > merged.get((kind, name), 0):
            merged[(kind, name)] = size
    top = sorted(merged.items(), key=lambda item: -item[1])[:5]
    result["top"] = [(kind, name, size, "end" if ended.get((kind, name)) == size else "half-way")
                     for (kind, name), size in top]
    result["kinds"] = kinds
    result["search_end"] = ended[("ArchitectureSearch", NAME)]
    result["search_max"] = max(search_max, result["search_end"])
    seconds = [t["status"]["seconds"] for t in trials
               if isinstance((t.get("status") or {}).get("seconds"), (int, float))]
    result["trial_seconds"] = statistics.median(seconds) if seconds else None
    attempts = [(t.get("status") or {}).get("attempts") or 0 for t in trials]
    result["retried"] = sum(1 for a in attempts if a > 1)

    searches = kubectl(cluster, "get", "archsearch", "-n", args.namespace).stdout.rstrip()
    table = kubectl(cluster, "get", "trials", "-n", args.namespace).stdout.rstrip().splitlines()
    result["kubectl"] = ("$ kubectl get archsearch\n" + searches + "\n\n$ kubectl get trials"
                         f"  (first and last 5 of {len(table) - 1})\n"
                         + "\n".join(table[:6] + ["..."] + table[-5:]))
    return result


# -- instant trials: the operator's overhead per step ---------------------------------------

# The trainer of --instant: writes a result JSON (contract 3) to the termination message at
# once; the reward varies with the trial index. `$$` is kubelet's escape for `$`.
INSTANT_TRAINER = ("printf '{\"schema\": \"nas.result/v1\", \"reward\": 0.%03d}' "
                   "$$(( NAS_TRIAL_INDEX * 7919 % 1000 )) > /dev/termination-log")
# 6 decisions of 10 choices: 10^6 architectures, so 20,000 random ones are nearly all new
INSTANT_SPACE = {"name": "custom",
                 "decisions": [{"name": f"d{i}", "choices": list(range(10))} for i in range(6)]}
REFERENCE_NAMESPACE = "scale-reference"
LONG_NAMESPACE = "scale-long"
STEP_TARGET_SECONDS = 1.0
RSS_TARGET_MIB = 300
OBJECT_TARGET_BYTES = 100 * 1024
# after the end: the status loop looks at a finished search every 60 s, the cleanup sweeps
# its Events at most every 30 s
SETTLE_SECONDS = 90
# the controller pod's lease as in production (the e2e helper's is 3 s, for fast takeovers:
# on a loaded machine a starved controller then loses it and is replaced mid-search)
CONTROLLER_LEASE_SECONDS = 15


def instant_manifest(name: str, namespace: str, trials: int, parallelism: int) -> dict[str, Any]:
    """No final training: the search ends with its last trial."""
    doc = search(name, namespace, INSTANT_SPACE, {"name": "random", "seed": 0},
                 {"max": trials, "parallelism": parallelism, "timeoutSeconds": 3600,
                  "maxFailed": max(1, trials // 10)},
                 trainer={"command": ["sh", "-c", INSTANT_TRAINER]})
    doc["spec"]["finalTraining"] = {"enabled": False}
    return doc


def controller_pid(search_name: str) -> int | None:
    """The controller pod's process (the node agent runs it as a local process)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (any(part.endswith(b"nas-controller") for part in cmdline[:2])
                and f"NAS_SEARCH_NAME={search_name}".encode() in environ):
            return int(entry.name)
    return None


def count(k, namespace: str, kind: str) -> int:
    template = dict(RESOURCES)[kind]
    return len(list_all(k, template.format(ns=namespace)))


def run_instant_search(k, cluster, namespace: str, name: str, trials: int, parallelism: int,
                       pids: dict[str, int], args, stop_after: float | None = None
                       ) -> dict[str, Any]:
    """One search of instant trials, watched step by step; returns what the report shows.
    ``stop_after``: seconds after which it is measured as it stands, finished or not."""
    timeline = step_timeline.Timeline()
    stop = threading.Event()
    step_timeline.watch_namespace(k, namespace, timeline, stop)
    sampler = step_timeline.ProcessSampler(pids).start()
    log(f"{name}: {trials} instant trials, {parallelism} at once, in {namespace}")
    started = time.monotonic()
    apply(cluster, instant_manifest(name, namespace, trials, parallelism))
    search_max, last_print, controller, series = 0, 0.0, None, []
    deadline = started + args.timeout
    while True:
        obj = k.get(search_path(namespace, name))
        now = time.monotonic()
        search_max = max(search_max, len(json.dumps(obj)))
        status = obj.get("status") or {}
        done = status.get("trials") or {}
        finished = (done.get("succeeded") or 0) + (done.get("failed") or 0)
        if controller is None and (pid := controller_pid(name)) is not None:
            controller = pid
            sampler.pids["controller pod"] = pid
            sampler.peak_rss_kib["controller pod"] = 0
            sampler.cpu_start["controller pod"] = step_timeline.cpu_seconds(pid)
        if status.get("phase") in FINAL:
            break
        if stop_after is not None and now - started >= stop_after:
            log(f"{name}: stopped watching after {stop_after:g} s (--stop-after), "
                f"{finished}/{trials} done")
            break
        if now - last_print >= 30:
            rss = step_timeline.memory_kib(pids["operator"])[0] / 1024
            series.append((now - started, finished, len(timeline.trial_created), rss,
                           len(json.dumps(obj)), os.getloadavg()[0]))
            log(f"{name}: {finished}/{trials} done, {len(timeline.trial_created)} created, "
                f"in flight max {timeline.max_in_flight}, live pods max "
                f"{timeline.max_live_pods}, operator RSS "
                f"{sampler.peak_rss_kib['operator'] / 1024:.0f} MiB, load "
                f"{os.getloadavg()[0]:.1f}")
            last_print = now
        if now > deadline:
            stop.set()
            sampler.stop()
            raise TimeoutError(f"{name} did not finish in {args.timeout}s ({finished}/{trials})")
        time.sleep(args.poll)
    wall = now - started
    sampler.stop()
    status = obj["status"]
    log(f"{name}: {status.get('phase')} after {wall:.1f}s; listing the namespace")
    sizes, kinds, _ = object_sizes(k, namespace)
    largest: dict[str, tuple[str, int]] = {}
    for kind, obj_name, size in sizes:
        if size > largest.get(kind, ("", -1))[1]:
            largest[kind] = (obj_name, size)
    time.sleep(args.settle)
    settled = {kind: count(k, namespace, kind) for kind in ("Job", "Pod", "Event")}
    left = collections.Counter(
        f"{e['involvedObject'].get('kind')} {e.get('reason')}"
        for e in list_all(k, dict(RESOURCES)["Event"].format(ns=namespace)))
    stop.set()
    return {
        "name": name, "namespace": namespace, "trials": trials, "parallelism": parallelism,
        "phase": status.get("phase"), "finished": finished,
        "decision": (status.get("controller") or {}).get("decision"),
        "counts": status.get("trials") or {}, "wall": wall,
        "steps": timeline.steps(parallelism), "max_in_flight": timeline.max_in_flight,
        "max_live_pods": timeline.max_live_pods, "seen": len(timeline.trial_created),
        "cpu": dict(sampler.cpu), "rss_mib": {n: v / 1024 for n, v in sampler.peak_rss_kib.items()},
        "largest": largest, "search_max": search_max, "kinds_at_end": kinds,
        "kinds_settled": settled, "events_left": left.most_common(6), "series": series,
        "load": os.getloadavg()[0],
    }


def suspend(k, namespace: str, name: str) -> None:
    """Suspend a search left running (--stop-after) so it stops loading the cluster."""
    k.request("PATCH", search_path(namespace, name), {"spec": {"suspend": True}},
              content_type="application/merge-patch+json")


def run_instant(args, plane_box: list) -> dict[str, Any]:
    """The reference search, then (with --long-trials) the long one, then the measured one:
    each in its own namespace, on one cluster and one operator."""
    plan = [("reference", REFERENCE_NAMESPACE, args.reference_trials,
             args.reference_parallelism, None)]
    if args.long_trials:
        plan.append(("long", LONG_NAMESPACE, args.long_trials, args.long_parallelism,
                     args.long_stop_after))
    plan.append(("scale", args.namespace, args.trials, args.parallelism, args.stop_after))
    plane = ControlPlane.start()
    plane_box.append(plane)
    cluster = plane.cluster
    log(f"test cluster up in {cluster.startup_seconds['total']:.1f}s; logs in {cluster.run_dir}")
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    k = kube(cluster)
    namespaces = [namespace for _, namespace, *_ in plan]
    for namespace in namespaces:
        create_namespace(k, namespace)
    apply_crds(cluster)
    operator = start_search_operator(cluster, namespaces, env={
        "NAS_OPERATOR_CONTROLLER_COMMAND": json.dumps([
            "sh", "-c", f"NAS_LEASE_SECONDS={CONTROLLER_LEASE_SECONDS} exec nas-controller"]),
    })
    plane_box.append(operator.process)
    pids = {"operator": operator.process.proc.pid,
            **{name: proc.pid for name, proc in plane.procs.items()}}
    log(f"operator running, pid {pids['operator']} (log {operator.process.log_path})")
    searches = []
    for name, namespace, trials, parallelism, stop_after in plan:
        searches.append(run_instant_search(k, cluster, namespace, name, trials, parallelism,
                                           pids, args, stop_after=stop_after))
        if searches[-1]["phase"] not in FINAL and name != "scale":
            suspend(k, namespace, name)
    _, hwm = step_timeline.memory_kib(pids["operator"])
    return {"searches": searches, "operator_hwm_mib": hwm / 1024,
            "run_dir": str(cluster.run_dir), "operator_log": str(operator.process.log_path)}


def derived_status_bytes(trials: int, running: int = 1000) -> int:
    """Size of the status the operator derives for a search with ``trials`` Trials (the last
    ``running`` of them running), from records alone: no cluster needed for 20,000."""
    from datetime import datetime, timezone

    from nas_operator.records import TrialRecord
    from nas_operator.search_status import derive_search_status

    running = min(running, trials // 2)
    search = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
              "metadata": {"name": "scale", "namespace": NAMESPACE, "generation": 1},
              "spec": {"trials": {"max": trials, "parallelism": running}},
              "status": {"observedGeneration": 1, "phase": "Running"}}
    records = [TrialRecord(name=f"scale-{i:05d}", index=i,
                           phase="Succeeded" if i < trials - running else "Running",
                           reward=(i * 7919 % 1000) / 1000, hash=f"{i:016x}",
                           summary="d0=1 d1=2 d2=3 d3=4 d4=5 d5=6") for i in range(trials)]
    status = derive_search_status(search, records, None, datetime.now(timezone.utc), 10)
    return len(json.dumps(status))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_instant(args, result: dict[str, Any], load_start: float) -> str:
    searches = result["searches"]
    pct = step_timeline.percentile
    loads = ", ".join(f"{s['load']:.1f} after {s['name']}" for s in searches)
    head = "| | " + " | ".join(s["name"] for s in searches) + " |"
    rule = "| --- |" + " ---: |" * len(searches)

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(s) for s in searches) + " |"

    def outcome(s: dict[str, Any]) -> str:
        counts = s["counts"]
        text = (f"{s['phase']} ({s['decision'] or '-'}): {counts.get('succeeded')} succeeded, "
                f"{counts.get('failed')} failed")
        return text if s["phase"] in FINAL else text + "; stopped watching (--stop-after)"

    sizes = " / ".join(f"{s['trials']} trials, {s['parallelism']} at once" for s in searches)
    lines = [
        f"## --instant: {sizes} ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"Instant trials (a shell trainer answering at once; custom space of 10^6, random "
        f"strategy), searches run one after the other on one test cluster and one operator. "
        f"Machine: {os.cpu_count()} CPUs shared with other users, load average "
        f"{load_start:.1f} at start, {loads}. Everything (etcd, API server, controller-manager, "
        f"scheduler, the node agent running every pod as a local process, the operator, the "
        f"controller pod, this benchmark's watches) shares those CPUs.",
        "",
        head, rule,
        row("trials, at once (spec)", lambda s: f"{s['trials']}, {s['parallelism']}"),
        row("result", outcome),
        row("wall time (apply → end, or --stop-after)", lambda s: f"{s['wall']:.1f} s"),
        row("trials finished", lambda s: str(s["finished"])),
        row("trials/s", lambda s: f"{s['finished'] / s['wall']:.2f}"),
        row("Trials in flight, most at once", lambda s: str(s["max_in_flight"])),
        row("trial pods alive, most at once", lambda s: str(s["max_live_pods"])),
    ]
    lines += ["", f"Seconds per step, p50 / p99 / max (target: p99 < {STEP_TARGET_SECONDS:g} s "
                  "at 1,000 at once); indented rows split the step above them; n: trials seen "
                  "at both ends:", "",
              "| step | " + " | ".join(f"{s['name']} p50 / p99 / max (n)" for s in searches)
              + " |", rule]
    for step in searches[0]["steps"]:
        cells = []
        for s in searches:
            values = s["steps"][step]
            cells.append(" / ".join(_seconds(pct(values, q)) for q in (0.5, 0.99, 1.0))
                         + f" ({len(values)})")
        label = step.replace("  ", "&nbsp;&nbsp;") if step.startswith(" ") else step
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "CPU seconds of each process during each search, and per finished trial; "
                  "largest resident memory (sampled every second):", "",
              "| process | " + " | ".join(f"{s['name']} CPU s (per trial)" for s in searches)
              + " | peak RSS MiB |", rule + " ---: |"]
    for proc in searches[-1]["cpu"]:
        cells = [f"{s['cpu'].get(proc, 0):.1f} "
                 f"({s['cpu'].get(proc, 0) / max(1, s['finished']) * 1000:.0f} ms)"
                 for s in searches]
        peak = max(s["rss_mib"].get(proc, 0) for s in searches)
        lines.append(f"| {proc} | " + " | ".join(cells) + f" | {peak:.0f} |")
    hwm = result["operator_hwm_mib"]
    lines += ["", f"Operator peak RSS over the whole run (VmHWM): {hwm:.0f} MiB (target < "
                  f"{RSS_TARGET_MIB} MiB: {'met' if hwm < RSS_TARGET_MIB else '**missed**'})."]
    biggest: dict[str, tuple[str, str, int]] = {}
    for s in searches:
        for kind, (name, size) in s["largest"].items():
            if size > biggest.get(kind, ("", "", -1))[2]:
                biggest[kind] = (s["name"], name, size)
    top = max(size for _, _, size in biggest.values())
    lines += ["", "Largest object of each kind, all searches (`len(json.dumps(obj))` as listed "
                  f"when each search ended or was stopped; target: none over 100 KiB: "
                  f"{'met' if top < OBJECT_TARGET_BYTES else '**missed**'}):", "",
              "| kind | search | name | bytes |", "| --- | --- | --- | ---: |"]
    for kind, (search_name, name, size) in sorted(biggest.items(), key=lambda kv: -kv[1][2]):
        lines.append(f"| {kind} | {search_name} | {name} | {size:,} |")
    lines += ["", head, rule,
              row("ArchitectureSearch, largest while it ran", lambda s: f"{s['search_max']:,} B")]
    lines += [row(f"{kind}s when it ended (or was stopped)",
                  lambda s, kind=kind: str(s["kinds_at_end"].get(kind))) for kind in
              ("Trial", "Job", "Pod", "Event")]
    lines += [row(f"{kind}s {args.settle:g} s later", lambda s, kind=kind: str(
        s["kinds_settled"][kind])) for kind in ("Job", "Pod", "Event")]
    lines += ["", "(The cleanup keeps the Jobs, with their pods, of the newest 3 succeeded and "
                  "10 failed trials of each search.)", "",
              "The status the operator derives (counts, best trial, conditions; never a list of "
              "trials), computed from Trial records alone: " + ", ".join(
                  f"{n:,} Trials {derived_status_bytes(n):,} bytes" for n in (200, 2000, 20000))
              + "."]
    for s in searches:
        lines += ["", f"`{s['name']}` as it went (read every 30 s):", "",
                  "| seconds | trials finished | Trials created | operator RSS MiB | "
                  "ArchitectureSearch bytes | load average |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {t:.0f} | {done} | {made} | {rss:.0f} | {size:,} | {load:.1f} |"
                  for t, done, made, rss, size, load in s["series"]]
        lines += ["", f"Events left {args.settle:g} s after, most common (involved kind, "
                      "reason): " + ", ".join(f"{what} {n}" for what, n in s["events_left"])
                  + "."]
    lines += ["", f"Logs: {result['run_dir']} (operator: {result['operator_log']}).", ""]
    return "\n".join(lines)


# -- the report ----------------------------------------------------------------------------

def report(args, cluster: dict[str, Any], local: dict[str, Any], load: tuple) -> str:
    n, n_ref = cluster["counts"].get("total") or 0, local["trials"]
    wall, ref = cluster["wall"], local["wall"]
    after_first = wall - cluster["first_pod"]
    fmt = lambda v, spec=".1f": "-" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"## --trials {args.trials} --parallelism {args.parallelism} --mode {args.mode} "
        f"({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"nas-bench-graph (cora), reinforce `{json.dumps(args.strategy)}`, "
        f"timeoutSeconds 120. Machine: {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} at start, {load[1]:.1f} at end (the machine was shared).",
        "",
        "| | operator on the test cluster | `nas run` here (reference) |",
        "| --- | ---: | ---: |",
        f"| result | {cluster['phase']} ({cluster['decision']}), {n} trials: "
        f"{cluster['counts'].get('succeeded')} succeeded, {cluster['counts'].get('failed')} failed"
        f" | {local['decision']}, {n_ref} trials: {local['failed']} failed "
        f"({local['known']} known proposals answered from results) |",
        f"| best reward | {fmt(cluster['best'], '.4f')} | {fmt(local['best'], '.4f')} |",
        f"| apply → first trial pod Running | {cluster['first_pod']:.1f} s | - |",
        f"| wall time (apply → Succeeded; `nas run` command) | {wall:.1f} s | {ref:.1f} s "
        f"(loop {fmt(local['loop'])} s) |",
        f"| trials/min | {n / wall * 60:.1f} | {n_ref / ref * 60:.0f} |",
        f"| trials/min after the first pod ran | {n / after_first * 60:.1f} | - |",
        f"| seconds per trial (wall / trials) | {wall / n:.3f} | {ref / n_ref:.4f} |",
        f"| operator overhead per trial (cluster − reference, per trial) | "
        f"{wall / n - ref / n_ref:.3f} s | |",
        f"| median trial seconds (Trial status) | {fmt(cluster['trial_seconds'], '.2f')} | |",
        f"| trials that needed a retry | {cluster['retried']} | |",
        "",
        "Largest objects of the namespace (listed through the API, `len(json.dumps(obj))`; "
        "scanned half-way and at the end):",
        "",
        "| kind | name | bytes | when |",
        "| --- | --- | ---: | --- |",
        *[f"| {kind} | {name} | {size:,} | {when} |" for kind, name, size, when in cluster["top"]],
        "",
        f"ArchitectureSearch `{NAME}`: {cluster['search_end']:,} bytes at the end, "
        f"{cluster['search_max']:,} bytes at most while it ran (read every {args.poll:g} s).",
        "",
        "Objects at the end: " + ", ".join(f"{kind} {count}"
                                            for kind, count in cluster["kinds"].items()) + ".",
        "",
        "```",
        cluster["kubectl"],
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=3 * 3600,
                        help="seconds to wait for the search to finish")
    parser.add_argument("--poll", type=float, default=2.0,
                        help="seconds between reads of the search object")
    parser.add_argument("--strategy", type=json.loads, default=TUNED_REINFORCE,
                        help="reinforce's options as JSON (default: tuned on cora, "
                             f"{json.dumps(TUNED_REINFORCE)})")
    parser.add_argument("--mode", choices=["Job", "WarmPool"], default="Job",
                        help="spec.trials.mode: a Job per trial, or warm worker pods")
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("--instant", action="store_true",
                        help="instant trials: per-step overhead against a reference search")
    parser.add_argument("--reference-trials", type=int, default=200)
    parser.add_argument("--reference-parallelism", type=int, default=10)
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS,
                        help="--instant: seconds between a search's end and the second count "
                             "of its Jobs, Pods and Events")
    parser.add_argument("--long-trials", type=int, default=0,
                        help="--instant: also a long search of this many trials, between the "
                             "reference and the measured one")
    parser.add_argument("--long-parallelism", type=int, default=20)
    parser.add_argument("--long-stop-after", type=float,
                        help="seconds after which the long search is measured as it stands "
                             "(then suspended)")
    parser.add_argument("--stop-after", type=float,
                        help="--instant: seconds after which the measured search is measured "
                             "as it stands, finished or not")
    parser.add_argument("--out", type=Path, help="where the table is written (default "
                        "results/operator_scale.md; results/operator_scale_warmpool.md "
                        "with --mode WarmPool)")
    args = parser.parse_args()
    if args.out is None:
        suffix = "_warmpool" if args.mode == "WarmPool" else ""
        suffix = "_instant" if args.instant else suffix
        args.out = REPO_ROOT / "benchmarks" / "results" / f"operator_scale{suffix}.md"

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    if args.instant:
        return main_instant(args)
    doc = manifest(args.trials, args.parallelism, args.namespace, args.strategy, args.mode)
    load_start = os.getloadavg()[0]
    log(f"reference: nas run, {args.trials} trials, parallelism {args.parallelism}")
    local = run_locally(doc)
    log(f"nas run: {local['wall']:.1f}s ({local['decision']} after {local['trials']} trials, "
        f"best {local['best']})")

    started: list = []  # what to stop: the control plane, then the operator
    try:
        cluster = run_on_cluster(args, doc, started)
    finally:
        for thing in reversed(started):
            thing.stop()
        if started:
            log("operator and control plane stopped")
    text = report(args, cluster, local, (load_start, os.getloadavg()[0]))
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Operator at scale (`benchmarks/operator_scale.py`)\n\n" + text)
    log(f"written to {args.out}")
    return 0


def main_instant(args) -> int:
    load_start = os.getloadavg()[0]
    started: list = []
    try:
        result = run_instant(args, started)
    finally:
        for thing in reversed(started):
            thing.stop()
        if started:
            log("operator and control plane stopped")
    text = report_instant(args, result, load_start)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Operator at scale, instant trials (`benchmarks/operator_scale.py "
                        "--instant`)\n\n" + text)
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
