"""A Kubernetes API server for tests: kmock's emulator with the gaps that matter to an operator
filled (../shared/NOTES.md "Kubernetes, gRPC and monitoring tooling").

kmock 0.8's `KubernetesEmulator` keeps objects in memory and serves list/watch/get/create/
patch/delete over HTTP. This subclass adds what kopf and a controller rely on:

- metadata stamped on create (uid, resourceVersion, generation, creationTimestamp, the
  namespace from the URL, names from generateName) and 409 AlreadyExists;
- one resourceVersion counter; `metadata.resourceVersion` in a patch (or `preconditions`
  in a delete) must match, else 409 Conflict; generation moves only with the spec;
- the `status` subresource isolated: writes to the object ignore status, writes to /status
  change only status (for resources declared with it, as Jobs, pods and CRDs with
  `subresources.status` are);
- JSON patch and merge patch (strategic merge is treated as merge; apply is 415);
- lists with `kind`, `apiVersion` and the list's resourceVersion; label and field selectors
  on lists and watches;
- watches from a resourceVersion (only later events, none replayed), `timeoutSeconds`, and a
  BOOKMARK at the end when asked; the core group's discovery says `v1`, not `/v1`;
- pod logs (`pods/<name>/log`, `tailLines`) as text, from `log_source` (a test's kubelet);
- `accesses(emulator)`: every request it served on a resource (kmock keeps them all) as RBAC
  sees it, an `Access` (port, verb, group, resource, namespace, name), so a test can check a
  client's rights against a Role.

Still absent: PUT, server-side apply, garbage collection (deleting an owner leaves its
dependents), controllers (a Job never runs: a test plays kubelet), admission, schema
validation, `limit`/`continue` (lists come whole), 410 Gone for old resourceVersions.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import gzip
import importlib.resources
import json
import random
import re
import string
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import apps, dicts, rendering

Json = dict[str, Any]


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message)


# --- selectors -------------------------------------------------------------------------------

_SET_REQ = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_REQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS_REQ = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _requirements(selector: str) -> list[str]:
    """Split on the commas that are not inside `in (a,b)`."""
    return [r for r in re.split(r",(?![^()]*\))", selector) if r.strip()]


def label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """A Kubernetes label selector (`a=b,c!=d,e in (f,g),h,!i`) as a predicate on labels."""
    requirements: list[tuple[str, str, frozenset[str]]] = []  # key, operator, values
    for req in _requirements(selector):
        if m := _SET_REQ.match(req):
            values = frozenset(v.strip() for v in m[3].split(",") if v.strip())
            requirements.append((m[1], m[2], values))
        elif m := _EQ_REQ.match(req):
            requirements.append((m[1], "!=" if m[2] == "!=" else "=", frozenset([m[3]])))
        elif m := _EXISTS_REQ.match(req):
            requirements.append((m[2], "!" if m[1] else "exists", frozenset()))
        else:
            raise _error(400, "BadRequest", f"unable to parse requirement: {req!r}")

    def holds(labels: Mapping[str, str], key: str, op: str, values: frozenset[str]) -> bool:
        if op in ("in", "="):
            return labels.get(key) in values
        if op in ("notin", "!="):
            return labels.get(key) not in values
        return (key in labels) == (op == "exists")

    return lambda labels: all(holds(labels, *r) for r in requirements)


def field_matcher(selector: str) -> Callable[[Json], bool]:
    """A field selector (`metadata.name=x,status.phase!=Failed`) as a predicate on objects."""
    requirements: list[tuple[list[str], bool, str]] = []  # path, equal, value
    for req in _requirements(selector):
        m = _EQ_REQ.match(req)
        if not m:
            raise _error(400, "BadRequest", f"invalid field selector: {req!r}")
        requirements.append((m[1].split("."), m[2] != "!=", m[3]))

    def value(obj: Any, path: list[str]) -> str:
        for part in path:
            obj = obj.get(part) if isinstance(obj, dict) else None
        return "" if obj is None else str(obj)

    return lambda obj: all((value(obj, p) == v) == eq for p, eq, v in requirements)


# --- the emulator ------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _essence(obj: Json) -> Json:
    """What a generation counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@attrs.frozen
class Access:
    """One request as RBAC sees it: `verb` is get, list, watch, create, patch, update or
    delete; `resource` is the plural with its subresource (`pods/log`); `port` is the port it
    came in on (EmulatorThread's servers tell clients apart)."""

    port: int
    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None


_VERBS = {
    kmock.action.FETCH: "get",
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.CREATE: "create",
    kmock.action.DELETE: "delete",
}


