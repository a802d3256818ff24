"""Kubernetes Events about pods, as kubelet writes them (`kubectl describe pod` shows
them; tests read them to see why a pod does not start)."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from .kube import Kube
from .pod_status import now_iso

log = logging.getLogger(__name__)


def record_pod_event(kube: Kube, pod: dict[str, Any], node: str, reason: str, message: str,
                     type_: str = "Normal") -> None:
    meta = pod["metadata"]
    now = now_iso()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta["uid"]},
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": "kubelet", "host": node},
        "reportingComponent": "kubelet",
        "reportingInstance": node,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        kube.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", event)
    except Exception as exc:  # an event is worth a log line, never a failed pod
        log.warning("could not record event %s for %s/%s: %s",
                    reason, meta["namespace"], meta["name"], exc)
