"""The CRD files: structural, documented, with the names and columns users rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CRDS = Path(__file__).resolve().parents[2] / "crds"


def load(name: str) -> dict:
    return yaml.safe_load((CRDS / name).read_text())


SEARCH = load("archsearch.io_architecturesearches.yaml")
TRIAL = load("archsearch.io_trials.yaml")


def walk(schema: dict, path: str = ""):
    yield path, schema
    for key, child in (schema.get("properties") or {}).items():
        yield from walk(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", [SEARCH, TRIAL], ids=["search", "trial"])
def test_every_field_is_documented_and_typed(crd):
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undocumented = [
        p
        for p, s in walk(schema)
        if p not in ("", ".metadata") and not s.get("description") and not p.endswith("{}")
    ]
    assert undocumented == []
    untyped = [
        p
        for p, s in walk(schema)
        if p
        and "type" not in s
        and not s.get("x-kubernetes-int-or-string")
        and not s.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert untyped == []


def test_names_and_short_names():
    assert SEARCH["spec"]["group"] == TRIAL["spec"]["group"] == "archsearch.io"
    assert SEARCH["spec"]["names"]["shortNames"] == ["archsearch", "nas"]
    assert TRIAL["spec"]["names"]["plural"] == "trials"
    for crd in (SEARCH, TRIAL):
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}


def test_printer_columns_read_like_a_results_table():
    columns = [
        c["name"]
        for c in TRIAL["spec"]["versions"][0]["additionalPrinterColumns"]
        if "priority" not in c
    ]
    assert columns == ["Phase", "Reward", "Attempts", "Architecture", "Age"]
    columns = [
        c["name"]
        for c in SEARCH["spec"]["versions"][0]["additionalPrinterColumns"]
        if "priority" not in c
    ]
    assert columns == ["Phase", "Done", "Running", "Best", "Age"]


def test_enums_match_the_contract():
    spec = SEARCH["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]
    assert spec["searchSpace"]["properties"]["name"]["enum"] == [
        "macro-cnn",
        "nasnet",
        "rnn-cell",
        "nas-bench-201",
        "nas-bench-graph",
        "custom",
    ]
    assert spec["strategy"]["properties"]["name"]["enum"] == [
        "reinforce",
        "ppo",
        "regularized-evolution",
        "tpe",
        "random",
    ]
    assert spec["storage"]["properties"]["retentionPolicy"]["default"] == "Retain"


def test_immutability_rules_are_transition_rules():
    spec = SEARCH["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]
    for field in ("searchSpace", "strategy"):
        assert any(r["rule"] == "self == oldSelf" for r in spec[field]["x-kubernetes-validations"])
    trial_spec = TRIAL["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert trial_spec["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
