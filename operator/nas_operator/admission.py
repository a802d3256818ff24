"""Install or upgrade the cluster-wide admission policies (at operator startup)."""

from __future__ import annotations

import logging

from .builders.admission import build_admission_policies
from .config import SearchPodPolicy
from .k8s import KubeApi

log = logging.getLogger(__name__)


def ensure_admission_policies(api: KubeApi, search_policy: SearchPodPolicy) -> None:
    """Create each policy and binding; replace one whose spec differs (an older operator's,
    or one made under other settings)."""
    for obj in build_admission_policies(search_policy):
        existing, created = api.create(obj)
        if created:
            log.info("created %s %s", obj["kind"], obj["metadata"]["name"])
        elif _spec_differs(existing["spec"], obj["spec"]):
            obj = {
                **obj,
                "metadata": {
                    **obj["metadata"],
                    "resourceVersion": existing["metadata"]["resourceVersion"],
                },
            }
            api.replace(obj)
            log.info("updated %s %s", obj["kind"], obj["metadata"]["name"])


def _spec_differs(live: dict, wanted: dict) -> bool:
    """True when a field we set differs (the API server adds defaults we do not set)."""
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(live.get(key), dict):
            if _spec_differs(live[key], value):
                return True
        elif live.get(key) != value:
            return True
    return False
