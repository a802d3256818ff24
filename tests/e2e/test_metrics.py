"""A real Prometheus (Debian's package) scrapes the operator and a search's controller
pod during a real search; every query of every shipped dashboard returns data."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from test_operator_fixtures import free_port, get, search_path
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply,
    crds,
    search,
    search_operator,
)

from tests.cluster.paths import REPO_ROOT
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

DASHBOARDS = REPO_ROOT / "charts" / "nas-operator" / "dashboards"
SCRAPE_INTERVAL = "1s"


def dashboard_queries() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("nas_dashboards_e2e", DASHBOARDS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    sys.modules["nas_dashboards_e2e"] = generate
    spec.loader.exec_module(generate)
    return {
        name: generate.queries(json.loads((DASHBOARDS / name).read_text()))
        for name in generate.DASHBOARDS
    }


class Prometheus:
    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ready, "Prometheus to be ready", timeout=60)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=10) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("prometheus is not installed (make tools)")
    return path


def concrete(expr: str, namespace: str) -> str:
    """A dashboard query with Grafana's variables filled in as a user would select them."""
    return (
        expr.replace("$namespace", namespace)
        .replace("$search", ".*")
        .replace("$__rate_interval", "5m")
    )


def test_every_dashboard_query_returns_data(
    cluster, prometheus_binary, search_operator, namespace, tmp_path
):
    """Each panel must draw something while the search runs (the controller's gauges go
    stale once it exits at the end, as they should)."""
    prometheus = Prometheus(
        tmp_path,
        {
            "nas-operator": search_operator.process.metrics_port,
            "nas-controller": search_operator.controller_metrics_port,
        },
    )
    queries = [(board, expr) for board, exprs in dashboard_queries().items() for expr in exprs]
    answered: set[tuple[str, str]] = set()
    last: dict[tuple[str, str], list] = {}

    def poll() -> None:
        for key in queries:
            if key in answered:
                continue
            result = prometheus.query(concrete(key[1], namespace))
            last[key] = result
            if any(math.isfinite(float(r["value"][1])) for r in result):
                answered.add(key)

    try:
        apply(
            cluster,
            search(
                "watched",
                namespace,
                {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                {"name": "reinforce", "seed": 1, "rewardNormalization": "std"},
                {"max": 12, "parallelism": 3, "timeoutSeconds": 120},
            ),
        )

        def finished() -> bool:
            poll()
            phase = (get(cluster, search_path(namespace, "watched")) or {}).get("status", {})
            return phase.get("phase") in ("Succeeded", "Failed")

        wait_for(finished, "the search to finish", timeout=400, interval=1.0)
        assert get(cluster, search_path(namespace, "watched"))["status"]["phase"] == "Succeeded"
        wait_for(
            lambda: prometheus.query(
                f'nas_trials{{namespace="{namespace}",phase="Succeeded"}} == 12'
            ),
            "Prometheus to see the 12 trials",
            timeout=30,
        )
        poll()
        missing = [
            f"{board}: {expr} -> {last.get((board, expr))}"
            for board, expr in queries
            if (board, expr) not in answered
        ]
        assert missing == [], "\n".join(missing)
    finally:
        prometheus.stop()
