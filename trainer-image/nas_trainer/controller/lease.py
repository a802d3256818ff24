"""Leader lease: at most one controller of a search writes at a time.

The controller holds the coordination.k8s.io Lease ``<search>-controller``. It follows
client-go's leader election: a lease held by someone else is taken over only after its
record has stayed unchanged for a whole lease duration *as observed by us* (no trust in
the other holder's clock), and the holder stops writing once it has not renewed within
the renew deadline (2/3 of the duration), i.e. before anyone may take over.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """This controller no longer holds the lease and must stop writing."""


@dataclass(frozen=True)
class LeaseRecord:
    """The part of a Lease's spec that leader election reads."""

    holder: str
    duration_s: int
    renew_time: str  # as stored; only compared for change, never against our clock
    transitions: int
    resource_version: str


@dataclass
class Observation:
    """The last record we saw of a lease held by someone else, and when (monotonic)."""

    record: LeaseRecord
    seen_at: float


def may_take_over(
    record: LeaseRecord | None, me: str, observed: Observation | None, now: float
) -> bool:
    """Whether ``me`` may acquire the lease described by ``record`` at monotonic ``now``.

    Free when absent, released (no holder) or already ours (a restarted container of the
    same pod). Otherwise only once the record has not changed for its whole duration
    since we first saw it in that state.
    """
    if record is None or not record.holder or record.holder == me:
        return True
    if observed is None or _changed(observed.record, record):
        return False
    return now - observed.seen_at >= record.duration_s


def _changed(old: LeaseRecord, new: LeaseRecord) -> bool:
    return (old.holder, old.renew_time, old.transitions) != (
        new.holder,
        new.renew_time,
        new.transitions,
    )


def lease_name(search: str) -> str:
    return f"{search}-controller"


def _now_micro() -> datetime:
    return datetime.now(timezone.utc)


def _record_of(lease: Any) -> LeaseRecord:
    spec = lease.spec
    return LeaseRecord(
        holder=spec.holder_identity or "",
        duration_s=int(spec.lease_duration_seconds or 0),
        renew_time=str(spec.renew_time or ""),
        transitions=int(spec.lease_transitions or 0),
        resource_version=lease.metadata.resource_version,
    )


class LeaderLease:
    """Acquires, renews (in a daemon thread) and releases one Lease.

    ``held()`` is the check every write makes: it turns false as soon as the renew
    deadline passes without a successful renewal, even while the API is unreachable.
    """

    def __init__(
        self,
        api: client.CoordinationV1Api,
        namespace: str,
        name: str,
        identity: str,
        duration_s: int = 15,
        owner_reference: dict | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration_s = max(1, int(duration_s))
        self.renew_deadline_s = self.duration_s * 2.0 / 3.0
        self.retry_period_s = max(0.2, self.duration_s / 5.0)
        self.owner_reference = owner_reference
        self._clock = clock
        self._valid_until = 0.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.transitions = 0

    # --- public ---------------------------------------------------------------

    def held(self) -> bool:
        return not self._lost.is_set() and self._clock() < self._valid_until

    def ensure_held(self) -> None:
        if not self.held():
            raise LeaseLost(f"lease {self.namespace}/{self.name} is no longer held by {self.identity}")

    def acquire(self, stop: threading.Event | None = None, on_wait: Callable[[str], None] | None = None) -> None:
        """Block until the lease is ours (or ``stop`` is set, which raises LeaseLost)."""
        observed: Observation | None = None
        while True:
            if stop is not None and stop.is_set():
                raise LeaseLost("stopped before acquiring the lease")
            started = self._clock()
            try:
                lease = self._read()
                record = _record_of(lease) if lease is not None else None
                if record is not None and (observed is None or _changed(observed.record, record)):
                    observed = Observation(record, started)
                if may_take_over(record, self.identity, observed, started):
                    if self._write(lease, started, acquiring=True):
                        log.info("acquired lease %s as %s", self.name, self.identity)
                        return
                elif on_wait is not None and record is not None:
                    on_wait(record.holder)
            except ApiException as err:
                if err.status not in (409,):
                    log.warning("lease %s: %s %s", self.name, err.status, err.reason)
            except Exception as err:  # the API server may be restarting: keep trying
                log.warning("lease %s: %s", self.name, err)
            time.sleep(self.retry_period_s)

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Give the lease up on a clean exit so the next controller starts at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry_period_s * 2)
        if not self.held():
            return
        try:
            lease = self._read()
            if lease is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.renew_time = _now_micro()
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except Exception as err:  # best effort: the lease expires anyway
            log.warning("could not release lease %s: %s", self.name, err)
        self._lost.set()

    # --- internals ------------------------------------------------------------

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.retry_period_s):
            if self._lost.is_set():
                return
            started = self._clock()
            try:
                lease = self._read()
                if lease is None or (lease.spec.holder_identity or "") != self.identity:
                    holder = lease.spec.holder_identity if lease is not None else None
                    log.error("lease %s taken by %r", self.name, holder)
                    self._lost.set()
                    return
                self._write(lease, started, acquiring=False)
            except ApiException as err:
                if err.status == 409:  # someone else wrote it: re-read next round
                    continue
                log.warning("lease renew failed: %s %s", err.status, err.reason)
            except Exception as err:
                log.warning("lease renew failed: %s", err)
            if self._clock() >= self._valid_until:
                log.error("lease %s: renew deadline passed", self.name)
                self._lost.set()
                return

    def _read(self) -> Any | None:
        try:
            return self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _write(self, lease: Any | None, started: float, acquiring: bool) -> bool:
        now = _now_micro()
        if lease is None:
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(
                    name=self.name,
                    owner_references=[self.owner_reference] if self.owner_reference else None,
                ),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=self.duration_s,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                self.api.create_namespaced_lease(self.namespace, body)
            except ApiException as err:
                if err.status == 409:  # created by someone else meanwhile
                    return False
                raise
        else:
            spec = lease.spec
            if acquiring and (spec.holder_identity or "") != self.identity:
                spec.lease_transitions = int(spec.lease_transitions or 0) + 1
                spec.acquire_time = now
            spec.holder_identity = self.identity
            spec.lease_duration_seconds = self.duration_s
            spec.renew_time = now
            # resourceVersion in metadata makes this a compare-and-swap (409 on a race)
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)
            self.transitions = int(spec.lease_transitions or 0)
        self._valid_until = started + self.renew_deadline_s
        return True
