"""Errors no restart of the controller can mend, and how the operator learns of them.

Contract (docs/contracts.md section 7): the controller exits with ``EXIT_PERMANENT`` (3)
after writing its termination message as JSON ``{"reason", "message", "generation"}``;
the operator fails the search at once with that reason and message (a restart would
meet the same spec). ``generation`` is the search's metadata.generation the error is
about: after a spec change the operator starts a new controller instead.

Reasons: ``InvalidSpec`` (what `nas validate` refuses: the manifest, the built-in
trainer's fit, the space and the strategy; the message names the field),
``TrialRefused`` (the API server refused a Trial: 400, 403, 413, 422),
``StatusRefused`` (it refused the controller's status.controller, e.g. its decision),
``InvalidConfiguration`` (the pod's environment, set by the operator).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException
from nas_contracts.cluster import (  # noqa: F401  (EXIT_PERMANENT: nas-controller's, read here)
    CONTROLLER_EXIT_PERMANENT as EXIT_PERMANENT,
    INVALID_SPEC,
    REFUSED_STATUSES,
    STATUS_REFUSED,
    TRIAL_REFUSED,
    ControllerExit,
)
from nas_contracts.result import TERMINATION_LOG

from nas_trainer.controller.retry import policy_not_ready
from nas_trainer.manifest import ManifestError, SearchManifest, parse_search
from nas_trainer.preflight import trainer_problem

log = logging.getLogger(__name__)



class PermanentError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidSpec(PermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_SPEC, message)


class TrialRefused(PermanentError):
    def __init__(self, name: str, err: ApiException) -> None:
        super().__init__(
            TRIAL_REFUSED,
            f"the API server refused to create Trial {name} (HTTP {err.status}): "
            f"{server_message(err)}",
        )


class StatusRefused(PermanentError):
    def __init__(self, search: str, err: ApiException) -> None:
        super().__init__(
            STATUS_REFUSED,
            f"the API server refused the controller's status of {search} (HTTP {err.status}): "
            f"{server_message(err)}",
        )


def server_message(err: ApiException) -> str:
    """The API server's sentence from its Status body, else the HTTP reason."""
    try:
        status: Any = json.loads(err.body or "")
    except (ValueError, TypeError, RecursionError):
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(err.reason or f"HTTP {err.status}")


def is_refusal(err: BaseException) -> bool:
    """The server said no to this object (the same body gets the same answer)."""
    return (
        isinstance(err, ApiException)
        and err.status in REFUSED_STATUSES
        and not policy_not_ready(err)  # the server not ready yet: retried
    )


def check_spec(document: dict[str, Any]) -> SearchManifest:
    """The checks of `nas validate`, on the search as read from the cluster; raises
    InvalidSpec naming the field. Builds the space and the strategy once, as the loop
    will: what they refuse is refused here, before anything is held."""
    try:
        manifest = parse_search(document)
        problem = trainer_problem(manifest)
        if problem is not None:
            raise ManifestError(problem)
        space = manifest.space.build()
        manifest.strategy.build(space)
    except (ManifestError, ValueError, TypeError) as err:
        raise InvalidSpec(str(err)) from err
    except RecursionError as err:
        raise InvalidSpec("the spec nests too deep to be read") from err
    return manifest


def termination_message(err: PermanentError, generation: int | None) -> str:
    return ControllerExit(err.reason, err.message, generation).to_message()


def write_termination_message(err: PermanentError, generation: int | None,
                              path: str | None = None) -> None:
    """Where the kubelet reads it; nothing outside a pod (no such file to write)."""
    explicit = path or os.environ.get("NAS_TERMINATION_LOG")
    target = Path(explicit or TERMINATION_LOG)
    if not explicit and not target.exists():
        return
    try:
        target.write_text(termination_message(err, generation))
    except OSError as write_error:
        log.warning("could not write the termination message to %s: %s", target, write_error)
