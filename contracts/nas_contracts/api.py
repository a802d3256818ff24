"""Section 1 (and 4): where the two custom resources live in the Kubernetes API."""

from __future__ import annotations

GROUP = "archsearch.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

SEARCH_KIND = "ArchitectureSearch"
SEARCH_PLURAL = "architecturesearches"
TRIAL_KIND = "Trial"
TRIAL_PLURAL = "trials"
