"""Cluster DNS, as far as a pod with a ``subdomain`` needs it (an Indexed Job's pods
finding index 0 at ``<hostname>.<subdomain>``): this control plane has no DNS server, so
the agent gives such a pod an /etc/hosts naming the pods of its subdomain.

As CoreDNS does, a name exists only for a pod with ``hostname`` and ``subdomain`` set when
a Service named after the subdomain exists in its namespace; every test pod shares the
host's network, so every name is the loopback address. The file is rewritten in place (the
bind mount follows the same inode) while the pod runs, as peers come and go.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from .kube import Kube

LOOPBACK = "127.0.0.1"
HEADER = f"{LOOPBACK}\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
REFRESH_SECONDS = 1.0


def hosts_text(namespace: str, subdomain: str, pods: list[dict[str, Any]],
               service_exists: bool) -> str:
    """The /etc/hosts of a pod in ``namespace`` whose spec.subdomain is ``subdomain``."""
    lines = [HEADER]
    if service_exists:
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            spec = pod.get("spec") or {}
            hostname = spec.get("hostname")
            if spec.get("subdomain") != subdomain or not hostname:
                continue
            short = f"{hostname}.{subdomain}"
            lines.append(f"{LOOPBACK}\t{short} {short}.{namespace}.svc "
                         f"{short}.{namespace}.svc.cluster.local\n")
    return "".join(lines)


class PodHosts:
    """The /etc/hosts file of one pod, kept up to date by ``refresh``."""

    def __init__(self, kube: Kube, namespace: str, subdomain: str, path: Path) -> None:
        self.kube, self.namespace, self.subdomain, self.path = kube, namespace, subdomain, path
        self.last = 0.0
        path.touch(mode=0o644, exist_ok=True)

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last < REFRESH_SECONDS:
            return
        self.last = time.monotonic()
        base = f"/api/v1/namespaces/{self.namespace}"
        try:
            pods = self.kube.request("GET", f"{base}/pods").get("items") or []
            service = self.kube.get_or_none(f"{base}/services/{self.subdomain}")
        except ApiException:
            return  # the next refresh tries again; the file keeps what it had
        text = hosts_text(self.namespace, self.subdomain, pods, service is not None)
        with open(self.path, "r+", encoding="utf-8") as out:  # same inode: the mount sees it
            if out.read() != text:
                out.seek(0)
                out.truncate()
                out.write(text)
