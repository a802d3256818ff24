"""Dashboards as code: the committed JSON is what generate.py makes, and every query
names metrics that the operator or the controller exports."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).resolve().parents[2] / "charts" / "nas-operator" / "dashboards"


def load_generator():
    spec = importlib.util.spec_from_file_location("nas_dashboards", DASHBOARDS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nas_dashboards"] = module
    spec.loader.exec_module(module)
    return module


generate = load_generator()


def test_committed_dashboards_are_regenerated_byte_for_byte(tmp_path):
    assert generate.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(p.name for p in DASHBOARDS.glob("*.json"))
    for name in written:
        assert (tmp_path / name).read_text() == (DASHBOARDS / name).read_text(), (
            f"{name} is stale: python charts/nas-operator/dashboards/generate.py"
        )
    assert generate.main(["--check"]) == 0


def test_check_mode_fails_on_a_hand_edit(tmp_path):
    generate.main(["--out", str(tmp_path)])
    path = tmp_path / "nas-searches.json"
    path.write_text(path.read_text().replace("Best reward", "Best reward!"))
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_dashboard_shape(name):
    board = json.loads((DASHBOARDS / name).read_text())
    assert next(iter(board)) == "__comment" and "do not edit" in board["__comment"]
    ids = [p["id"] for p in board["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    for panel in board["panels"]:
        assert panel["targets"] and panel["description"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def exported_metrics() -> set[str]:
    from nas_operator import metrics
    from prometheus_client import REGISTRY

    names = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    names |= {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    controller = (
        Path(__file__).resolve().parents[2]
        / "trainer-image"
        / "nas_trainer"
        / "controller"
        / "metrics.py"
    )
    if controller.exists():
        names |= set(re.findall(r'"(nas_controller_[a-z_]+)"', controller.read_text()))
    return names


def test_every_query_uses_exported_metrics():
    known = exported_metrics()
    for name in generate.DASHBOARDS:
        for expr in generate.queries(json.loads((DASHBOARDS / name).read_text())):
            for metric in re.findall(
                r"\b(nas_[a-z_]+?)(?:_bucket|_total|_count|_sum)?\b(?=[{\[)\s])", expr
            ):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                assert (
                    base in known
                    or f"{base}_total" in known
                    or base.removesuffix("_total") in known
                ), f"{name}: {metric} in {expr!r} is not exported"
