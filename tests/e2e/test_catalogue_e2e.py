"""The catalogue of bad manifests (tests/catalogue/) against the real API server and the real
operator: what admission can judge is refused by `kubectl apply` with a message naming the
field; what only the cluster can judge ends as a condition on the search naming the field.
`nas validate` on the same files: tests/unit/test_manifest_catalogue.py."""

from __future__ import annotations

import uuid

import pytest
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    OperatorProcess,
    crds,
    get,
    kubectl,
    search_path,
)

from tests.cluster.catalogue import CASES, header
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

ADMISSION = [p for p in CASES if "admission" in header(p)]
CONDITION = [p for p in CASES if "condition" in header(p)]


@pytest.fixture(scope="module")
def catalogue_namespace(cluster, crds):
    """One namespace for every case: a refused manifest leaves nothing behind."""
    name = f"catalogue-{uuid.uuid4().hex[:5]}"
    kubectl(cluster, "create", "namespace", name)
    yield name
    kubectl(cluster, "delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("path", ADMISSION, ids=lambda p: p.stem)
def test_admission_refuses_it_in_words(cluster, catalogue_namespace, path):
    fields = header(path)
    result = kubectl(cluster, "apply", "-n", catalogue_namespace, "-f", str(path), check=False)
    assert result.returncode != 0, f"accepted: {path.name}"
    assert fields["field"] in result.stderr, result.stderr
    words = fields["admission"]
    if not words.startswith("("):   # "(the API server's own message naming the field)"
        assert words in " ".join(result.stderr.split()), result.stderr
    assert "failed rule:" not in result.stderr   # a CEL rule without a sentence


@pytest.fixture(scope="module")
def catalogue_operator(cluster, crds, catalogue_namespace):
    op = OperatorProcess(cluster, [catalogue_namespace], tag="-catalogue").start()
    yield op
    op.stop()


@pytest.mark.parametrize("path", CONDITION, ids=lambda p: p.stem)
def test_the_operator_says_so_on_the_search(cluster, catalogue_namespace, catalogue_operator,
                                            path):
    fields = header(path)
    name = f"cond-{path.stem.split('-')[0]}"
    text = path.read_text().replace("name: bad", f"name: {name}", 1)
    kubectl(cluster, "apply", "-n", catalogue_namespace, "-f", "-", input=text)

    def condition_naming_the_field():
        search = get(cluster, search_path(catalogue_namespace, name)) or {}
        return next((c for c in (search.get("status") or {}).get("conditions") or []
                     if fields["field"] in (c.get("message") or "")), None)

    condition = wait_for(condition_naming_the_field,
                         f"a condition on {name} naming {fields['field']}", timeout=60)
    assert condition["status"] in ("True", "False")
    kubectl(cluster, "delete", "archsearch", name, "-n", catalogue_namespace, "--wait=false")
