"""A pass that needs a later pass says when (issue 13): the warm pool's pass returns the
seconds until its first running trial times out, the search's pass hands that on to the
status loop, which asks for a pass then (test_warm_pool.py); no module reaches up to the loop that called it
(test_import_graph.py checks the imports)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.rest import ApiException
from nas_operator import search_reconcile
from nas_operator.config import OperatorSettings
from nas_operator.records import PodRecord


class Cluster:
    """One WarmPool search with a running controller; its status writes may conflict."""

    def __init__(self) -> None:
        self.search: dict[str, Any] = {
            "apiVersion": "archsearch.io/v1alpha1",
            "kind": "ArchitectureSearch",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 1,
                         "resourceVersion": "7"},
            "spec": {"trials": {"max": 4, "mode": "WarmPool"},
                     "trainer": {"image": "nas-trainer:test"}},
            "status": {"phase": "Pending", "observedGeneration": 1},
        }
        self.conflict = False

    def get(self, api_version, kind, namespace, name):
        return self.search if kind == "ArchitectureSearch" else None

    def create(self, obj):
        return obj, True

    def patch(self, api_version, kind, namespace, name, body, subresource=None):
        if self.conflict:
            raise ApiException(status=409, reason="Conflict",
                               body=json.dumps({"message": "changed"}))
        self.search["status"] = {**self.search["status"], **body["status"]}
        return self.search


def running_pod() -> PodRecord:
    return PodRecord(name="s-controller", uid="p1", phase="Running", deleting=False,
                     finished_at=None, message="")


def test_the_search_pass_hands_on_when_the_warm_pool_needs_the_next(monkeypatch):
    monkeypatch.setattr(search_reconcile.events, "post", lambda *args: None)
    monkeypatch.setattr(search_reconcile, "sync_warm_pool", lambda *args: 42.0)
    cluster, settings = Cluster(), OperatorSettings()
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) == 42.0
    assert cluster.search["status"]["phase"] == "Running"
    # a status write lost to a concurrent change still asks for the trial's deadline
    cluster.conflict = True
    cluster.search["status"]["phase"] = "Pending"
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) == 42.0
    # nothing to wait for: no pass asked
    monkeypatch.setattr(search_reconcile, "sync_warm_pool", lambda *args: None)
    cluster.conflict = False
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) is None


def test_the_earliest_ask_wins():
    assert search_reconcile.sooner(None, 5.0, 2.0) == 2.0
    assert search_reconcile.sooner(None, None) is None
