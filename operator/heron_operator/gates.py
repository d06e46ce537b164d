"""The gates of an EngineRollout's canary, read from Prometheus.

Each pipeline's inference counts, per stream and model version (docs/inference.md, "Model
versions at run time"): frames given metadata, frames inferred, objects found, failed
inferences; ingest counts the frames each source published. Over the latest window of the soak
(at most `gate_window_s`), summed over the rollout's pipelines:

- **fpsRatio**: the canary streams' frames out of inference per frame their sources published,
  divided by the same for the stable streams (so frames a lossy muxer drops on every stream do
  not count against the canary); without stable streams, against the sources alone.
- **errorRate**: the canary's failed inferences per inference tried.
- **detectionRateDrift**: |objects per inferred frame, canary / baseline − 1|. The baseline is
  what the canary streams would show on the stable version now: their own rate in a window just
  before the canary began, times the stable streams' change since then (so a scene that changes
  on every camera, nightfall, moves both alike); without stable streams, their own rate before;
  without a rate before (a pipeline younger than the window), the stable streams' rate now.
- **apDrop**: the EngineBuild's accuracy gate (INT8), not a Prometheus reading.

Objects are counts, and few of them say little: 3 objects against 5 is no 40 % drift. So
during the soak a drift breaks the gate only when its 99 % confidence interval (Poisson counts,
on the log of the ratio) lies wholly beyond the limit; when the soak ends, the best estimate
decides. A reading without data (no frames in the window, no Prometheus) is "not measured": it
breaks nothing during the soak, but the soak cannot end in a promotion while one is missing.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from heron.core.runtime.redact import redact_text

from heron_operator.rollout_spec import Gates

FRAMES = "heron_inference_stream_frames_total"
INFERRED = "heron_inference_stream_inferred_total"
OBJECTS = "heron_inference_stream_objects_total"
FAILURES = "heron_inference_stream_failures_total"
PUBLISHED = "heron_ingest_frames_published_total"


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused the query."""


@dataclass(frozen=True)
class Labels:
    """The target labels that place a series in a pipeline (settings: the chart's PodMonitor
    adds `namespace` and `heron_dev_pipeline`, from the pod label heron.dev/pipeline)."""

    namespace_label: str
    pipeline_label: str


@dataclass(frozen=True)
class Scope:
    """One pipeline's part of the rollout."""

    namespace: str
    pipeline: str
    canary_streams: Sequence[str]
    stable_streams: Sequence[str]
    canary_version: str
    stable_version: str


