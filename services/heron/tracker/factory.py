"""From the [tracker] group to a tracker: the library name picks the kind, the YAML its params.

| ll-lib-file (basename)            | tracker                                            |
|-----------------------------------|----------------------------------------------------|
| libnvds_mot_iou.so                | IOU                                                |
| libnvds_mot_klt.so                | KLT                                                |
| libnvds_nvdcf.so                  | correlation filter (NvDCF's place)                 |
| libheron_bytetrack.so             | ByteTrack-class (Heron's name)                     |
| libnvds_nvmultiobjecttracker.so   | DeepStream 6+'s one library: the ll-config-file decides |

For the one library, as DeepStream does: VisualTracker.visualTrackerType >= 1 → correlation;
else StateEstimator.stateEstimatorType >= 1 → ByteTrack-class (NvSORT's place); else IOU.

`Heron.tracker` in the ll-config-file overrides all of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heron.core.config.diagnostics import ConfigError, Diagnostic, Diagnostics
from heron.core.config.models import Tracker as TrackerGroup
from heron.core.config.tracker_config import LIBRARIES, read_ll_config, unknown_library_message
from heron.core.config.tracker_params import TrackerKind, TrackerParams
from heron.tracker.bytetrack import ByteTracker
from heron.tracker.core import IdSource, TargetTracker
from heron.tracker.correlation import CorrelationTracker
from heron.tracker.iou import IouTracker
from heron.tracker.klt import KltTracker

CLASSES: dict[TrackerKind, type[TargetTracker]] = {
    TrackerKind.IOU: IouTracker,
    TrackerKind.KLT: KltTracker,
    TrackerKind.CORRELATION: CorrelationTracker,
    TrackerKind.BYTETRACK: ByteTracker,
}

USES_PIXELS = frozenset({TrackerKind.KLT, TrackerKind.CORRELATION})


@dataclass(frozen=True)
class TrackerSpec:
    """What every stream's tracker is built from."""

    kind: TrackerKind
    params: TrackerParams = field(default_factory=TrackerParams)
    width: int = 640  # tracker-width/height: the size pixel trackers work at
    height: int = 384
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def uses_pixels(self) -> bool:
        return self.kind in USES_PIXELS


def kind_from_library(library: Path, source: Path) -> TrackerKind | None:
    """The kind a ll-lib-file names (None: the unified library, decided by its config)."""
    name = library.name
    if name not in LIBRARIES:
        diags = Diagnostics()
        diags.error(source, 0, unknown_library_message(name), "tracker.ll-lib-file")
        raise ConfigError(diags.items)
    return LIBRARIES[name]


def _kind_from_config(doc: dict[str, Any]) -> TrackerKind:
    def key(section: str, name: str) -> int:
        body = doc.get(section)
        value = body.get(name, 0) if isinstance(body, dict) else 0
        return value if isinstance(value, int) else 0

    if key("VisualTracker", "visualTrackerType") >= 1:
        return TrackerKind.CORRELATION
    if key("StateEstimator", "stateEstimatorType") >= 1:
        return TrackerKind.BYTETRACK
    return TrackerKind.IOU


def tracker_spec(group: TrackerGroup, source: Path) -> TrackerSpec:
    """The spec of an enabled [tracker] group of the pipeline config `source`."""
    if group.ll_lib_file is None:
        diags = Diagnostics()
        diags.error(source, 0, "an enabled tracker needs ll-lib-file", "tracker.ll-lib-file")
        raise ConfigError(diags.items)
    kind = kind_from_library(group.ll_lib_file, source)
    params, warnings = TrackerParams(), Diagnostics()
    doc: dict[str, Any] = {}
    if group.ll_config_file is not None:
        params, doc, warnings = read_ll_config(group.ll_config_file)
    if params.heron.tracker is not None:
        kind = params.heron.tracker
    elif kind is None:
        kind = _kind_from_config(doc)
    return TrackerSpec(
        kind, params, group.tracker_width, group.tracker_height, tuple(warnings.items)
    )


def build_tracker(spec: TrackerSpec, ids: IdSource | None = None) -> TargetTracker:
    return CLASSES[spec.kind](spec.params, ids)
