"""Operator-wide setup: kopf settings, metrics server, admission policies, status loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

import kopf

from .. import metrics
from ..admission import ensure_admission_policies
from ..config import SETTINGS
from ..k8s import api
from ..names import GROUP, LABEL_MANAGED_BY, MANAGED_BY
from ..status_loop import LOOP

SYNC_HANDLER_THREADS = 24


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration annotation, holding a digest of the spec instead
    of the spec. The handlers never read kopf's diff (they re-read the object), only
    whether it changed; a spec over the API server's 256 KiB limit for all annotations
    made kopf's own annotation write fail on every event, so the search was never handled.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        text = json.dumps(essence, sort_keys=True, separators=(",", ":"), default=str)
        return {"spec": {"sha256": hashlib.sha256(text.encode()).hexdigest()}}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Handler progress and the diff-base go to annotations, never to status.kopf: our
    # status has a structural schema and belongs to the operator's own fields (kopf's
    # default SmartProgressStorage also writes status.kopf, which the API server would
    # prune). https://kopf.readthedocs.io/en/stable/configuration/#handling-progress
    # and https://github.com/nolar/kopf/issues/574
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Every create is idempotent (deterministic names, 409 = done) and every status write
    # is conditional on resourceVersion, so a second operator is harmless; without peering
    # the operator needs no KopfPeering CRD nor RBAC for it.
    # https://kopf.readthedocs.io/en/stable/peering/
    settings.peering.standalone = True
    # Only warnings and errors from kopf's own logs become Events: the operator posts its
    # own Events for what a user should see.
    # https://kopf.readthedocs.io/en/stable/configuration/#logging-events
    settings.posting.level = logging.WARNING
    # The CRDs are installed before the operator (chart crds/) and the namespaces are
    # given on the command line: no cluster-wide list/watch of CRDs and namespaces needed.
    # https://kopf.readthedocs.io/en/stable/scopes/ (ScanningSettings.disabled)
    settings.scanning.disabled = True
    # A trial's sync handler spends its time waiting for the API server (a few requests in
    # a row): with many trials at once, kopf's default pool (CPUs + 4 threads) becomes the
    # queue. https://kopf.readthedocs.io/en/stable/configuration/#synchronous-handlers
    settings.execution.max_workers = SYNC_HANDLER_THREADS
    # Server-side label selectors: watch only the pods and Jobs the operator made, not
    # every pod of the cluster. kopf.OperatorSettings.watching.label_selectors (kopf>=1.40)
    for resource in (("v1", "pods"), ("batch", "v1", "jobs")):
        settings.watching.label_selectors[resource] = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


@kopf.on.startup()
def admission_policies(logger: kopf.Logger, **_: Any) -> None:
    if SETTINGS.manage_admission_policy:
        ensure_admission_policies(api(), SETTINGS.search_policy)
    else:
        logger.info(
            "admission policies are managed elsewhere (NAS_OPERATOR_MANAGE_ADMISSION_POLICY=false)"
        )


@kopf.on.startup()
async def status_loop(memo: kopf.Memo, **kwargs: Any) -> None:
    metrics.serve(SETTINGS.metrics_port)
    indices = {
        k: kwargs[k] for k in ("searches", "trials_by_search", "trial_jobs", "controller_pods")
    }
    memo["status_loop"] = asyncio.create_task(LOOP.run(indices, SETTINGS))


@kopf.on.cleanup()
async def stop_status_loop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("status_loop")
    if task is not None:
        task.cancel()


@kopf.on.probe(id="statusLoopSecondsSincePass")
def status_loop_age(**_: Any) -> float:
    """In /healthz: seconds since the status loop last ran (it ticks every few seconds)."""
    return round(time.monotonic() - LOOP.last_pass, 1)
