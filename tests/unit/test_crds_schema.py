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
    assert columns == ["Phase", "Reward", "Epochs", "Attempts", "Architecture", "Age"]
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


SEARCH_SPEC = SEARCH["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_every_list_string_and_map_of_a_search_spec_is_bounded():
    """maxItems / maxLength / maxProperties everywhere a search author writes (the spec is
    copied into annotations, ConfigMaps and Jobs, which have size limits); an enum bounds a
    string too."""
    unbounded = []
    for path, schema in walk(SEARCH_SPEC, "spec"):
        kind = schema.get("type")
        if kind == "array" and "maxItems" not in schema:
            unbounded.append(path)
        if kind == "string" and "maxLength" not in schema and "enum" not in schema:
            unbounded.append(path)
        if isinstance(schema.get("additionalProperties"), dict) and "maxProperties" not in schema:
            unbounded.append(path)
        if schema.get("x-kubernetes-int-or-string") and "maxLength" not in schema:
            unbounded.append(path)
    assert unbounded == []


def test_no_subtree_of_a_search_spec_nests_without_bound():
    """A spec nested 2,000 levels deep once took the operator down (RecursionError). Fields
    whose content the schema does not spell out are only: the refused securityContext (kept
    to be refused with its reason), and a custom choice and `augment`, whose lists and
    objects must be empty (maxItems/maxProperties 0) or are spelt out (allOf)."""
    open_ended = [path for path, schema in walk(SEARCH_SPEC, "spec")
                  if schema.get("x-kubernetes-preserve-unknown-fields")]
    assert sorted(open_ended) == ["spec.searchSpace.decisions[].choices[]",
                                  "spec.trainer.augment", "spec.trainer.securityContext"]
    choice = SEARCH_SPEC["properties"]["searchSpace"]["properties"]["decisions"]["items"][
        "properties"]["choices"]["items"]
    assert choice["maxItems"] == 0 and choice["maxProperties"] == 0
    augment = SEARCH_SPEC["properties"]["trainer"]["properties"]["augment"]
    assert augment["maxItems"] == 0 and set(augment["allOf"][0]["properties"]) == {"pad", "flip"}
    assert all(v.get("maxItems") == 0 or "enum" in v
               for v in augment["allOf"][0]["properties"].values())
    assert any("!has(self.securityContext)" in r["rule"]
               for r in SEARCH_SPEC["properties"]["trainer"]["x-kubernetes-validations"])


def test_cel_rules_say_what_to_fix_in_a_sentence():
    """Every CEL rule has a message or messageExpression (else the API server shows the rule)."""
    bare = [(path, v["rule"]) for crd in (SEARCH, TRIAL)
            for path, schema in walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
            for v in schema.get("x-kubernetes-validations", [])
            if not (v.get("message") or v.get("messageExpression"))]
    assert bare == []
