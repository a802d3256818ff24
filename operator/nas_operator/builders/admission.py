"""ValidatingAdmissionPolicies that confine each search's controller and warm workers to
their own search.

Three cluster-wide policies shared by all searches, parameterised by the searches
themselves: ``paramKind`` is ArchitectureSearch and the bindings select every search in
the request's namespace. A request is checked against each search, and only the search
whose controller (``<search>-controller``) or warm worker (``<search>-worker``)
ServiceAccount made the request constrains it. RBAC alone cannot say "Trials labelled
with my search" or "only this annotation". (Whoever creates a policy must be allowed
to read its paramKind cluster-wide: the chart's ``-admission`` ClusterRole grants
get/list/watch on architecturesearches for that.)

- ``archsearch.io-controller-trials``: a controller may create only Trials labelled
  ``archsearch.io/search=<its search>``, with ``spec.searchName: <its search>`` and an
  owner reference to its search (kind, name and uid).
- ``archsearch.io-controller-status``: a controller may change only ``status.controller``
  of its search's status (the operator owns the rest).
- ``archsearch.io-worker-pods``: a warm worker may change only the
  ``archsearch.io/result`` annotation, and only of its own pod: the one its pod-bound
  token names (user extra ``authentication.kubernetes.io/pod-name``). Its Role lets it
  patch all its search's worker pods, and a pod patch could otherwise rewrite labels, the
  assignment or the image, or answer another worker's Trial.
"""

from __future__ import annotations

from typing import Any

from ..config import SearchPodPolicy
from ..names import (
    ADMISSION_POLICY_NAME,
    API_VERSION,
    GROUP,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    RESULT_ANNOTATION,
    SEARCH_KIND,
    SEARCH_PLURAL,
    STATUS_POLICY_NAME,
    TRIAL_PLURAL,
    WORKER_POLICY_NAME,
)

from .search_policy import build_search_pod_policy, build_search_pod_policy_binding

API = "admissionregistration.k8s.io/v1"

# status fields the operator owns; the controller may not change them
OPERATOR_STATUS_FIELDS = (
    "phase",
    "observedGeneration",
    "conditions",
    "trials",
    "progress",
    "best",
    "final",
    "controllerPod",
    "controllerRestarts",
    "controllerRestartsInARow",
    "controllerProgress",
    "startTime",
    "completionTime",
)

_FROM_SERVICE_ACCOUNT = {
    "name": "from-a-service-account",
    "expression": "request.userInfo.username.startsWith('system:serviceaccount:')",
}
_VARIABLES = [
    {"name": "search", "expression": "params.metadata.name"},
    {
        "name": "isController",
        "expression": "request.userInfo.username == 'system:serviceaccount:'"
        " + params.metadata.namespace + ':' + params.metadata.name + '-controller'",
    },
    {
        "name": "isWorker",
        "expression": "request.userInfo.username == 'system:serviceaccount:'"
        " + params.metadata.namespace + ':' + params.metadata.name + '-worker'",
    },
]
# who each policy confines: its variable and how the refusal names the ServiceAccount
_CONTROLLER = ("variables.isController", "the controller")
_WORKER = ("variables.isWorker", "a warm worker")


def _policy(
    name: str, resource: str, operations: list[str], validations: list[dict], group: str = GROUP
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": API_VERSION, "kind": SEARCH_KIND},
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "operations": operations,
                        "resources": [resource],
                    }
                ]
            },
            "matchConditions": [_FROM_SERVICE_ACCOUNT],
            "variables": _VARIABLES,
            "validations": validations,
        },
    }


def _forbidden(
    expression: str, message: str, account: tuple[str, str] = _CONTROLLER
) -> dict[str, str]:
    """A validation that holds for every request except those of ``account``."""
    confined, role = account
    who = (
        "'ServiceAccount ' + request.userInfo.username"
        f" + ' is {role} of ArchitectureSearch ' + variables.search"
    )
    return {
        "expression": f"!{confined} || ({expression})",
        "messageExpression": f"{who} + ': ' + {message}",
        "reason": "Forbidden",
    }


