"""The ValidatingAdmissionPolicy that keeps a search from giving its pods more rights than
its author has.

The operator, not the author, creates the trial pods, so a reference in spec.trainer
would otherwise be followed with the operator's rights. At admission, where the author
is known (``authorizer`` checks the requesting user), a search may:

- add volumes only of the kinds the admin allows (``SearchPodPolicy.volume_types``);
- mount a ConfigMap or a claim only if its author may get it;
- read a Secret (volume, ``secretKeyRef``, or an image pull secret) per
  ``secret_references``: Never (pull secrets stay allowed: the kubelet, not the trainer,
  reads them), only if its author may get it, or always;
- run its trial pods under a ServiceAccount only if the admin lists it, or if its author
  may create pods in the namespace (then they could use it anyway).

Privileges, host access and security contexts are not in the CRD at all; the builders
set the security contexts (``builders/security.py``). The rules are baked from the
operator's settings at startup, so a chart upgrade that changes them replaces the policy.
"""

from __future__ import annotations

from typing import Any

from ..config import VOLUME_TYPES, SearchPodPolicy
from ..names import GROUP, LABEL_MANAGED_BY, MANAGED_BY, SEARCH_PLURAL, SEARCH_POD_POLICY_NAME

API = "admissionregistration.k8s.io/v1"
TRAINER = "object.spec.trainer"
# how each volume kind names the object it mounts
REFERENCED = {
    "configMap": ("configmaps", "name"),
    "persistentVolumeClaim": ("persistentvolumeclaims", "claimName"),
    "secret": ("secrets", "secretName"),
}


def _can(verb: str, resource: str, name: str | None = None) -> str:
    check = f"authorizer.group('').resource('{resource}').namespace(request.namespace)"
    if name is not None:
        check += f".name({name})"
    return f"{check}.check('{verb}').allowed()"


def _each(field: str, var: str, rule: str) -> str:
    """``rule`` holds for every item ``var`` of the list spec.trainer.``field``."""
    return f"!has({TRAINER}.{field}) || {TRAINER}.{field}.all({var}, {rule})"


def _rule(expression: str, message: str) -> dict[str, str]:
    return {"expression": expression, "message": message, "reason": "Forbidden"}


def _volume_rules(policy: SearchPodPolicy) -> list[dict[str, str]]:
    rules = []
    refused = [kind for kind in VOLUME_TYPES if kind not in policy.volume_types]
    if policy.secret_references == "Never" and "secret" not in refused:
        refused.append("secret")
    if refused:
        none = " && ".join(f"!has(v.{kind})" for kind in refused)
        allowed = [k for k in VOLUME_TYPES if k not in refused]
        rules.append(
            _rule(
                _each("volumes", "v", none),
                "spec.trainer.volumes: this cluster lets a search add only volumes of kind "
                + (", ".join(allowed) or "none")
                + " (the operator's searchPolicy.volumeTypes and secretReferences)",
            )
        )
    checked = [k for k in ("configMap", "persistentVolumeClaim") if k in policy.volume_types]
    if policy.secret_references == "IfAuthorCanRead":
        checked.append("secret")
    for kind in checked:
        resource, key = REFERENCED[kind]
        rules.append(
            _rule(
                _each("volumes", "v", f"!has(v.{kind}) || {_can('get', resource, f'v.{kind}.{key}')}"),
                f"spec.trainer.volumes: a {kind} volume may name only {resource} you may get:"
                " ask for read access to it or remove the volume",
            )
        )
    return rules


def _env_rules(policy: SearchPodPolicy) -> list[dict[str, str]]:
    secret_ref = "has(e.valueFrom) && has(e.valueFrom.secretKeyRef)"
    config_ref = "has(e.valueFrom) && has(e.valueFrom.configMapKeyRef)"
    rules = [
        _rule(
            _each("env", "e", f"!({config_ref}) || "
                  + _can("get", "configmaps", "e.valueFrom.configMapKeyRef.name")),
            "spec.trainer.env: configMapKeyRef may name only ConfigMaps you may get",
        )
    ]
    if policy.secret_references == "IfAuthorCanRead":
        # the kubelet pulls the image with them: a use of the Secret like any other
        rules.append(
            _rule(
                _each("imagePullSecrets", "p", _can("get", "secrets", "p.name")),
                "spec.trainer.imagePullSecrets may name only Secrets you may get",
            )
        )
    if policy.secret_references == "Never":
        rules.append(
            _rule(
                _each("env", "e", f"!({secret_ref})"),
                "spec.trainer.env: secretKeyRef is not allowed on this cluster (the operator's"
                " searchPolicy.secretReferences is Never)",
            )
        )
    elif policy.secret_references == "IfAuthorCanRead":
        rules.append(
            _rule(
                _each("env", "e", f"!({secret_ref}) || "
                      + _can("get", "secrets", "e.valueFrom.secretKeyRef.name")),
                "spec.trainer.env: secretKeyRef may name only Secrets you may get: ask for"
                " read access to it or remove the variable",
            )
        )
    return rules


def _service_account_rule(policy: SearchPodPolicy) -> dict[str, str]:
    listed = ", ".join(f"'{name}'" for name in policy.service_accounts)
    return _rule(
        f"!has({TRAINER}.serviceAccountName) || {TRAINER}.serviceAccountName in [{listed}]"
        f" || {_can('create', 'pods')}",
        "spec.trainer.serviceAccountName: trial pods may run under a ServiceAccount only if"
        " the operator's searchPolicy.serviceAccounts lists it or you may create pods in"
        " this namespace yourself",
    )


def build_search_pod_policy(policy: SearchPodPolicy) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": SEARCH_POD_POLICY_NAME, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [SEARCH_PLURAL],
                    }
                ]
            },
            # only what an author wrote: a search stored before a policy change keeps working
            # (its status, finalizers and labels can still be written)
            "matchConditions": [
                {
                    "name": "trainer-written",
                    "expression": f"has({TRAINER}) && (request.operation == 'CREATE'"
                    f" || !has(oldObject.spec.trainer) || {TRAINER} != oldObject.spec.trainer)",
                }
            ],
            "validations": _volume_rules(policy)
            + _env_rules(policy)
            + [_service_account_rule(policy)],
        },
    }


def build_search_pod_policy_binding() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": SEARCH_POD_POLICY_NAME, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "spec": {"policyName": SEARCH_POD_POLICY_NAME, "validationActions": ["Deny"]},
    }
