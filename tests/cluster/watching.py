"""List, then watch, for as long as asked: survives watch timeouts, dropped connections
and "resource version too old" (410 Gone) by listing again, like client-go's reflector.
Objects are plain dicts, as the API server sends them."""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any, Callable, Iterator

from kubernetes.client.exceptions import ApiException

from .kube import Kube

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Gone(Exception):
    """The resource version we watch from is no longer in the API server's window."""


def watch_events(kube: Kube, path: str, resource_version: str, timeout_seconds: int,
                 **selectors: Any) -> Iterator[Obj]:
    """Watch events of a collection from `resource_version` until the server ends the
    watch; raises Gone when that version is too old."""
    query = {"watch": "true", "resourceVersion": resource_version,
             "allowWatchBookmarks": "true", "timeoutSeconds": timeout_seconds, **selectors}
    try:
        for line in kube.stream_lines(path, query, read_timeout=timeout_seconds + 30):
            event = json.loads(line)
            if event["type"] == "ERROR":
                status = event["object"]
                if status.get("code") == 410:
                    raise Gone()
                raise ApiException(status=status.get("code"), reason=status.get("message"))
            yield event
    except ApiException as exc:
        if exc.status == 410:
            raise Gone() from exc
        raise


def list_watch(
    kube: Kube,
    path: str,
    on_event: Callable[[str, Obj], None],
    on_list: Callable[[list[Obj]], None],
    stop: threading.Event,
    *,
    resource_version: str | None = None,
    **selectors: Any,
) -> None:
    """Calls `on_list(items)` after every (re)list and `on_event(type, obj)` for every
    ADDED/MODIFIED/DELETED of the collection at `path` (e.g. /api/v1/pods with
    fieldSelector=...), until `stop` is set. Given a `resource_version`, starts watching
    from it without listing first (and lists when it turns out too old)."""
    rv = resource_version
    while not stop.is_set():
        try:
            if rv is None:
                listed = kube.get(path, **selectors)
                rv = listed["metadata"]["resourceVersion"]
                on_list(listed["items"])
            # Spread the watches' ends so they do not all reconnect at once.
            for event in watch_events(kube, path, rv, random.randint(240, 300), **selectors):
                rv = event["object"]["metadata"].get("resourceVersion", rv)
                if event["type"] != "BOOKMARK":
                    on_event(event["type"], event["object"])
                if stop.is_set():
                    return
        except Gone:
            log.info("watch of %s expired at resource version %s: listing again", path, rv)
            rv = None
        except Exception:  # connection reset, API server going away, a handler's bug
            if stop.is_set():
                return
            log.exception("watch of %s failed; listing again in 1s", path)
            time.sleep(1)
            rv = None  # events may have been lost
