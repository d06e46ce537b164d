"""A small async Kubernetes API client: JSON objects in and out, over kopf's credentials.

kopf authenticates with a `kopf.ConnectionInfo` (see run.py); this client uses the same one,
so the operator's own calls (nodes, Jobs, pods, EngineBuild status) and kopf's watches go to
one server with one identity.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf

Json = dict[str, Any]


class ApiError(Exception):
    """The API server refused a request: `status` is the HTTP status, `reason` Kubernetes's."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    """409: the object exists already (create) or changed since it was read (update)."""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name)}"
        if subresource:
            base += f"/{subresource}"
        return base


NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod")
JOBS = Resource("batch", "v1", "jobs", "Job")


class Kube:
    """GET/LIST/CREATE/PATCH/DELETE of JSON objects; errors become `ApiError`s.

    `login` gives the connection (server, TLS, token); it is called again after a 401, since
    service-account tokens are rotated on disk while the operator runs."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo], timeout_s: float = 30.0) -> None:
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._server = ""

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            info = self._login()
            self._server = info.server.rstrip("/")
            self._session = aiohttp.ClientSession(
                headers=info.as_http_headers(),
                connector=aiohttp.TCPConnector(ssl=info.as_ssl_context()),
                timeout=self._timeout,
                trust_env=info.trust_env,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        for attempt in (1, 2):
            session = self._open()
            async with session.request(
                method,
                self._server + path,
                params=params,
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": content_type, "Accept": "application/json"},
            ) as response:
                if response.status == 401 and attempt == 1:
                    await self.close()  # log in again: the token may have been rotated
                    continue
                text = await response.text()
                try:
                    payload = json.loads(text) if text else {}
                except ValueError:  # a proxy's error page, say
                    payload = {"message": text[:500]}
                if response.status >= 400:
                    raise _error(response.status, payload)
                if not isinstance(payload, dict):
                    raise ApiError(response.status, "BadResponse", f"not an object: {text[:200]}")
                return payload
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Json:
        return await self._request("GET", resource.path(namespace, name))

    async def list(
        self, resource: Resource, namespace: str | None = None, *, labels: str = ""
    ) -> list[Json]:
        params = {"labelSelector": labels} if labels else None
        answer = await self._request("GET", resource.path(namespace), params=params)
        items: list[Json] = answer.get("items") or []
        return items

    async def create(self, resource: Resource, namespace: str | None, body: Json) -> Json:
        return await self._request("POST", resource.path(namespace), body=body)

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Json,
        *,
        subresource: str = "",
    ) -> Json:
        """A JSON merge patch; `metadata.resourceVersion` in it makes it conditional (409)."""
        return await self._request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def pod_log(
        self, namespace: str, pod: str, *, container: str = "", tail_lines: int = 0
    ) -> str:
        """The log of a pod's container (`pods/log`), text; its last `tail_lines` lines."""
        params = {"container": container} if container else {}
        if tail_lines:
            params["tailLines"] = str(tail_lines)
        path = PODS.path(namespace, pod, "log")
        for attempt in (1, 2):
            session = self._open()
            async with session.get(self._server + path, params=params) as response:
                if response.status == 401 and attempt == 1:
                    await self.close()  # log in again: the token may have been rotated
                    continue
                text = await response.text()
                if response.status >= 400:
                    try:
                        payload = json.loads(text)
                    except ValueError:
                        payload = {"message": text[:500]}
                    raise _error(response.status, payload if isinstance(payload, dict) else {})
                return text
        raise AssertionError("unreachable")  # pragma: no cover

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        """Delete in the background (the Job's pods go with it); gone already is fine."""
        with contextlib.suppress(NotFoundError):
            await self._request(
                "DELETE",
                resource.path(namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )


def _error(status: int, payload: Json) -> ApiError:
    reason = str(payload.get("reason") or "")
    message = str(payload.get("message") or payload)
    if status == 404:
        return NotFoundError(status, reason or "NotFound", message)
    if status == 409:
        return ConflictError(status, reason or "Conflict", message)
    return ApiError(status, reason or "Error", message)