@dataclass
class Counts:
    """Increases over the window, summed over pipelines."""

    frames: float = 0.0
    sources: float = 0.0
    inferred: float = 0.0
    objects: float = 0.0
    failures: float = 0.0

    def add(self, other: Counts) -> None:
        for name in ("frames", "sources", "inferred", "objects", "failures"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Readings:
    ap_drop: float | None = None
    fps_ratio: float | None = None
    error_rate: float | None = None
    detection_rate_drift: float | None = None
    # The least drift the counts are consistent with (99 %): what breaks the gate mid-soak.
    drift_at_least: float | None = None


@dataclass(frozen=True)
class Verdict:
    broken: list[str] = field(default_factory=list)  # "fpsRatio 0.62 < minFpsRatio 0.95"
    unmeasured: list[str] = field(default_factory=list)  # gate names

    @property
    def healthy(self) -> bool:
        return not self.broken

    @property
    def broken_gates(self) -> list[str]:
        """The names of the broken gates (`fpsRatio`, ...)."""
        return [entry.split(" ", 1)[0] for entry in self.broken]

    @property
    def complete(self) -> bool:
        return not self.broken and not self.unmeasured

    def message(self, readings: Readings) -> str:
        if self.broken:
            return "; ".join(self.broken)
        held = ", ".join(
            f"{name} {value:.3g}" for name, value in _named(readings) if value is not None
        )
        missing = f"; not measured yet: {', '.join(self.unmeasured)}" if self.unmeasured else ""
        return f"holding: {held or 'nothing measured'}{missing}"


def _named(r: Readings) -> list[tuple[str, float | None]]:
    return [
        ("apDrop", r.ap_drop),
        ("fpsRatio", r.fps_ratio),
        ("errorRate", r.error_rate),
        ("detectionRateDrift", r.detection_rate_drift),
    ]


def judge(readings: Readings, gates: Gates, *, ap_gated: bool, final: bool = False) -> Verdict:
    """Which gates the readings break and which are not measured. `ap_gated`: the build has
    an AP reading to hold (INT8); FP32/FP16 builds are not gated on AP. `final`: the soak is
    over, so the drift's best estimate decides, not only a drift beyond doubt."""
    drift = readings.detection_rate_drift
    if not final and drift is not None:
        drift = readings.drift_at_least
    broken, unmeasured = [], []
    checks = [
        ("apDrop", readings.ap_drop, gates.max_ap_drop, "maxApDrop", False),
        ("fpsRatio", readings.fps_ratio, gates.min_fps_ratio, "minFpsRatio", True),
        ("errorRate", readings.error_rate, gates.max_error_rate, "maxErrorRate", False),
        ("detectionRateDrift", drift, gates.max_detection_rate_drift,
         "maxDetectionRateDrift", False),
    ]  # fmt: skip
    for name, value, limit, limit_name, at_least in checks:
        if name == "apDrop" and not ap_gated:
            continue
        if value is None:
            unmeasured.append(name)
        elif (value < limit - 1e-9) if at_least else (value > limit + 1e-9):
            sign = "<" if at_least else ">"
            certain = "" if final or name != "detectionRateDrift" else "at least "
            broken.append(f"{name} {certain}{value:.3g} {sign} {limit_name} {limit:g}")
    return Verdict(broken, unmeasured)


@dataclass(frozen=True)
class Rate:
    """Objects per inferred frame, and the variance of its log (Poisson: 1/objects, with half
    an object for none, so that no objects is a finite, very uncertain rate)."""

    value: float
    log_value: float
    log_var: float

    @classmethod
    def of(cls, counts: Counts) -> Rate | None:
        if counts.inferred <= 0:
            return None
        objects = max(counts.objects, 0.5)
        return cls(
            counts.objects / counts.inferred, math.log(objects / counts.inferred), 1 / objects
        )

    def times(self, now: Rate, then: Rate) -> Rate:
        """This rate moved as `then` → `now` moved (the stable streams' change)."""
        factor = now.value / then.value if then.value > 0 else 1.0
        return Rate(
            self.value * factor,
            self.log_value + now.log_value - then.log_value,
            self.log_var + now.log_var + then.log_var,
        )


def baseline(canary_before: Counts, stable_now: Counts, stable_before: Counts) -> Rate | None:
    """The detections-per-frame the canary streams would show on the stable version now (the
    module's docstring says which counts make it)."""
    before, now, then = Rate.of(canary_before), Rate.of(stable_now), Rate.of(stable_before)
    if before is not None and now is not None and then is not None and then.value > 0:
        return before.times(now, then)
    return before if before is not None else now


_Z99 = 2.576  # two-sided 99 %


def drift(canary: Rate, base: Rate) -> tuple[float, float]:
    """|canary/base − 1|, and the least value of it within the 99 % interval."""
    if base.value <= 0:
        point = 0.0 if canary.value == 0 else 1.0
    else:
        point = abs(canary.value / base.value - 1)
    log_ratio = canary.log_value - base.log_value
    margin = _Z99 * math.sqrt(canary.log_var + base.log_var)
    low, high = log_ratio - margin, log_ratio + margin
    at_least = math.exp(low) - 1 if low > 0 else 1 - math.exp(high) if high < 0 else 0.0
    return point, min(at_least, point)


def readings(
    canary: Counts, fps_base: Counts | None, rate_base: Rate | None, ap_drop: float | None
) -> Readings:
    """The gates' values from the canary's counts. `fps_base`: the stable streams' counts (None:
    the canary's sources are the only yardstick); `rate_base`: the detections-per-frame
    baseline (`baseline()`; None: none, the drift is not measured)."""
    fps = _ratio(canary.frames, canary.sources)
    if fps is not None and fps_base is not None:
        base_fps = _ratio(fps_base.frames, fps_base.sources)
        fps = fps / base_fps if base_fps else None
    error = _ratio(canary.failures, canary.inferred + canary.failures)
    rate = Rate.of(canary)
    if rate is None or rate_base is None:
        return Readings(ap_drop, fps, error)
    point, at_least = drift(rate, rate_base)
    return Readings(ap_drop, fps, error, point, at_least)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


# --- Prometheus ------------------------------------------------------------------------------


class Prometheus:
    """Instant queries over Prometheus's HTTP API (/api/v1/query)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        # user:password in the URL is sent as basic auth; `url` (what messages show) drops it.
        self.url, self._headers = _without_credentials(url.rstrip("/"))
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def total(self, query: str, *, at: float | None = None) -> float | None:
        """The sum of the query's vector at `at` (default now); None when it has no series."""
        params = {"query": query} | ({} if at is None else {"time": f"{at:.3f}"})
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout, headers=self._headers) as session,
                session.get(f"{self.url}/api/v1/query", params=params) as response,
            ):
                body: Any = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise PrometheusError(f"Prometheus at {self.url}: {e or type(e).__name__}") from e
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise PrometheusError(f"Prometheus refused {query!r}: {error}")
        result = body["data"]["result"]
        if not result:
            return None
        return sum(float(item["value"][1]) for item in result)


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its userinfo, and that userinfo as a basic-auth header (none without)."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # unbalanced brackets: aiohttp refuses it, naming it without secrets
        return redact_text(url), {}
    if user is None and password is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(user or '')}:{unquote(password or '')}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return urlunsplit(parts._replace(netloc=host)), header


async def counts(
    prometheus: Prometheus,
    labels: Labels,
    scope: Scope,
    *,
    streams: Sequence[str],
    version: str,
    window_s: float,
    at: float | None = None,
) -> Counts:
    """Increases over `window_s` up to `at` of `streams` on `version` in one pipeline."""
    if not streams:
        return Counts()
    window = f"{max(int(window_s), 1)}s"
    place = (
        f'{labels.namespace_label}="{_quoted(scope.namespace)}",' if labels.namespace_label else ""
    ) + f'{labels.pipeline_label}="{_quoted(scope.pipeline)}",stream=~"{_any_of(streams)}"'
    versioned = f'{place},version="{_quoted(version)}"'

    async def increase(metric: str, matchers: str) -> float:
        got = await prometheus.total(f"sum(increase({metric}{{{matchers}}}[{window}]))", at=at)
        return got or 0.0

    return Counts(
        frames=await increase(FRAMES, versioned),
        sources=await increase(PUBLISHED, place),
        inferred=await increase(INFERRED, versioned),
        objects=await increase(OBJECTS, versioned),
        failures=await increase(FAILURES, versioned),
    )


def _quoted(value: str) -> str:
    """A PromQL string literal's content."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _any_of(values: Sequence[str]) -> str:
    """An RE2 alternation matching exactly these values, as a PromQL string literal's content."""
    return _quoted("|".join(re.sub(r"([^A-Za-z0-9_])", r"\\\1", v) for v in values))
