"""Retrying API calls through the blips of a live cluster (an API server restarting,
etcd leader changes, throttling), for as long as this controller may still write."""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# A ValidatingAdmissionPolicy the API server cannot configure yet refuses every request it
# matches with these words (422): for up to a minute after an API server restart its
# paramKind's resource is not yet discovered. The server is not ready; the request is fine.
POLICY_NOT_READY = ("failed to configure policy", "failed to configure binding")


class Backoff:
    """Exponential backoff, reset after a success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 10.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first_s


def is_transient(err: BaseException) -> bool:
    """An error worth retrying: the server is away or overloaded, not saying no."""
    if isinstance(err, ApiException):
        return err.status in TRANSIENT_STATUSES or not err.status or policy_not_ready(err)
    return isinstance(err, (HTTPError, ConnectionError, TimeoutError))


def policy_not_ready(err: ApiException) -> bool:
    """The API server refused because an admission policy is not configured yet."""
    body = err.body if isinstance(err.body, str) else (err.body or b"").decode(errors="replace")
    return any(words in body for words in POLICY_NOT_READY)


def retrying(call: Callable[[], T], what: str, check: Callable[[], None] | None = None,
             give_up_after_s: float = 120.0) -> T:
    """``call()``, retried on transient errors with backoff. ``check`` runs before each
    retry and ends them by raising (a lost lease: someone else carries on)."""
    backoff = Backoff()
    deadline = time.monotonic() + give_up_after_s
    while True:
        try:
            return call()
        except Exception as err:
            if not is_transient(err) or time.monotonic() >= deadline:
                raise
            delay = backoff.next()
            log.warning("%s failed (%s); retrying in %.1fs", what, err, delay)
            time.sleep(delay)
            if check is not None:
                check()
