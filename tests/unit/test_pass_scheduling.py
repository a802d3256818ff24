"""A pass that needs a later pass says when (issue 13): the warm pool's pass returns the
seconds until its first running trial times out, the search's pass hands that on to the
status loop, which asks for a pass then (test_warm_pool.py); no module reaches up to the loop that called it
(test_import_graph.py checks the imports)."""

from __future__ import annotations

import json
from kubernetes.client.rest import ApiException
from nas_operator import search_reconcile
from nas_operator.config import OperatorSettings

from tests.unit.search_fakes import SearchCluster, running_pod


def warm_pool_search() -> SearchCluster:
    """One WarmPool search with a running controller."""
    return SearchCluster({"trials": {"max": 4, "mode": "WarmPool"}},
                         {"phase": "Pending", "observedGeneration": 1})


CONFLICT = ApiException(status=409, reason="Conflict", body=json.dumps({"message": "changed"}))


def test_the_search_pass_hands_on_when_the_warm_pool_needs_the_next(monkeypatch):
    monkeypatch.setattr(search_reconcile.events, "post", lambda *args: None)
    monkeypatch.setattr(search_reconcile, "sync_warm_pool", lambda *args: 42.0)
    cluster, settings = warm_pool_search(), OperatorSettings()
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) == 42.0
    assert cluster.search["status"]["phase"] == "Running"
    # a status write lost to a concurrent change still asks for the trial's deadline
    cluster.refuse_patches = CONFLICT
    cluster.search["status"]["phase"] = "Pending"
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) == 42.0
    # nothing to wait for: no pass asked
    monkeypatch.setattr(search_reconcile, "sync_warm_pool", lambda *args: None)
    cluster.refuse_patches = None
    assert search_reconcile.reconcile_search(
        cluster, "ns", "s", [], running_pod(), settings) is None


def test_the_earliest_ask_wins():
    assert search_reconcile.sooner(None, 5.0, 2.0) == 2.0
    assert search_reconcile.sooner(None, None) is None
