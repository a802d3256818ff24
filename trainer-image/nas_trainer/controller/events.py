"""Kubernetes Events on the search, so `kubectl describe archsearch` tells its story.

Reasons that recur once per trial (`TrialCreated`, `TrialStoppedEarly`) are kept as a
series, as client-go's event correlator does: the first is created, later ones within
`SERIES_WINDOW` patch its count, last timestamp and message (kubectl shows "x57 over
3m"). A 20,000-trial search so leaves a few dozen Events, not 20,000 in etcd.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from kubernetes import client
from nas_contracts.api import API_VERSION, SEARCH_KIND

log = logging.getLogger(__name__)

COMPONENT = "nas-controller"
SERIES_REASONS = frozenset({"TrialCreated", "TrialStoppedEarly"})
SERIES_WINDOW = 600.0  # seconds one Event object gathers a recurring reason
MESSAGE_LIMIT = 1024


@dataclass
class _Series:
    name: str
    started: float
    count: int


class EventRecorder:
    def __init__(self, api: client.CoreV1Api, search_obj: dict[str, Any], identity: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        meta = search_obj["metadata"]
        self.namespace = meta["namespace"]
        self.identity = identity
        self.involved = client.V1ObjectReference(
            api_version=API_VERSION,
            kind=SEARCH_KIND,
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
        )
        self._clock = clock
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()  # the executor and the runner emit from two threads

    def emit(self, reason: str, message: str, type_: str = "Normal") -> None:
        """Best effort: an Event that cannot be written must never stop the search."""
        key = (reason, type_)
        with self._lock:
            series = self._series.get(key) if reason in SERIES_REASONS else None
            if series is not None and self._clock() - series.started < SERIES_WINDOW:
                if self._add_to(series, message):
                    return
            name = self._create(reason, message, type_)
            if name and reason in SERIES_REASONS:
                self._series[key] = _Series(name, self._clock(), 1)

    def _add_to(self, series: _Series, message: str) -> bool:
        """Count one more in the series' Event; False when it is gone (then a new one)."""
        patch = {"count": series.count + 1, "message": message[:MESSAGE_LIMIT],
                 "lastTimestamp": datetime.now(timezone.utc).isoformat()}
        try:
            self.api.patch_namespaced_event(series.name, self.namespace, patch,
                                            _content_type="application/merge-patch+json")
        except Exception as err:
            log.info("event %s could not be counted (%s): starting a new one", series.name, err)
            return False
        series.count += 1
        return True

    def _create(self, reason: str, message: str, type_: str) -> str | None:
        now = datetime.now(timezone.utc)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{self.involved.name}."),
            involved_object=self.involved,
            reason=reason,
            message=message[:MESSAGE_LIMIT],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=self.identity[:128],
        )
        try:
            created = self.api.create_namespaced_event(self.namespace, body)
        except Exception as err:
            log.warning("could not record event %s: %s", reason, err)
            return None
        return getattr(getattr(created, "metadata", None), "name", None)