def accesses(emulator: kmock.KubernetesEmulator) -> list[Access]:
    """Every request served so far on a resource, in order, as an RBAC access (call it on the
    emulator's loop: EmulatorThread.call)."""
    return [a for a in map(_access, emulator) if a is not None]


def _access(request: rendering.Request) -> Access | None:
    if request.resource is None or not request.resource.plural or request.action is None:
        return None  # discovery (/api/v1, /apis/<group>/<version>) and other non-resource URLs
    if request.action == kmock.action.UPDATE:
        verb = "patch" if str(request.method.value) == "PATCH" else "update"
    else:
        verb = _VERBS.get(request.action, str(request.action.value).lower())
    plural = request.resource.plural
    resource = f"{plural}/{request.subresource}" if request.subresource else plural
    return Access(
        request.url.port or 0, verb, request.resource.group or "", resource, request.namespace,
        request.name,
    )  # fmt: skip


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with stamping, 409s, status isolation, selectors and proper watches."""

    _rv: int = attrs.field(default=0, init=False)
    _log: dict[kmock.resource, list[tuple[int, Json]]] = attrs.field(
        factory=lambda: defaultdict(list), init=False
    )
    _results: dict[rendering.Request, Json] = attrs.field(factory=dict, init=False)
    # (namespace, pod) -> the pod's log so far, or None: whoever plays the kubelet sets it.
    log_source: Callable[[str, str], str | None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock's bundled builtins (pods, nodes, events, batch/v1 jobs...); its load_bundled()
        # uses a deprecated importlib.resources call.
        bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
        self.resources.load_data(gzip.decompress(bundled.read_bytes()))

    def add_resource(
        self, path: str, kind: str, *, namespaced: bool = True, status: bool = True
    ) -> kmock.resource:
        """Declare a custom resource (`heron.dev/v1alpha1/enginebuilds`), as its CRD would."""
        resource = kmock.resource(path)
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, singular=kind.lower(),
            subresources={"status"} if status else set(),
            verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
        )  # fmt: skip
        return resource

    # -- writes --------------------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> Any:
        write = request.action in (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
        if (
            request.resource is not None
            and write
            and (request.name or request.action == kmock.action.CREATE)
        ):
            async with self._lock:
                obj, event = self._write(request)
                if event is not None:
                    self._log[request.resource].append((self._rv, event))
                    await self._buses[request.resource].put(event)
            self._results[request] = obj
        # Past kmock's own state keeping, to the reactions (the serve methods below).
        return await apps.RawHandler._handle(self, request)

    def _write(self, request: rendering.Request) -> tuple[Json, Json | None]:
        resource = request.resource
        assert resource is not None
        if request.action == kmock.action.CREATE:
            return self._create(resource, request)
        key = (resource, request.namespace, request.name or "")
        if key not in self._objects or self._objects[key].deleted:
            raise _error(404, "NotFound", f'{resource.plural} "{request.name}" not found')
        old = copy.deepcopy(self._objects[key].raw)
        if request.action == kmock.action.DELETE:
            return self._delete(key, old, request.data or {})
        return self._update(key, old, request)

    def _create(self, resource: kmock.resource, request: rendering.Request) -> tuple[Json, Json]:
        body = copy.deepcopy(request.data)
        if not isinstance(body, dict):
            raise _error(400, "BadRequest", "expected a JSON object")
        meta = body.setdefault("metadata", {})
        namespace = request.namespace or meta.get("namespace")
        if self._info(resource).namespaced is not False:
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(400, "BadRequest", "name or generateName is required")
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        key = (resource, namespace, meta["name"])
        if key in self._objects and not self._objects[key].deleted:
            raise _error(409, "AlreadyExists", f'{resource.plural} "{meta["name"]}" already exists')
        if self._has_status(resource):
            body.pop("status", None)
        self._rv += 1
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(self._rv), generation=1,
                    creationTimestamp=_now())  # fmt: skip
        body.setdefault("apiVersion", self._api_version(resource))
        body.setdefault("kind", self._info(resource).kind)
        if key in self._objects:
            self._objects[key].create(body)
        else:
            self._objects[key] = body
        return body, {"type": "ADDED", "object": body}

    def _update(self, key: Any, old: Json, request: rendering.Request) -> tuple[Json, Json | None]:
        resource, patch = key[0], request.data
        content_type = request.headers.get("Content-Type", "")
        if "apply-patch" in content_type:
            raise _error(415, "UnsupportedMediaType", "server-side apply is not emulated")
        if isinstance(patch, list):
            try:
                new = jsonpatch.apply_patch(old, patch, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise _error(422, "Invalid", str(e)) from None
            wanted_rv = None
        elif isinstance(patch, dict):
            wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
            new = dict(dicts.merge_patch_dict(old, patch))
        else:
            raise _error(400, "BadRequest", "expected a JSON object or a JSON patch")
        if wanted_rv is not None and str(wanted_rv) != old["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict", "the object has been modified; please apply your "
                         "changes to the latest version and try again")  # fmt: skip
        if request.subresource == "status":  # only status changes here
            new = {**old, "status": new.get("status")} if "status" in new else {
                k: v for k, v in old.items() if k != "status"}  # fmt: skip
        elif self._has_status(resource):  # status changes only there
            new = {k: v for k, v in new.items() if k != "status"}
            if "status" in old:
                new["status"] = old["status"]
        meta = new["metadata"] = dict(new.get("metadata") or {})
        for field in (
            "uid",
            "creationTimestamp",
            "generation",
            "name",
            "namespace",
            "resourceVersion",
        ):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        if new == old:
            return old, None  # no change, no new version, no event (as the API server does)
        if _essence(new) != _essence(old):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        obj = self._objects[key]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            obj.history.append(new)
            obj.delete()
            return new, {"type": "DELETED", "object": new}
        obj.history.append(new)
        return new, {"type": "MODIFIED", "object": new}

    def _delete(self, key: Any, old: Json, options: Json) -> tuple[Json, Json | None]:
        wanted = options.get("preconditions") or {}
        meta = old["metadata"]
        for field in ("uid", "resourceVersion"):
            if wanted.get(field) and wanted[field] != meta.get(field):
                raise _error(409, "Conflict", f"precondition failed: {field} {wanted[field]}")
        if meta.get("deletionTimestamp"):
            return old, None
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        if meta.get("finalizers"):
            meta["deletionTimestamp"] = _now()
            self._objects[key].history.append(old)
            return old, {"type": "MODIFIED", "object": old}
        self._objects[key].history.append(old)
        self._objects[key].delete()
        return old, {"type": "DELETED", "object": old}

    async def _serve_create(self, request: rendering.Request) -> Any:
        return self._results.pop(request)

    _serve_update = _serve_create
    _serve_delete = _serve_create

    # -- reads ---------------------------------------------------------------------------------

    def _matching(self, request: rendering.Request) -> Iterator[Json]:
        labels = label_matcher(request.params.get("labelSelector", ""))
        fields = field_matcher(request.params.get("fieldSelector", ""))
        for (resource, namespace, name), obj in list(self._objects.items()):
            if resource != request.resource or obj.deleted:
                continue
            if request.namespace is not None and namespace != request.namespace:
                continue
            if request.name is not None and name != request.name:
                continue
            raw = obj.raw
            if labels(raw["metadata"].get("labels") or {}) and fields(raw):
                yield raw

    def _event_matches(self, request: rendering.Request, obj: Json) -> bool:
        meta = obj.get("metadata") or {}
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        labels = label_matcher(request.params.get("labelSelector", ""))
        return labels(meta.get("labels") or {}) and field_matcher(
            request.params.get("fieldSelector", "")
        )(obj)

    async def _serve_list(self, request: rendering.Request) -> Any:
        resource = request.resource
        assert resource is not None
        if resource not in self._get_resources():
            raise _error(
                404, "NotFound", f"the server could not find the resource {resource.plural}"
            )
        async with self._lock:
            items = list(self._matching(request))
            rv = self._rv
        return {
            "apiVersion": self._api_version(resource),
            "kind": f"{self._info(resource).kind}List",
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        async with self._lock:
            found = list(self._matching(request))
        if not found:
            raise _error(404, "NotFound", f'"{request.name}" not found')
        if request.subresource == "log":
            return self._log_of(request)
        return found[0]

    def _log_of(self, request: rendering.Request) -> bytes:
        """A pod's log as the API serves it: plain text, the last `tailLines` lines if asked."""
        if request.resource is None or request.resource.plural != "pods":
            raise _error(404, "NotFound", f"no log subresource of {request.resource}")
        source = self.log_source
        text = (source(request.namespace or "", request.name or "") if source else None) or ""
        tail = int(request.params.get("tailLines") or 0)
        lines = text.splitlines(keepends=True)
        return "".join(lines[-tail:] if tail else lines).encode()

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        yield b""  # headers out: the stream has started even if nothing happens
        resource = request.resource
        assert resource is not None
        since = request.params.get("resourceVersion", "")
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        bus = self._buses[resource]
        async with self._lock:
            mark = await bus.mark()
            backlog: list[Json]
            if since in ("", "0"):
                backlog = [{"type": "ADDED", "object": o} for o in self._matching(request)]
            else:
                backlog = [e for rv, e in self._log[resource] if rv > int(since)]
            last = self._rv
        try:
            for event in backlog:
                if self._event_matches(request, event["object"]):
                    yield event
            stream = bus.stream(since=mark)
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while True:
                left = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if left is not None and left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(anext(stream), left)
                except TimeoutError:
                    break
                rv = int(event["object"]["metadata"]["resourceVersion"])
                if rv > last and self._event_matches(request, event["object"]):
                    last = rv
                    yield event
            if request.params.get("allowWatchBookmarks") == "true":
                yield {"type": "BOOKMARK", "object": {
                    "apiVersion": self._api_version(resource), "kind": self._info(resource).kind,
                    "metadata": {"resourceVersion": str(self._rv)},
                }}  # fmt: skip
        finally:
            await bus.unmark(mark)

    async def _serve_version(self, request: rendering.Request) -> Any:
        found: Json = dict(await super()._serve_version(request))  # type: ignore[arg-type]
        found["groupVersion"] = found["groupVersion"].lstrip("/")  # core: "v1", not "/v1"
        return found

    # -- helpers -------------------------------------------------------------------------------

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        info = self.resources[resource]
        if info.kind is None:
            info.kind = (resource.plural or "").capitalize()
        return info

    def _has_status(self, resource: kmock.resource) -> bool:
        return "status" in self._info(resource).subresources

    @staticmethod
    def _api_version(resource: kmock.resource) -> str:
        return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


