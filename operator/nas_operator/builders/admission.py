"""ValidatingAdmissionPolicies that confine each search's controller to its own search.

Two cluster-wide policies shared by all searches, parameterised by the searches
themselves: ``paramKind`` is ArchitectureSearch and the bindings select every search in
the request's namespace. A request is checked against each search, and only the search
whose controller ServiceAccount (``<search>-controller``) made the request constrains
it. RBAC alone cannot say "Trials labelled with my search". (Whoever creates a policy
must be allowed to read its paramKind cluster-wide: the chart's ``-admission``
ClusterRole grants get/list/watch on architecturesearches for that.)

- ``archsearch.io-controller-trials``: a controller may create only Trials labelled
  ``archsearch.io/search=<its search>``, with ``spec.searchName: <its search>`` and an
  owner reference to its search (kind, name and uid).
- ``archsearch.io-controller-status``: a controller may change only ``status.controller``
  of its search's status (the operator owns the rest).
"""

from __future__ import annotations

from typing import Any

from ..names import (
    ADMISSION_POLICY_NAME,
    API_VERSION,
    GROUP,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    SEARCH_KIND,
    SEARCH_PLURAL,
    STATUS_POLICY_NAME,
    TRIAL_PLURAL,
)

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
]


def _policy(
    name: str, resource: str, operations: list[str], validations: list[dict]
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
                        "apiGroups": [GROUP],
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


def _forbidden(expression: str, message: str) -> dict[str, str]:
    """A validation that holds for every request except the controller's own."""
    who = (
        "'ServiceAccount ' + request.userInfo.username"
        " + ' is the controller of ArchitectureSearch ' + variables.search"
    )
    return {
        "expression": f"!variables.isController || ({expression})",
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


def _unchanged(field: str) -> str:
    new, old = f"object.status.{field}", f"oldObject.status.{field}"
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


def build_admission_policies() -> list[dict[str, Any]]:
    """Both policies and their bindings, in creation order."""
    return [
        build_trial_admission_policy(),
        build_policy_binding(ADMISSION_POLICY_NAME),
        build_status_admission_policy(),
        build_policy_binding(STATUS_POLICY_NAME),
    ]
