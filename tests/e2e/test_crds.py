"""The CRDs on a real API server: served, documented, and bad input refused at admission
with a message that says what to fix."""

from __future__ import annotations

import copy

import pytest
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    apply,
    crds,
    get,
    kubectl,
    search_manifest,
    search_path,
    trial_manifest,
)

from tests.cluster.paths import REPO_ROOT

pytestmark = pytest.mark.cluster


def refused(cluster, obj, namespace) -> str:
    result = apply(
        cluster, {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}, check=False
    )
    assert result.returncode != 0, f"accepted: {obj}"
    return result.stderr


def test_kubectl_explain_documents_fields(cluster, crds):
    out = kubectl(cluster, "explain", "archsearch.spec.trials.parallelism").stdout
    assert "Trials running at once" in out
    out = kubectl(cluster, "explain", "trials.status.reward").stdout
    assert "reward" in out.lower()


def test_defaults_are_filled_in(cluster, crds, namespace):
    apply(
        cluster,
        {**search_manifest("defaults"), "metadata": {"name": "defaults", "namespace": namespace}},
    )
    spec = get(cluster, search_path(namespace, "defaults"))["spec"]
    assert spec["storage"] == {
        "size": "1Gi",
        "accessModes": ["ReadWriteOnce"],
        "retentionPolicy": "Retain",
    }
    # maxFailed has no field default (10 would exceed this search's max of 4 and be refused);
    # the parser's default, 10, applies
    assert "maxFailed" not in spec["trials"]
    assert spec["strategy"] == {"name": "random", "seed": 0}
    assert spec["trainer"]["mountSearchVolume"] is False
    assert spec["finalTraining"] == {"enabled": True}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s["spec"]["trials"].update(max=2, parallelism=8),
            "spec.trials.parallelism must be <= spec.trials.max",
        ),
        (
            lambda s: s["spec"]["strategy"].update(name="hill-climbing"),
            'Unsupported value: "hill-climbing"',
        ),
        (
            lambda s: s["spec"]["searchSpace"].pop("decisions"),
            "spec.searchSpace.decisions is required when spec.searchSpace.name is custom",
        ),
        (
            lambda s: s["spec"]["searchSpace"].update(name="nasnet"),
            "spec.searchSpace.decisions is only for name: custom",
        ),
        (
            lambda s: s["spec"]["strategy"].update(population=10),
            "spec.strategy.population and sampleSize apply only to regularized-evolution",
        ),
        (
            lambda s: s["spec"]["strategy"].update(name="random", tanhConstant=1.5),
            "tanhConstant, preset, riskSeekingQuantile",
        ),
        (
            lambda s: (
                s["spec"]["storage"].update(claimName="mine", retentionPolicy="Delete")
                if "storage" in s["spec"]
                else s["spec"].update(storage={"claimName": "mine", "retentionPolicy": "Delete"})
            ),
            "retentionPolicy Delete applies only to a volume the operator makes",
        ),
        (
            lambda s: s["metadata"].update(name="x" * 51),
            "metadata.name must be at most 50 characters",
        ),
        (
            lambda s: (
                s["spec"]["trainer"].update(dataset="imagenet-21k", command=None)
                or s["spec"]["trainer"].pop("command")
            ),
            "spec.trainer.dataset must be one of",
        ),
        (
            lambda s: s["spec"]["trainer"].pop("command"),
            "spec.trainer.command is required for the custom space",
        ),
        (
            lambda s: (
                s["spec"].update(searchSpace={"name": "rnn-cell"})
                or s["spec"]["trainer"].update(dataset="digits")
                or s["spec"]["trainer"].pop("command")
            ),
            "spec.trainer.dataset does not fit spec.searchSpace",
        ),
    ],
    ids=[
        "parallelism>max",
        "unknown-strategy",
        "custom-needs-decisions",
        "decisions-only-custom",
        "evolution-fields",
        "controller-fields",
        "claim+Delete",
        "long-name",
        "unknown-dataset",
        "custom-needs-command",
        "rnn-cell-needs-ptb",
    ],
)
def test_bad_search_is_refused_with_what_to_fix(cluster, crds, namespace, change, message):
    search = copy.deepcopy(search_manifest("bad"))
    change(search)
    assert message in refused(cluster, search, namespace)


def test_search_space_and_strategy_are_immutable(cluster, crds, namespace):
    search = search_manifest("fixed")
    search["metadata"]["namespace"] = namespace
    apply(cluster, search)
    moved = copy.deepcopy(search)
    moved["spec"]["searchSpace"]["decisions"][0]["choices"] = [1, 2]
    assert "spec.searchSpace is immutable" in apply(cluster, moved, check=False).stderr
    moved = copy.deepcopy(search)
    moved["spec"]["strategy"]["seed"] = 7
    assert "spec.strategy is immutable" in apply(cluster, moved, check=False).stderr
    grown = copy.deepcopy(search)
    grown["spec"]["trials"]["max"] = 40  # the budget may change
    apply(cluster, grown)


def test_trial_spec_is_immutable(cluster, crds, namespace):
    search = search_manifest("owner")
    search["metadata"]["namespace"] = namespace
    apply(cluster, search)
    live = get(cluster, search_path(namespace, "owner"))
    trial = trial_manifest(live, 0)
    trial["metadata"]["namespace"] = namespace
    apply(cluster, trial)
    trial["spec"]["logProb"] = -5.0
    assert "Trial spec is immutable" in apply(cluster, trial, check=False).stderr
    renamed = trial_manifest(live, 1)
    renamed["metadata"].update(name="someone-else-00001", namespace=namespace)
    assert (
        "metadata.name must be <spec.searchName>-<index:05d>"
        in apply(cluster, renamed, check=False).stderr
    )


def test_printer_columns(cluster, crds, namespace):
    search = search_manifest("columns")
    search["metadata"]["namespace"] = namespace
    apply(cluster, search)
    header = kubectl(cluster, "get", "archsearch", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "DONE", "RUNNING", "BEST", "AGE"]
    header = kubectl(cluster, "get", "trials", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert not header or "REWARD" in header[0]


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO_ROOT / "examples").glob("*.yaml")))
def test_every_example_applies_as_it_is(cluster, crds, namespace, path):
    """Server-side dry run with strict field validation: an unknown field fails too."""
    result = kubectl(
        cluster,
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        str(REPO_ROOT / "examples" / path),
        check=False,
    )
    assert result.returncode == 0, result.stderr
