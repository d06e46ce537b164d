"""Model versions at run time: which version of the pipeline's model each stream runs.

The control service sends SetModelVersions as a `Command` on streams.commands(pipeline), as it
sends SetParameters; every inference instance checks the request, loads each version it names
that is not loaded (from a `VersionSource`: a model repository on disk, or Triton), holds each
new one to the config's model (same input, same outputs: classes and grid), and only then
switches the routing: one `Routing` object, replaced whole, so each batch runs with the old
routing or the new one and never meets a stream without a loaded model. Versions no longer
named are closed once no batch uses them; the config's model is never closed. The routing in
force is stored (a `ModelVersions`) on streams.model_versions(pipeline), and a restarted
instance applies the newest stored one before it serves. See docs/inference.md, "Model
versions at run time".

Run-time thresholds (SetParameters) reach every loaded version's head: `RuntimeModelVersions`
is the thresholds target of `RuntimeParameters`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Set
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from heron.core.bus import BusError, Publisher
from heron.core.commands import ReplyCode, expired, reply
from heron.core.model_versions import VersionRequestError, check_request
from heron.inference.backends.base import Backend, ModelInfo
from heron.inference.detector import DetectorHead
from heron.inference.errors import BackendError, BackendUnavailableError, ModelMismatchError
from heron.inference.shared_backend import SharedBackend
from heron.inference.version_sources import VersionError, VersionSource
from heron.v1.commands_pb2 import Command, CommandReply
from heron.v1.control_pb2 import ModelVersions, SetModelVersionsRequest

log = logging.getLogger(__name__)

HeadFactory = Callable[[ModelInfo], DetectorHead]


@dataclass(frozen=True)
class Version:
    """One loaded version: its backend, taken in turns, and its head."""

    name: str
    backend: SharedBackend
    head: DetectorHead


@dataclass(frozen=True)
class Routing:
    """Which version each stream runs. `default_version` as set ("" = the config's);
    `versions` holds every version this routing runs, the config's always among them."""

    config_version: str
    default_version: str = ""
    stream_versions: Mapping[str, str] = field(default_factory=dict)
    versions: Mapping[str, Version] = field(default_factory=dict)

    @property
    def default(self) -> str:
        """The version of the streams not named: the real version string."""
        return self.default_version or self.config_version

    def version_of(self, stream_id: str) -> str:
        return self.stream_versions.get(stream_id) or self.default

    def named(self) -> set[str]:
        """The versions this routing needs loaded: the default, the streams', the config's."""
        return {self.config_version, self.default, *self.stream_versions.values()}

    def to_proto(self, model_name: str, requested_by: str) -> ModelVersions:
        record = ModelVersions(
            model_name=model_name,
            config_version=self.config_version,
            default_version=self.default_version,
            stream_versions=dict(self.stream_versions),
            loaded=sorted(self.versions, key=version_order),
            requested_by=requested_by,
        )
        record.time.GetCurrentTime()
        return record

    def __str__(self) -> str:
        """For log lines: `default 2, source-1=3`."""
        streams = ", ".join(f"{k}={v}" for k, v in sorted(self.stream_versions.items()))
        return f"default {self.default}" + (f", {streams}" if streams else "")


def version_order(version: str) -> tuple[int, int, str]:
    """Numbers in numeric order (2 before 10), then any other name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def updates_counter(registry: CollectorRegistry) -> Counter:
    counter = Counter(
        "heron_inference_model_version_updates_total",
        "Routings of streams to model versions (SetModelVersions, or the stored routing at "
        "start), by result (applied, refused).",
        ["result"],
        registry=registry,
    )
    for result in ("applied", "refused"):  # at 0 from the start: a dashboard shows "none yet"
        counter.labels(result)
    return counter


class _Users:
    """The routing in force and which routings batches are running with right now, so that a
    version is closed only once no batch uses it."""

    def __init__(self, routing: Routing) -> None:
        self.current = routing
        self._changed = threading.Condition()
        self._using: dict[int, tuple[Routing, int]] = {}  # id(routing) -> (routing, users)

    @contextmanager
    def use(self) -> Iterator[Routing]:
        with self._changed:
            routing = self.current
            _, users = self._using.get(id(routing), (routing, 0))
            self._using[id(routing)] = (routing, users + 1)
        try:
            yield routing
        finally:
            with self._changed:
                _, users = self._using[id(routing)]
                if users == 1:
                    del self._using[id(routing)]
                else:
                    self._using[id(routing)] = (routing, users - 1)
                self._changed.notify_all()

    def swap(self, routing: Routing) -> None:
        with self._changed:
            self.current = routing

    def wait_unused(self, versions: list[Version], stop: threading.Event) -> bool:
        """Wait until no batch runs any of `versions`; False when `stop` was set first."""

        def unused() -> bool:
            return stop.is_set() or not any(
                r.versions.get(v.name) is v for r, _ in self._using.values() for v in versions
            )

        with self._changed:
            self._changed.wait_for(unused)
        return not stop.is_set()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


class RuntimeModelVersions:
    """Applies SetModelVersions commands to one instance, and keeps the routing they set."""

    def __init__(
        self,
        config: Version,
        config_info: ModelInfo,
        *,
        source: VersionSource,
        make_head: HeadFactory,
        store: Publisher[ModelVersions],
        updates: Counter,
        on_default: Callable[[str], None] = lambda _version: None,
    ) -> None:
        self.config = config
        self.config_info = config_info
        self.model_name = config_info.name
        self.source = source
        self.make_head = make_head
        self.store = store
        self.updates = updates
        self.on_default = on_default  # the heartbeat's model version follows the default
        self._users = _Users(Routing(config.name, versions={config.name: config}))
        self._lock = threading.Lock()  # one change at a time, retiring included
        self._loaded_lock = threading.Lock()  # thresholds vs. versions being added
        # Every version open now, the ones being retired included: what thresholds reach and
        # what close() closes.
        self._loaded: list[Version] = [config]
        self._thresholds: dict[int, float] = {}
        self._config_shapes: dict[str, tuple[int, ...]] | None = None
        self._stopping = threading.Event()
        self._retiring: list[threading.Thread] = []

    @property
    def routing(self) -> Routing:
        return self._users.current

    def use(self) -> AbstractContextManager[Routing]:
        """`with versions.use() as routing:` the routing in force, held for one batch: no
        version it runs is closed before the block ends."""
        return self._users.use()

    # --- thresholds (RuntimeParameters' target) -------------------------------------------

    @property
    def num_classes(self) -> int:
        return self.config.head.num_classes  # every version is held to the config's classes

    def set_thresholds(self, thresholds: Mapping[int, float]) -> None:
        with self._loaded_lock:
            self._thresholds = dict(thresholds)
            for version in self._loaded:
                version.head.set_thresholds(thresholds)

    # --- commands -------------------------------------------------------------------------

    def handle(self, command: Command) -> CommandReply | None:
        """The CommandFollower's handler: set_model_versions only."""
        if command.WhichOneof("command") != "set_model_versions":
            return None
        return self.set(command.set_model_versions, given_up=lambda: expired(command))

    def set(
        self, request: SetModelVersionsRequest, given_up: Callable[[], bool] = lambda: False
    ) -> CommandReply:
        """Load what `request` names, switch to it, store it and answer with it. `given_up`
        says whether the caller stopped waiting: then nothing is switched."""
        with self._lock:
            try:
                check_request(request)
                streams = dict(request.stream_versions)
                routing = self._apply(request.default_version, streams, given_up)
            except (VersionRequestError, VersionError) as e:
                code = e.code if isinstance(e, VersionError) else ReplyCode.INVALID_ARGUMENT
                self.updates.labels("refused").inc()
                log.warning("SetModelVersions refused: %s", e)
                return reply(code, str(e))
            log.info("model versions set by %s: %s", request.requested_by or "-", routing)
            return self._store(routing.to_proto(self.model_name, request.requested_by))

    def restore(self, stored: ModelVersions | None) -> None:
        """Apply the newest stored routing at start; one this model refuses is ignored (said)."""
        if stored is None or (not stored.default_version and not stored.stream_versions):
            return
        request = SetModelVersionsRequest(
            default_version=stored.default_version, stream_versions=stored.stream_versions
        )
        with self._lock:
            try:
                if stored.model_name and stored.model_name != self.model_name:
                    raise VersionError(
                        ReplyCode.FAILED_PRECONDITION,
                        f"it routes model {stored.model_name!r}, this service serves "
                        f"{self.model_name!r}",
                    )
                check_request(request)
                routing = self._apply(request.default_version, dict(request.stream_versions))
            except (VersionRequestError, VersionError) as e:
                self.updates.labels("refused").inc()
                log.warning(
                    "ignoring the stored model versions: %s; every stream runs the config's "
                    "version %s until the next SetModelVersions",
                    e,
                    self.config.name,
                )
                return
            self.updates.labels("applied").inc()
        log.info("model versions restored: %s", routing)

    def close(self) -> None:
        """Close every version but the config's (the service closes that one)."""
        self._stopping.set()
        self._users.wake()
        for thread in self._retiring:
            thread.join(timeout=5)
        with self._lock:
            self._close([v for v in self._loaded if v is not self.config])

    # --- a change -------------------------------------------------------------------------

    def _apply(
        self, default: str, streams: dict[str, str], given_up: Callable[[], bool] = lambda: False
    ) -> Routing:
        """Load, check, switch, then retire what is no longer named; VersionError when a
        version cannot be served, or the caller gave up while they loaded, with the routing
        unchanged."""
        current = self.routing
        wanted = Routing(self.config.name, default, streams)
        named = wanted.named()
        new = sorted(named - set(current.versions), key=version_order)
        opened: dict[str, Version] = {}
        if new:
            try:
                # The versions in force stay loaded (and serving) while the new ones load.
                self.source.prepare(named | set(current.versions))
                for name in new:
                    opened[name] = self._open(name)
                if given_up():  # the caller was told nothing changed: keep it so
                    raise VersionError(
                        ReplyCode.DEADLINE_EXCEEDED,
                        f"loading version(s) {', '.join(new)} took longer than the caller "
                        "waited; nothing was changed",
                    )
            except Exception as e:  # VersionError, or a bug: nothing may stay half-done
                self._close(list(opened.values()))
                self._prepare_quietly(set(current.versions))  # Triton: unload what we loaded
                if isinstance(e, VersionError):
                    raise
                log.exception("loading model versions %s failed", ", ".join(new))
                raise VersionError(
                    ReplyCode.INTERNAL, f"loading version(s) {', '.join(new)}: {e!r}"
                ) from e
        versions = {name: current.versions.get(name) or opened[name] for name in named}
        routing = replace(wanted, versions=versions)
        self._users.swap(routing)
        self.on_default(routing.default)
        retired = [v for name, v in current.versions.items() if name not in named]
        if retired:
            self._retire_later(retired)
        return routing

    def _open(self, name: str) -> Version:
        """Version `name` loaded, held to the config's model, its head thresholded; a version
        that fails is closed again."""
        backend = self.source.open(name)
        try:
            head = self._hold(name, backend)
        except BaseException:
            backend.close()
            raise
        version = Version(name, SharedBackend(backend), head)
        with self._loaded_lock:
            head.set_thresholds(self._thresholds)
            self._loaded.append(version)
        log.info("model %r version %s loaded", self.model_name, name)
        return version

    def _hold(self, name: str, backend: Backend) -> DetectorHead:
        """The version's head, once its input and outputs match the config's model."""
        try:
            info = backend.model_info()
            self._check_input(name, info)
            head = self.make_head(info)
            self._check_outputs(name, backend, head)
        except ModelMismatchError as e:
            raise self._incompatible(name, str(e)) from e
        except BackendUnavailableError as e:
            raise VersionError(ReplyCode.UNAVAILABLE, f"version {name}: {e}") from e
        except BackendError as e:
            raise VersionError(
                ReplyCode.FAILED_PRECONDITION, f"version {name}: a trial inference failed: {e}"
            ) from e
        return head

    def _check_input(self, name: str, info: ModelInfo) -> None:
        want = self.config_info.input_shape
        if info.input_shape != want:
            raise self._incompatible(
                name,
                f"its input is {_dims(info.input_shape)} (C x H x W), the config's model "
                f"takes {_dims(want)}",
            )

    def _check_outputs(self, name: str, backend: Backend, head: DetectorHead) -> None:
        """One trial image through the version: the coverage and bbox outputs must have the
        config's shape per image (the same classes on the same grid). It also proves the
        version answers before any stream is sent to it."""
        got = _output_shapes(backend.infer, self.config_info, head)
        want = self._config_output_shapes()
        for output, shape in want.items():
            if got.get(output) != shape:
                seen = "absent" if output not in got else _dims(got[output])
                raise self._incompatible(
                    name,
                    f"its output {output!r} is {seen} per image, the config's model's is "
                    f"{_dims(shape)} (classes x grid)",
                )

    def _config_output_shapes(self) -> dict[str, tuple[int, ...]]:
        if self._config_shapes is None:
            shared = self.config.backend
            self._config_shapes = _output_shapes(shared.infer, self.config_info, self.config.head)
        return self._config_shapes

    def _incompatible(self, name: str, what: str) -> VersionError:
        return VersionError(
            ReplyCode.FAILED_PRECONDITION,
            f"version {name} is not compatible with the config's model (version "
            f"{self.config.name}): {what}",
        )

    # --- retiring -------------------------------------------------------------------------

    def _retire_later(self, retired: list[Version]) -> None:
        """Close `retired` once the batches still running them are done, on a thread of its
        own: the answer to the command does not wait for the bus loop's batch."""
        thread = threading.Thread(
            target=self._retire, args=(retired,), name="inference-retire", daemon=True
        )
        self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
        thread.start()

    def _retire(self, retired: list[Version]) -> None:
        if not self._users.wait_unused(retired, self._stopping):
            return  # stopping: close() closes what is left
        with self._lock:
            self._close(retired)
            self._prepare_quietly(self.routing.named())  # Triton: unload them there too
        log.info(
            "model %r: unloaded version(s) %s",
            self.model_name,
            ", ".join(v.name for v in retired),
        )

    def _close(self, versions: list[Version]) -> None:
        with self._loaded_lock:
            gone = {id(v) for v in versions}
            self._loaded = [v for v in self._loaded if id(v) not in gone]
        for version in versions:
            version.backend.backend.close()

    def _prepare_quietly(self, versions: Set[str]) -> None:
        try:
            self.source.prepare(versions)
        except VersionError as e:  # what is loaded beyond `versions` is only memory
            log.warning(
                "model %r: could not unload the versions no longer used: %s", self.model_name, e
            )

    def _store(self, record: ModelVersions) -> CommandReply:
        """Publish the routing in force, so a restarted instance applies it again."""
        self.updates.labels("applied").inc()
        try:
            self.store.publish(record)
            answer = reply(ReplyCode.OK)
        except BusError as e:
            log.error("model versions applied but not stored: %s", e)
            answer = reply(
                ReplyCode.UNAVAILABLE, f"model versions: applied but not stored for restarts: {e}"
            )
        answer.model_versions.CopyFrom(record)
        return answer


def _output_shapes(
    infer: Callable[..., dict[str, np.ndarray]], info: ModelInfo, head: DetectorHead
) -> dict[str, tuple[int, ...]]:
    """The per-image shapes of the head's two outputs for one black image."""
    outputs = infer(np.zeros((1, *info.input_shape), np.float32))
    names = (head.outputs.coverage, head.outputs.bbox)
    return {n: tuple(int(d) for d in outputs[n].shape[1:]) for n in names if n in outputs}


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))
