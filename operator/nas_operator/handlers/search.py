"""ArchitectureSearch handlers: make the children, then let the status loop take over.

What the API server refuses (refusals.py) fails the search at once with the server's
words (phase Failed, condition Failed with reason CreateRefused, a Warning Event); the
handler then returns, so kopf does not retry a refusal. A new spec (or an operator
restart, for a refused create) tries again: nothing made before is lost.
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from .. import events, metrics
from ..children import ensure_search_children
from ..config import SETTINGS
from ..k8s import api
from ..names import API_VERSION, GROUP, SEARCH_KIND, SEARCH_PLURAL, VERSION
from ..refusals import Refused, nesting_depth
from ..search_reconcile import refusal_of
from ..search_status import Refusal, derive_search_status, is_blocked, utcnow
from ..status_loop import LOOP, brief

# Deeper than any field of the schema nests (affinity is the deepest, ~10 levels).
MAX_SPEC_DEPTH = 64
REFUSED_STATUS_KEYS = ("phase", "conditions", "startTime", "completionTime")


@kopf.on.resume(GROUP, VERSION, SEARCH_PLURAL)
@kopf.on.create(GROUP, VERSION, SEARCH_PLURAL)
@kopf.on.update(GROUP, VERSION, SEARCH_PLURAL)
@metrics.instrumented("search_children")
def search_children(
    namespace: str,
    name: str,
    status: kopf.Status,
    reason: kopf.Reason,
    **_: Any,
) -> None:
    """Volume, RBAC, trainer snapshot, Job suspension; idempotent."""
    search = api().get(API_VERSION, SEARCH_KIND, namespace, name)
    if search is None or search["metadata"].get("deletionTimestamp"):
        return
    refusal = spec_refusal(search)
    if refusal is None:
        try:
            ensure_search_children(api(), search)
        except Refused as err:
            refusal = refusal_of(search, err)
        except ApiException:
            raise  # the server away or a conflict: kopf retries with backoff
        except kopf.TemporaryError:
            raise
        except Exception as err:  # a bug: told on the search, retried by kopf
            events.warning_once(search, "ReconcileError", f"the operator failed: {brief(err)}")
            raise
    fields: dict[str, Any] = {"observedGeneration": search["metadata"]["generation"]}
    if refusal is not None:
        refused = derive_search_status(
            search, [], None, utcnow(), SETTINGS.controller_restart_limit, refusal=refusal
        )
        for key in REFUSED_STATUS_KEYS:
            fields[key] = refused.get(key)
    elif is_blocked(search) and (reason == kopf.Reason.UPDATE or _refused_write(search)):
        # Failed for what a spec generation was refused: this one gets its chance.
        fields["phase"] = "Pending"
        fields["completionTime"] = None
        fields["conditions"] = _retrying(search)
        events.normal(search, "Retrying", "the spec changed: trying again where it stopped")
    elif not status.get("phase"):
        fields["phase"] = "Pending"
    write_status(search, fields)
    LOOP.mark(namespace, name)


def write_status(search: dict[str, Any], fields: dict[str, Any]) -> None:
    """Writes what this handler decided before kopf records it as done. Written by kopf's
    own patch instead, a refused or failed status write (an admission policy the API
    server is still configuring after a restart) would be lost after the handler counted
    as succeeded, and the status loop waits for observedGeneration forever; raised here,
    kopf retries the handler."""
    meta = search["metadata"]
    try:
        api().patch(
            API_VERSION, SEARCH_KIND, meta["namespace"], meta["name"], {"status": fields},
            subresource="status",
        )
    except ApiException as err:
        if err.status != 404:  # deleted meanwhile: nothing left to write to
            raise


def spec_refusal(search: dict[str, Any]) -> Refusal | None:
    """A spec no part of the operator may walk: refused before anything is made of it."""
    depth = nesting_depth(search.get("spec"), MAX_SPEC_DEPTH)
    if depth <= MAX_SPEC_DEPTH:
        return None
    message = (
        f"spec nests more than {MAX_SPEC_DEPTH} levels deep: no field of an "
        "ArchitectureSearch does; fix the manifest and apply it again"
    )
    events.warning(search, "InvalidSpec", message)
    return Refusal("InvalidSpec", message)


def _retrying(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The conditions with Failed lifted (the status loop recomputes the rest)."""
    conditions = (search.get("status") or {}).get("conditions") or []
    return [
        {**c, "status": "False", "reason": "Retrying", "message": "the spec changed"}
        if c.get("type") == "Failed"
        else c
        for c in conditions
    ]


def _refused_write(search: dict[str, Any]) -> bool:
    conditions = (search.get("status") or {}).get("conditions") or []
    failed = next((c for c in conditions if c.get("type") == "Failed"), {})
    return str(failed.get("reason", "")).endswith("Refused")


@kopf.on.event(GROUP, VERSION, SEARCH_PLURAL)
def search_event(event: kopf.RawEvent, namespace: str, name: str, **_: Any) -> None:
    if event["type"] == "DELETED":
        LOOP.forget(namespace, name)
        metrics.forget_search(namespace, name)
    else:
        LOOP.mark(namespace, name)
