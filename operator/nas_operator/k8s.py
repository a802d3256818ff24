"""A small dict-in, dict-out client for the few kinds the operator touches.

The builders return plain dicts; this module sends them. ``create`` treats 409
AlreadyExists as success and returns the existing object, which is what makes every
creation idempotent (operator restarts, two operators at once). A write the API server
refuses (refusals.py: 400, 403, 413, 422) is raised as ``Refused``, naming the object.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .refusals import refused
from .names import API_VERSION, SEARCH_KIND, SEARCH_PLURAL, TRIAL_KIND, TRIAL_PLURAL

# (apiVersion, kind) -> (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Event"): ("events", True),
    ("v1", "Service"): ("services", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    (API_VERSION, SEARCH_KIND): (SEARCH_PLURAL, True),
    (API_VERSION, TRIAL_KIND): (TRIAL_PLURAL, True),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): (
        "validatingadmissionpolicies",
        False,
    ),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): (
        "validatingadmissionpolicybindings",
        False,
    ),
}
TIMEOUT_SECONDS = 30


def resource_path(
    api_version: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    plural, namespaced = RESOURCES[(api_version, kind)]
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


class KubeApi:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        method, url, headers, body, post = self.api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, headers, body, post, _request_timeout=TIMEOUT_SECONDS
        )
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(
                status=response.status, reason=response.reason, body=data.decode(errors="replace")
            )
        return json.loads(data or b"{}")

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return self._call("GET", resource_path(api_version, kind, namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str,
        field_selector: str = "",
    ) -> list[dict[str, Any]]:
        path = resource_path(api_version, kind, namespace)
        query = [("labelSelector", label_selector)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        return list(self._call("GET", path, query=query).get("items") or [])

    def create(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create ``obj``; if it exists already, return the existing one. (object, created)."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        try:
            return self._call("POST", path, body=obj), True
        except ApiException as err:
            if err.status != 409:
                raise refused("create", obj["kind"], meta["name"], err) from None
        existing = self.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        if existing is None:  # deleted between our create and get: the next reconcile retries
            raise ApiException(
                status=409, reason=f"{obj['kind']} {meta['name']} exists but cannot be read"
            )
        return existing, False

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch; metadata.resourceVersion in ``body`` makes it conditional."""
        path = resource_path(api_version, kind, namespace, name, subresource)
        try:
            return self._call(
                "PATCH", path, body=body, content_type="application/merge-patch+json"
            )
        except ApiException as err:
            what = f"the {subresource} of {kind}" if subresource else kind
            raise refused("patch", what, name, err) from None

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        try:
            return self._call("PUT", path, body=obj)
        except ApiException as err:
            raise refused("update", obj["kind"], meta["name"], err) from None

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        """Delete (only the object with ``uid`` when given); False when it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._call("DELETE", resource_path(api_version, kind, namespace, name), body=body)
            return True
        except ApiException as err:
            if err.status in (404, 409):
                return False
            raise


_lock = threading.Lock()
_api: KubeApi | None = None


def api() -> KubeApi:
    """The process-wide client: in-cluster credentials, else the kubeconfig."""
    global _api
    with _lock:
        if _api is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            _api = KubeApi(client.ApiClient())
        return _api
