"""A small JSON client for the node agent: plain dicts in and out, over the Python
client's configured connection (TLS, client certificates, tokens). The generated typed
API validates every object into models, which a kubelet stand-in does not need."""
from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urlencode

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api = api_client
        self.host = api_client.configuration.host

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = (self.api.configuration.api_key or {}).get("authorization")
        if token:
            headers["Authorization"] = token
        return headers

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        return self.host + path + ("?" + urlencode(query) if query else "")

    def request(self, method: str, path: str, body: Any = None, *,
                query: dict[str, Any] | None = None, content_type: str = "application/json",
                timeout: float = 30) -> Obj:
        """The decoded JSON answer; raises ApiException (with `.status`) on an error."""
        response = self.api.rest_client.request(
            method, self._url(path, query), headers=self._headers(content_type), body=body,
            _request_timeout=timeout)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason,
                               body=data.decode(errors="replace") if data else None)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> Obj:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> Obj | None:
        try:
            return self.get(path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def stream_lines(self, path: str, query: dict[str, Any], read_timeout: float) -> Iterator[bytes]:
        """The lines of a streaming GET (a watch), until the server closes it."""
        response = self.api.rest_client.pool_manager.request(
            "GET", self._url(path, query), headers=self._headers("application/json"),
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=read_timeout))
        try:
            if response.status != 200:
                raise ApiException(status=response.status, reason=response.reason,
                                   body=response.data.decode(errors="replace"))
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                yield from (line for line in lines if line.strip())
        finally:
            response.release_conn()


def pod_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/pods" + (f"/{name}" if name else "")