def build_trial_admission_policy() -> dict[str, Any]:
    labelled = (
        "has(object.metadata.labels) && 'archsearch.io/search' in object.metadata.labels"
        " && object.metadata.labels['archsearch.io/search'] == variables.search"
    )
    owned = (
        "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists("
        f"o, o.kind == '{SEARCH_KIND}' && o.name == variables.search"
        " && o.uid == params.metadata.uid)"
    )
    return _policy(
        ADMISSION_POLICY_NAME,
        TRIAL_PLURAL,
        ["CREATE"],
        [
            _forbidden(
                labelled,
                "'it may create only Trials labelled archsearch.io/search=' + variables.search",
            ),
            _forbidden(
                "object.spec.searchName == variables.search",
                "'spec.searchName must be ' + variables.search",
            ),
            _forbidden(
                owned,
                "'a Trial must have an owner reference to ArchitectureSearch ' + variables.search"
                " + ' (uid ' + params.metadata.uid + ')'",
            ),
        ],
    )


def _unchanged(field: str, within: str = "status") -> str:
    new, old = f"object.{within}.{field}", f"oldObject.{within}.{field}"
    return f"(has({new}) == has({old}) && (!has({new}) || {new} == {old}))"


def build_status_admission_policy() -> dict[str, Any]:
    unchanged = " && ".join(_unchanged(f) for f in OPERATOR_STATUS_FIELDS)
    return _policy(
        STATUS_POLICY_NAME,
        f"{SEARCH_PLURAL}/status",
        ["UPDATE"],
        [
            _forbidden(
                f"!has(object.status) || !has(oldObject.status) || ({unchanged})",
                "'it may change only status.controller of its search'",
            )
        ],
    )


def _entries_kept(new: str, old: str, except_key: str) -> str:
    """Every entry of map ``new`` but ``except_key`` is in map ``old`` with the same value."""
    return (
        f"(!has({new}) || {new}.all(k, k == '{except_key}'"
        f" || (has({old}) && k in {old} && {old}[k] == {new}[k])))"
    )


# set by the API server for a service-account token bound to a pod (as kubelet projects it)
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"


def build_worker_admission_policy() -> dict[str, Any]:
    # its own pod: the one its pod-bound token names (a token bound to no pod writes none)
    extra = "request.userInfo.extra"
    own_pod = (
        f"has({extra}) && '{POD_NAME_EXTRA}' in {extra}"
        f" && {extra}['{POD_NAME_EXTRA}'] == [object.metadata.name]"
    )
    # resourceVersion, generation and managedFields are the API server's; name, namespace,
    # uid and creationTimestamp are immutable; status is reset on a pods (not pods/status)
    # write. What a worker's patch could change is the rest of metadata and the spec.
    meta = "object.metadata", "oldObject.metadata"
    unchanged = " && ".join(
        [own_pod]
        + [_unchanged(f, "metadata") for f in ("labels", "ownerReferences", "finalizers")]
        + [
            _entries_kept(f"{meta[0]}.annotations", f"{meta[1]}.annotations", RESULT_ANNOTATION),
            _entries_kept(f"{meta[1]}.annotations", f"{meta[0]}.annotations", RESULT_ANNOTATION),
            "object.spec == oldObject.spec",
        ]
    )
    return _policy(
        WORKER_POLICY_NAME,
        "pods",
        ["UPDATE"],  # a patch is an UPDATE; its Role has no pods/status nor delete
        [
            _forbidden(
                unchanged,
                f"'a warm worker may only write the {RESULT_ANNOTATION} annotation of its own"
                " pod, with a token bound to that pod'",
                _WORKER,
            )
        ],
        group="",
    )


def build_policy_binding(policy_name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {
            "policyName": policy_name,
            "validationActions": ["Deny"],
            # every search of the request's namespace; none (a namespace without searches): allow
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
        },
    }


def build_admission_policies(
    search_policy: SearchPodPolicy | None = None,
) -> list[dict[str, Any]]:
    """The policies and their bindings, in creation order; ``search_policy``: what the
    admin lets a search put in its pods (the operator's settings)."""
    return [
        build_search_pod_policy(search_policy or SearchPodPolicy()),
        build_search_pod_policy_binding(),
        build_trial_admission_policy(),
        build_policy_binding(ADMISSION_POLICY_NAME),
        build_status_admission_policy(),
        build_policy_binding(STATUS_POLICY_NAME),
        build_worker_admission_policy(),
        build_policy_binding(WORKER_POLICY_NAME),
    ]
