"""Which API errors are the server saying no, and which are the server being away.

A refusal (400 BadRequest, 403 Forbidden — an admission policy, Pod Security, a
LimitRange or quota, or RBAC —, 413 too large, 422 Invalid) answers the same way however
often the same object is sent: it is permanent for the spec generation that built the
object, so it is reported (a condition, a failed Trial, an Event) and not retried. A 409,
429, 5xx, a dropped connection or a timeout says nothing about the object: retried.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.rest import ApiException
from nas_contracts.cluster import REFUSED_STATUSES

MESSAGE_LIMIT = 900  # a condition's or an Event's message stays readable
# A ValidatingAdmissionPolicy the API server cannot configure yet refuses every request it
# matches with these words (422): for up to a minute after an API server restart its
# paramKind's resource is not yet discovered. The server is not ready; the object is fine.
POLICY_NOT_READY = ("failed to configure policy", "failed to configure binding")


def server_message(err: ApiException) -> str:
    """The API server's own sentence (the Status object's ``message``), else its reason."""
    body = getattr(err, "body", None)
    if body:
        try:
            status: Any = json.loads(body)
        except (ValueError, RecursionError):
            status = None
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
        if isinstance(body, str) and not body.lstrip().startswith("{"):
            return body.strip()[:MESSAGE_LIMIT]
    return str(getattr(err, "reason", "") or f"HTTP {getattr(err, 'status', '?')}")


def is_permanent(err: BaseException) -> bool:
    """The server refused what was sent: sending it again gets the same answer."""
    return (
        isinstance(err, ApiException)
        and err.status in REFUSED_STATUSES
        and not any(words in server_message(err) for words in POLICY_NOT_READY)
    )


class Refused(ApiException):
    """The API server refused to ``action`` (create, patch, update) the ``kind`` named
    ``name``. Still an ApiException with the server's status, so callers that tell 409
    from the rest keep working."""

    def __init__(self, action: str, kind: str, name: str, err: ApiException) -> None:
        super().__init__(status=err.status, reason=err.reason)
        self.body = err.body
        self.headers = getattr(err, "headers", None)
        self.action = action
        self.kind = kind
        self.name = name
        self.message = server_message(err)

    def sentence(self) -> str:
        """What a user reads: which object, what the server said (its words)."""
        text = (
            f"the API server refused to {self.action} {self.kind} {self.name} "
            f"(HTTP {self.status}): {self.message}"
        )
        return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."

    def __str__(self) -> str:
        return self.sentence()


def refused(action: str, kind: str, name: str, err: ApiException) -> ApiException:
    """``err`` as a Refused when it is permanent, else unchanged (re-raise the result)."""
    if isinstance(err, Refused) or not is_permanent(err):
        return err
    return Refused(action, kind, name, err)


def nesting_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests (a scalar is 0), counted without recursion and only up to
    ``limit`` + 1: an object a user made 2,000 levels deep is measured, never walked."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
