"""List-then-watch of custom objects that survives everything a watch can hit.

Watches expire (410 Gone), API servers restart and connections drop. The informer
lists, hands every object to the consumer, then watches from the list's
resourceVersion; a clean end of a watch resumes from the last resourceVersion seen
(bookmarks keep it fresh), 410 relists, and any other error relists after an
exponential backoff. Consumers must be idempotent: after a relist they see every object
again, which is what makes missed events harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from nas_trainer.controller.retry import Backoff

log = logging.getLogger(__name__)


LIST_PAGE = 500  # a search of 20,000 trials is listed in pages, not one huge response


def list_custom_objects(api: client.CustomObjectsApi, group: str, version: str, namespace: str,
                        plural: str, **selectors: str) -> tuple[list[dict[str, Any]], str]:
    """Every object (in pages) and the resourceVersion of the consistent snapshot."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        extra = {"_continue": token} if token else {}
        page = api.list_namespaced_custom_object(group, version, namespace, plural,
                                                 limit=LIST_PAGE, **selectors, **extra)
        items.extend(page.get("items", []))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items, page["metadata"]["resourceVersion"]


@dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED | SYNCED (every object was delivered after a list)
    obj: dict[str, Any] | None
    source: str


class CustomObjectInformer:
    """Feeds one queue with the objects of one custom resource matching a selector."""

    def __init__(
        self,
        api: client.CustomObjectsApi,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        out: "queue.Queue[Event]",
        source: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout_s: int = 60,
        resource_version: str | None = None,
    ) -> None:
        self.api = api
        self.args = (group, version, namespace, plural)
        self.selectors = {
            k: v
            for k, v in (("label_selector", label_selector), ("field_selector", field_selector))
            if v
        }
        self.out = out
        self.source = source
        self.watch_timeout_s = watch_timeout_s
        # resume a watch from here instead of listing first (a 410 then lists)
        self.resume_from = resource_version
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.source}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def list_now(self) -> tuple[list[dict[str, Any]], str]:
        """The items and the list's resourceVersion."""
        return list_custom_objects(self.api, *self.args, **self.selectors)

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                if self.resume_from is not None:
                    rv, self.resume_from = self.resume_from, None
                    self._watch_from(rv, backoff)
                    continue  # stopped
                items, rv = self.list_now()
                for item in items:
                    self.out.put(Event("ADDED", item, self.source))
                self.out.put(Event("SYNCED", None, self.source))
                backoff.reset()
                self._watch_from(rv, backoff)
            except ApiException as err:
                if self._stop.is_set():
                    return
                if err.status == 410:
                    log.info("%s watch expired (410 Gone): relisting", self.source)
                    continue
                delay = backoff.next()
                log.warning("%s: API error %s %s; relisting in %.1fs", self.source, err.status, err.reason, delay)
                self._stop.wait(delay)
            except Exception as err:  # connection refused/reset while the API server restarts
                if self._stop.is_set():  # stop() shuts the watch's socket down
                    return
                delay = backoff.next()
                log.warning("%s: %s; relisting in %.1fs", self.source, err, delay)
                self._stop.wait(delay)

    def _watch_from(self, rv: str, backoff: Backoff) -> None:
        """Watch from ``rv`` until stopped; returns only by raising (so the caller relists)."""
        while not self._stop.is_set():
            self._watch = watch.Watch()
            stream = self._watch.stream(
                self.api.list_namespaced_custom_object,
                *self.args,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_timeout_s,
                # a client-side read timeout too: a dead server must not block us forever
                _request_timeout=self.watch_timeout_s + 15,
                **self.selectors,
            )
            for ev in stream:
                obj = ev["raw_object"]
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if ev["type"] == "BOOKMARK":
                    continue
                self.out.put(Event(ev["type"], obj, self.source))
                backoff.reset()
                if self._stop.is_set():
                    return
