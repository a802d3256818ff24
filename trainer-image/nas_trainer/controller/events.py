"""Kubernetes Events on the search, so `kubectl describe archsearch` tells its story."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from kubernetes import client
from nas_contracts.api import API_VERSION, SEARCH_KIND

log = logging.getLogger(__name__)

COMPONENT = "nas-controller"


class EventRecorder:
    def __init__(self, api: client.CoreV1Api, search_obj: dict[str, Any], identity: str) -> None:
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

    def emit(self, reason: str, message: str, type_: str = "Normal") -> None:
        """Best effort: an Event that cannot be written must never stop the search."""
        now = datetime.now(timezone.utc)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{self.involved.name}."),
            involved_object=self.involved,
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=self.identity[:128],
        )
        try:
            self.api.create_namespaced_event(self.namespace, body)
        except Exception as err:
            log.warning("could not record event %s: %s", reason, err)
