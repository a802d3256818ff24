"""The controller's informer against the real API server: a watch whose resource
version expired (410 Gone) lists again (in pages) and goes on; nothing is missed."""
from __future__ import annotations

import queue
import time

import kubernetes
import pytest

from nas_trainer.controller import informer as informer_module
from nas_trainer.controller.informer import CustomObjectInformer, Event
from nas_trainer.controller.trials_api import GROUP, TRIALS, VERSION
from test_operator_fixtures import crds, trial_manifest  # noqa: F401  (crds is a fixture)

pytestmark = pytest.mark.cluster

SEARCH = {"metadata": {"name": "watched", "uid": "00000000-0000-0000-0000-000000000001"}}


def create_trial(api: kubernetes.client.CustomObjectsApi, namespace: str, index: int) -> dict:
    body = trial_manifest(SEARCH, index)
    # no owner: the garbage collector would delete Trials of a search that does not exist
    body["metadata"].pop("ownerReferences", None)
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, TRIALS, body)


def next_event(events: "queue.Queue[Event]", wanted, timeout: float = 30) -> list[Event]:
    """Events up to and including the first that `wanted` accepts."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(event)
        if wanted(event):
            return seen
    raise AssertionError(f"no wanted event in {timeout}s; saw {[(e.type, e.obj and e.obj['metadata']['name']) for e in seen]}")


def test_expired_watch_lists_again_and_misses_nothing(cluster, crds, namespace, caplog, monkeypatch):
    monkeypatch.setattr(informer_module, "LIST_PAGE", 1)  # every list in pages of one
    caplog.set_level("INFO", logger="nas_trainer.controller.informer")
    api = kubernetes.client.CustomObjectsApi(cluster.api_client())
    first = create_trial(api, namespace, 0)
    stale = first["metadata"]["resourceVersion"]
    create_trial(api, namespace, 1)
    cluster.compact_etcd()
    events: "queue.Queue[Event]" = queue.Queue()
    # resuming from a resource version older than both etcd's compaction and the API
    # server's watch cache (which starts at the CRD's first list) ends in 410 Gone
    assert int(stale) > 1
    informer = CustomObjectInformer(api, GROUP, VERSION, namespace, TRIALS, events, "trials",
                                    label_selector="archsearch.io/search=watched",
                                    resource_version="1",
                                    watch_timeout_s=5)
    informer.start()
    try:
        seen = next_event(events, lambda e: e.type == "SYNCED")
        listed = {e.obj["metadata"]["name"] for e in seen if e.type == "ADDED"}
        assert listed == {"watched-00000", "watched-00001"}
        assert "410 Gone" in caplog.text
        create_trial(api, namespace, 2)
        seen = next_event(events, lambda e: e.obj is not None and e.obj["metadata"]["name"] == "watched-00002")
        assert seen[-1].type == "ADDED"
        # a watch that times out (5 s here) resumes without listing again
        time.sleep(6)
        create_trial(api, namespace, 3)
        seen = next_event(events, lambda e: e.obj is not None and e.obj["metadata"]["name"] == "watched-00003")
        assert "SYNCED" not in [e.type for e in seen]
    finally:
        informer.stop()
