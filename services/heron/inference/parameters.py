"""Run-time parameters: SetParameters' per-class pre-cluster thresholds and interval.

The control service sends SetParameters as a `Command` on streams.commands(pipeline); every
inference instance checks it against its own model, applies all of it or none of it to the
heads (every loaded model version's: heron.inference.model_versions) and the IntervalGate,
stores the full effective set (a `Parameters`) on streams.parameters(pipeline) and answers. A
restarted instance applies the newest stored set again, through the same checks, before it
serves. See docs/inference.md, "Changing parameters at run time".
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from heron.core.bus import BusError, Publisher
from heron.core.commands import ReplyCode, reply
from heron.inference.interval import IntervalGate
from heron.v1.commands_pb2 import Command, CommandReply, Parameters
from heron.v1.control_pb2 import ClassThreshold, SetParametersRequest

log = logging.getLogger(__name__)

# The largest interval accepted. At 30 fps, 1000 skipped frames leave a stream 33 s without
# fresh detections; anything longer is a stream with no detector in practice, and more likely
# a unit mistake (milliseconds, a frame count of the whole clip) than a wish.
MAX_INTERVAL = 1000


class ParameterError(ValueError):
    """A request the model refuses; `field` is the request's field path, as the reply says."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class RunParameters:
    """Parameters over the config's: class id → pre-cluster threshold, and the interval
    (None: the config's)."""

    thresholds: Mapping[int, float] = field(default_factory=dict)
    interval: int | None = None

    def merged(self, change: RunParameters) -> RunParameters:
        """These with `change` on top: classes it does not name keep their earlier values."""
        interval = self.interval if change.interval is None else change.interval
        return RunParameters({**self.thresholds, **change.thresholds}, interval)

    def to_proto(self) -> Parameters:
        message = Parameters(
            thresholds=[
                ClassThreshold(class_id=k, pre_cluster_threshold=v)
                for k, v in sorted(self.thresholds.items())
            ]
        )
        if self.interval is not None:
            message.interval = self.interval
        message.time.GetCurrentTime()
        return message

    def __str__(self) -> str:
        """For log lines: only what is set, e.g. `pre-cluster-threshold {0: 0.6}, interval 2`."""
        parts = []
        if self.thresholds:
            classes = ", ".join(f"{k}: {v:g}" for k, v in sorted(self.thresholds.items()))
            parts.append(f"pre-cluster-threshold {{{classes}}}")
        if self.interval is not None:
            parts.append(f"interval {self.interval}")
        return ", ".join(parts) or "the config's"


def validate(request: SetParametersRequest | Parameters, num_classes: int) -> RunParameters:
    """The change `request` asks for, or ParameterError naming the first field that is wrong.
    An empty request is refused: it is a caller's mistake, not a way to reset."""
    if not request.thresholds and not request.HasField("interval"):
        raise ParameterError("thresholds", "nothing to set")
    interval = _interval(request.interval) if request.HasField("interval") else None
    return RunParameters(_thresholds(request.thresholds, num_classes), interval)


def _thresholds(given: Sequence[ClassThreshold], num_classes: int) -> dict[int, float]:
    found: dict[int, float] = {}
    first: dict[int, int] = {}  # class id → the index that set it, for the duplicate's message
    for i, t in enumerate(given):
        where = f"thresholds[{i}]"
        if t.class_id >= num_classes:
            raise ParameterError(
                f"{where}.class_id",
                f"{t.class_id} is not a class of the model (it has {num_classes}: "
                f"0..{num_classes - 1})",
            )
        if t.class_id in first:
            raise ParameterError(
                f"{where}.class_id",
                f"class {t.class_id} is set twice (also thresholds[{first[t.class_id]}])",
            )
        value = t.pre_cluster_threshold
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ParameterError(f"{where}.pre_cluster_threshold", f"{value:g} is not in [0, 1]")
        first[t.class_id] = i
        found[t.class_id] = value
    return found


def _interval(value: int) -> int:
    if value > MAX_INTERVAL:
        raise ParameterError(
            "interval",
            f"{value} is above {MAX_INTERVAL} (frames skipped between inferences of a stream)",
        )
    return value


class Thresholds(Protocol):
    """What run-time thresholds are set on: a DetectorHead, or every loaded version's head
    (RuntimeModelVersions)."""

    @property
    def num_classes(self) -> int: ...

    def set_thresholds(self, thresholds: Mapping[int, float]) -> None: ...


def updates_counter(registry: CollectorRegistry) -> Counter:
    counter = Counter(
        "heron_inference_parameter_updates_total",
        "Sets of run-time parameters (SetParameters, or the stored set at start), by result "
        "(applied, refused).",
        ["result"],
        registry=registry,
    )
    for result in ("applied", "refused"):  # at 0 from the start: a dashboard shows "none yet"
        counter.labels(result)
    return counter


class RuntimeParameters:
    """Applies SetParameters commands to one instance's heads and gate, and keeps them."""

    def __init__(
        self,
        head: Thresholds,
        gate: IntervalGate,
        store: Publisher[Parameters],
        updates: Counter,
        model: str,
    ) -> None:
        self.head = head
        self.gate = gate
        self.store = store
        self.updates = updates
        self.model = model  # for log lines
        self.current = RunParameters()
        # One change at a time: validation sees the parameters the change is merged into.
        self._lock = threading.Lock()

    def handle(self, command: Command) -> CommandReply | None:
        """The CommandFollower's handler: set_parameters only, other commands are ingest's."""
        if command.WhichOneof("command") != "set_parameters":
            return None
        return self.set(command.set_parameters)

    def set(self, request: SetParametersRequest) -> CommandReply:
        """Apply `request` on top of the parameters in force, store the result and answer."""
        with self._lock:
            try:
                change = validate(request, self.head.num_classes)
            except ParameterError as e:
                self.updates.labels("refused").inc()
                log.warning("SetParameters refused: %s", e)
                return reply(ReplyCode.INVALID_ARGUMENT, str(e))
            self._apply(self.current.merged(change), change.interval is not None)
            log.info("parameters set: %s; in force: %s", change, self.current)
            return self._store()

    def restore(self, stored: Parameters | None) -> None:
        """Apply the newest stored set at start; one this model refuses is ignored (said)."""
        if stored is None or (not stored.thresholds and not stored.HasField("interval")):
            return
        with self._lock:
            try:
                found = validate(stored, self.head.num_classes)
            except ParameterError as e:
                self.updates.labels("refused").inc()
                log.warning(
                    "ignoring the stored parameters, model %r refuses them: %s; the config's "
                    "parameters run until the next SetParameters",
                    self.model,
                    e,
                )
                return
            self._apply(found, found.interval is not None)
            log.info("parameters restored: %s", self.current)

    def _apply(self, effective: RunParameters, new_interval: bool) -> None:
        self.head.set_thresholds(effective.thresholds)
        if new_interval and effective.interval is not None:
            self.gate.set_interval(effective.interval)
        self.current = effective
        self.updates.labels("applied").inc()

    def _store(self) -> CommandReply:
        """Publish the parameters in force, so a restarted instance applies them again."""
        try:
            self.store.publish(self.current.to_proto())
        except BusError as e:
            log.error("parameters applied but not stored: %s", e)
            return reply(
                ReplyCode.UNAVAILABLE, f"parameters: applied but not stored for restarts: {e}"
            )
        return reply(ReplyCode.OK)
