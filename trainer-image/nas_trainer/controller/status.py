"""`status.controller` of the search: the only part of its status the controller writes.

docs/contracts.md section 7: a merge patch of the status subresource with
{decision, message, decisionTime, policyVersion, trialsCreated, epoch}. The operator
derives the search's phase from it; after writing a decision the controller exits 0.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from nas_trainer.controller.fencing import FencedOut
from nas_trainer.controller.lease import LeaseLost
from nas_trainer.controller.trials_api import TrialsApi

log = logging.getLogger(__name__)

DECISIONS = ("MaxTrialsReached", "GoalReached", "SpaceExhausted", "TooManyFailures")


def controller_status(
    decision: str,
    message: str,
    policy_version: int,
    trials_created: int,
    epoch: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The `status.controller` object; ``decision`` is "" while the search runs."""
    if decision and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)} (got {decision!r})")
    status: dict[str, Any] = {
        "decision": decision,
        "message": message,
        "policyVersion": int(policy_version),
        "trialsCreated": int(trials_created),
        "epoch": int(epoch),
    }
    if decision:
        moment = now or datetime.now(timezone.utc)
        status["decisionTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return status


class StatusReporter:
    """Patches `status.controller`; progress at most every ``interval_s``, decisions always."""

    def __init__(
        self,
        api: TrialsApi,
        check: Callable[[], None],
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.check = check  # the write guard
        self.interval_s = interval_s
        self._clock = clock
        self._last_sent: dict[str, Any] | None = None
        self._last_at = float("-inf")

    def progress(self, message: str, policy_version: int, trials_created: int, epoch: int) -> None:
        status = controller_status("", message, policy_version, trials_created, epoch)
        if status == self._last_sent or self._clock() - self._last_at < self.interval_s:
            return
        try:
            self._send(status, give_up_after_s=5.0)
        except (LeaseLost, FencedOut):
            raise
        except Exception as err:  # progress is informational: the next one catches up
            log.warning("could not report progress: %s", err)

    def decision(
        self, decision: str, message: str, policy_version: int, trials_created: int, epoch: int
    ) -> None:
        self._send(controller_status(decision, message, policy_version, trials_created, epoch))

    def _send(self, status: dict[str, Any], give_up_after_s: float = 120.0) -> None:
        self.check()
        self.api.patch_search_status({"controller": status}, give_up_after_s)
        self._last_sent = status
        self._last_at = self._clock()
