"""A status write the API server does not take (a 409 after a concurrent change, an
admission policy still being configured after a restart) must not leave a search wrong
for good: what a user reads is put right by the next pass, or the handler is retried."""

from __future__ import annotations

import json
import pytest
from kubernetes.client.rest import ApiException
from nas_operator import search_reconcile
from nas_operator.config import OperatorSettings

from tests.unit.search_fakes import SearchCluster, running_pod

NOT_READY = (
    "ValidatingAdmissionPolicy 'archsearch.io-controller-status' denied request: failed to "
    "configure policy: failed to find resource referenced by paramKind"
)


def conflict() -> ApiException:
    return ApiException(status=409, reason="Conflict", body=json.dumps({"message": "changed"}))


def cluster(suspend: bool) -> SearchCluster:
    return SearchCluster({"trials": {"max": 4}, "suspend": suspend},
                         {"phase": "Running", "observedGeneration": 2,
                          "controllerPod": "s-controller"}, generation=2)


def test_a_resume_after_a_lost_suspend_write_is_not_counted_as_a_restart(monkeypatch):
    monkeypatch.setattr(search_reconcile.events, "post", lambda *args: None)
    fake = cluster(suspend=True)
    settings = OperatorSettings()
    # the pass that deletes the controller pod loses its status write to a concurrent change
    fake.refuse_next_patch = conflict()
    search_reconcile.reconcile_search(fake, "ns", "s", [], running_pod(), settings)
    assert fake.deleted == ["s-controller"]
    assert fake.search["status"].get("controllerPod") == "s-controller"
    # the next pass (the pod gone) says the same again
    search_reconcile.reconcile_search(fake, "ns", "s", [], None, settings)
    assert fake.search["status"]["phase"] == "Suspended"
    assert "controllerPod" not in fake.search["status"]
    # resumed: a new controller pod, and no restart counted
    fake.search["spec"]["suspend"] = False
    search_reconcile.reconcile_search(fake, "ns", "s", [], None, settings)
    assert fake.created == ["s-controller"]
    assert fake.search["status"].get("controllerRestarts", 0) == 0
    assert fake.search["status"]["controllerPod"] == "s-controller"


def test_the_children_handler_writes_observed_generation_itself_and_raises_if_refused(
    monkeypatch,
):
    """Left to kopf's own patch, a refused status write came after kopf had counted the
    handler done: observedGeneration never landed and the search never started."""
    from nas_operator.handlers import search as handlers

    fake = cluster(suspend=False)
    fake.search["status"] = {}
    monkeypatch.setattr(handlers, "api", lambda: fake)
    monkeypatch.setattr(handlers, "ensure_search_children", lambda api, search: None)
    fake.refuse_next_patch = ApiException(
        status=422, reason="Invalid", body=json.dumps({"message": NOT_READY})
    )
    with pytest.raises(ApiException):
        handlers.search_children(
            namespace="ns", name="s", status={}, reason="create"
        )
    assert fake.search["status"] == {}
    handlers.search_children(
        namespace="ns", name="s", status={}, reason="create"
    )
    assert fake.search["status"] == {"observedGeneration": 2, "phase": "Pending"}