# --- running it beside synchronous tests ---------------------------------------------------------


class EmulatorThread:
    """The emulator on 127.0.0.1, in a thread of its own, with `servers` ports (one emulator
    behind all of them: clients told apart by the port they use)."""

    def __init__(self, servers: int = 1, setup: Callable[[KubeEmulator], None] | None = None):
        self._servers, self._setup = servers, setup
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self.urls: list[str] = []
        self.emulator: KubeEmulator | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return self.urls[0]

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise RuntimeError(f"the emulator did not start: {self._failure!r}")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, fn: Callable[[KubeEmulator], Any]) -> Any:
        """`fn(emulator)` on the emulator's loop (its state is not thread-safe)."""
        assert self._loop is not None and self.emulator is not None
        emulator = self.emulator

        async def run() -> Any:
            return fn(emulator)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported by __enter__
            self._failure = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with KubeEmulator() as emulator:
            self.emulator = emulator
            if self._setup is not None:
                self._setup(emulator)
            servers = [kmock.Server(emulator) for _ in range(self._servers)]
            for server in servers:
                await server.__aenter__()
            try:
                self.urls = [str(s.url).rstrip("/") for s in servers]
                self._ready.set()
                await self._stop.wait()
            finally:
                for server in reversed(servers):
                    await server.__aexit__(None, None, None)


