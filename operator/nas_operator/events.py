"""Kubernetes Events on the objects the operator acts on (what `kubectl describe` shows).

Posted with the API client, not ``kopf.event``: kopf's posting level (set to WARNING so
that kopf's own "handler succeeded" logs do not become Events) also filters kopf.event.
https://kopf.readthedocs.io/en/stable/configuration/#logging-events
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from .names import MANAGED_BY

log = logging.getLogger(__name__)
_told: OrderedDict[tuple[str, str, str], None] = OrderedDict()  # warning_once's memory
_told_lock = threading.Lock()
TOLD_LIMIT = 4096
INSTANCE = os.environ.get("HOSTNAME") or socket.gethostname()


def build_event(
    obj: dict[str, Any], kind: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    meta = obj["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1000],
        "source": {"component": MANAGED_BY},
        "reportingComponent": MANAGED_BY,
        "reportingInstance": INSTANCE,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def post(obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
    """Post an Event; a failure is logged, never raised (an Event is not worth a retry)."""
    from .k8s import api

    log.info("%s %s/%s: %s: %s", kind, obj["kind"], obj["metadata"]["name"], reason, message)
    try:
        api().create(build_event(obj, kind, reason, message, datetime.now(timezone.utc)))
    except Exception as err:  # noqa: BLE001
        log.warning("could not post event %s on %s: %s", reason, obj["metadata"]["name"], err)


def normal(obj: dict[str, Any], reason: str, message: str) -> None:
    post(obj, "Normal", reason, message)


def warning(obj: dict[str, Any], reason: str, message: str) -> None:
    post(obj, "Warning", reason, message)


def warning_once(obj: dict[str, Any], reason: str, message: str) -> None:
    """A Warning Event, unless this process already posted the same one on this object:
    for a refusal met on every pass (a status write the server refuses), which must be
    told but not once per pass."""
    key = (obj["metadata"].get("uid") or obj["metadata"]["name"], reason, message)
    with _told_lock:
        if key in _told:
            return
        _told[key] = None
        while len(_told) > TOLD_LIMIT:
            _told.popitem(last=False)
    warning(obj, reason, message)
