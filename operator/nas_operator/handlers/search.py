"""ArchitectureSearch handlers: make the children, then let the status loop take over."""

from __future__ import annotations

from typing import Any

import kopf

from .. import metrics
from ..children import ensure_search_children
from ..k8s import api
from ..names import API_VERSION, GROUP, SEARCH_KIND, SEARCH_PLURAL, VERSION
from ..status_loop import LOOP


@kopf.on.resume(GROUP, VERSION, SEARCH_PLURAL)
@kopf.on.create(GROUP, VERSION, SEARCH_PLURAL)
@kopf.on.update(GROUP, VERSION, SEARCH_PLURAL)
@metrics.instrumented("search_children")
def search_children(
    namespace: str, name: str, status: kopf.Status, patch: kopf.Patch, **_: Any
) -> None:
    """Volume, RBAC, trainer snapshot, Job suspension; idempotent."""
    search = api().get(API_VERSION, SEARCH_KIND, namespace, name)
    if search is None or search["metadata"].get("deletionTimestamp"):
        return
    ensure_search_children(api(), search)
    patch.status["observedGeneration"] = search["metadata"]["generation"]
    if not status.get("phase"):
        patch.status["phase"] = "Pending"
    LOOP.mark(namespace, name)


@kopf.on.event(GROUP, VERSION, SEARCH_PLURAL)
def search_event(event: kopf.RawEvent, namespace: str, name: str, **_: Any) -> None:
    if event["type"] == "DELETED":
        LOOP.forget(namespace, name)
        metrics.forget_search(namespace, name)
    else:
        LOOP.mark(namespace, name)
