"""A search and its controller pod as a status pass sees them (get, create, delete, a status
merge patch), on dicts; a status write can be made to fail, once or until cleared."""
from __future__ import annotations

from typing import Any

from kubernetes.client.rest import ApiException
from nas_operator.records import PodRecord


class SearchCluster:
    def __init__(self, spec: dict[str, Any], status: dict[str, Any], generation: int = 1
                 ) -> None:
        self.search: dict[str, Any] = {
            "apiVersion": "archsearch.io/v1alpha1",
            "kind": "ArchitectureSearch",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": generation,
                         "resourceVersion": "7"},
            "spec": {"trainer": {"image": "nas-trainer:test"}, **spec},
            "status": status,
        }
        self.refuse_patches: ApiException | None = None     # every write, until cleared
        self.refuse_next_patch: ApiException | None = None  # the next write only
        self.deleted: list[str] = []
        self.created: list[str] = []

    def get(self, api_version, kind, namespace, name):
        return self.search if kind == "ArchitectureSearch" else None

    def create(self, obj):
        self.created.append(obj["metadata"]["name"])
        return obj, True

    def delete(self, api_version, kind, namespace, name, uid=None):
        self.deleted.append(name)
        return True

    def patch(self, api_version, kind, namespace, name, body, subresource=None):
        if self.refuse_next_patch is not None:
            err, self.refuse_next_patch = self.refuse_next_patch, None
            raise err
        if self.refuse_patches is not None:
            raise self.refuse_patches
        status = dict(self.search["status"])
        for key, value in body["status"].items():  # a JSON merge patch: None removes
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        self.search["status"] = status
        return self.search


def running_pod() -> PodRecord:
    return PodRecord(name="s-controller", uid="p1", phase="Running", deleting=False,
                     finished_at=None, message="")