# --- a synchronous client for the tests' own calls ---------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, body: Json) -> None:
        super().__init__(f"{status}: {body.get('reason')}: {body.get('message')}")
        self.status, self.body = status, body


class KubeClient:
    """GET/LIST/CREATE/PATCH/DELETE over HTTP, JSON in and out (paths as the API has them)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "") -> Json:
        data = None if body is None else json.dumps(body).encode()
        kind = content_type or ("application/json-patch+json" if isinstance(body, list) else
                                "application/merge-patch+json" if method == "PATCH" else
                                "application/json")  # fmt: skip
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": kind}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                result: Json = json.loads(response.read() or b"{}")
                return result
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, json.loads(e.read() or b"{}")) from None

    def get(self, path: str) -> Json:
        return self.request("GET", path)

    def list(self, path: str, **params: str) -> list[Json]:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        items: list[Json] = self.request("GET", path + query)["items"]
        return items

    def create(self, path: str, body: Json) -> Json:
        return self.request("POST", path, body)

    def patch(self, path: str, patch: Any) -> Json:
        return self.request("PATCH", path, patch)

    def delete(self, path: str) -> Json:
        return self.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1"})

    def watch(self, path: str, timeout_s: float = 5.0, **params: str) -> Iterator[Json]:
        """The events of a watch until the server ends it (`timeoutSeconds`) or `timeout_s`."""
        query = urllib.parse.urlencode({"watch": "true", **params})
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=timeout_s) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)
