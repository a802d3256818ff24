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

Needs the control-plane binaries (`make binaries`). Everything started is stopped at the
end, on Ctrl-C and on SIGTERM too.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
for folder in (REPO_ROOT, REPO_ROOT / "tests" / "e2e"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

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
    parser.add_argument("--out", type=Path, help="where the table is written (default "
                        "results/operator_scale.md; results/operator_scale_warmpool.md "
                        "with --mode WarmPool)")
    args = parser.parse_args()
    if args.out is None:
        suffix = "_warmpool" if args.mode == "WarmPool" else ""
        args.out = REPO_ROOT / "benchmarks" / "results" / f"operator_scale{suffix}.md"

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
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


if __name__ == "__main__":
    sys.exit(main())
