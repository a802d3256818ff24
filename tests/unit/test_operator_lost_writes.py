"""A status write the API server does not take (a 409 after a concurrent change, an
admission policy still being configured after a restart) must not leave a search wrong
for good: what a user reads is put right by the next pass, or the handler is retried."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from nas_operator import search_reconcile
from nas_operator.config import OperatorSettings
from nas_operator.records import PodRecord

NOT_READY = (
    "ValidatingAdmissionPolicy 'archsearch.io-controller-status' denied request: failed to "
    "configure policy: failed to find resource referenced by paramKind"
)


def conflict() -> ApiException:
    return ApiException(status=409, reason="Conflict", body=json.dumps({"message": "changed"}))


class Cluster:
    """One search, its controller pod, and the writes of each pass (a write may fail)."""

    def __init__(self, suspend: bool) -> None:
        self.search: dict[str, Any] = {
            "apiVersion": "archsearch.io/v1alpha1",
            "kind": "ArchitectureSearch",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 2,
                         "resourceVersion": "7"},
            "spec": {"trials": {"max": 4}, "suspend": suspend,
                     "trainer": {"image": "nas-trainer:test"}},
            "status": {"phase": "Running", "observedGeneration": 2,
                       "controllerPod": "s-controller"},
        }
        self.fail_next_patch: ApiException | None = None
        self.deleted: list[str] = []
        self.created: list[str] = []

    def get(self, api_version, kind, namespace, name):
        return self.search if kind == "ArchitectureSearch" else None

    def create(self, obj):
        self.created.append(obj["metadata"]["name"])
        return obj, True

    def delete(self, api_version, kind, namespace, name, uid=None):
        self.deleted.append(name)
        return True

    def patch(self, api_version, kind, namespace, name, body, subresource=None):
        if self.fail_next_patch is not None:
            err, self.fail_next_patch = self.fail_next_patch, None
            raise err
        status = dict(self.search["status"])
        for key, value in body["status"].items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        self.search["status"] = status
        return self.search


def running_pod() -> PodRecord:
    return PodRecord(name="s-controller", uid="p1", phase="Running", deleting=False,
                     finished_at=None, message="")


def test_a_resume_after_a_lost_suspend_write_is_not_counted_as_a_restart(monkeypatch):
    monkeypatch.setattr(search_reconcile.events, "post", lambda *args: None)
    cluster = Cluster(suspend=True)
    settings = OperatorSettings()
    # the pass that deletes the controller pod loses its status write to a concurrent change
    cluster.fail_next_patch = conflict()
    search_reconcile.reconcile_search(cluster, "ns", "s", [], running_pod(), settings)
    assert cluster.deleted == ["s-controller"]
    assert cluster.search["status"].get("controllerPod") == "s-controller"
    # the next pass (the pod gone) says the same again
    search_reconcile.reconcile_search(cluster, "ns", "s", [], None, settings)
    assert cluster.search["status"]["phase"] == "Suspended"
    assert "controllerPod" not in cluster.search["status"]
    # resumed: a new controller pod, and no restart counted
    cluster.search["spec"]["suspend"] = False
    search_reconcile.reconcile_search(cluster, "ns", "s", [], None, settings)
    assert cluster.created == ["s-controller"]
    assert cluster.search["status"].get("controllerRestarts", 0) == 0
    assert cluster.search["status"]["controllerPod"] == "s-controller"


def test_the_children_handler_writes_observed_generation_itself_and_raises_if_refused(
    monkeypatch,
):
    """Left to kopf's own patch, a refused status write came after kopf had counted the
    handler done: observedGeneration never landed and the search never started."""
    from nas_operator.handlers import search as handlers

    cluster = Cluster(suspend=False)
    cluster.search["status"] = {}
    monkeypatch.setattr(handlers, "api", lambda: cluster)
    monkeypatch.setattr(handlers, "ensure_search_children", lambda api, search: None)
    cluster.fail_next_patch = ApiException(
        status=422, reason="Invalid", body=json.dumps({"message": NOT_READY})
    )
    with pytest.raises(ApiException):
        handlers.search_children(
            namespace="ns", name="s", status={}, reason="create"
        )
    assert cluster.search["status"] == {}
    handlers.search_children(
        namespace="ns", name="s", status={}, reason="create"
    )
    assert cluster.search["status"] == {"observedGeneration": 2, "phase": "Pending"}
