"""Run-time source changes, kept where a restarted ingest finds them again.

After every AddSource/RemoveSource ingest publishes the whole `SourceChanges` (sources added at
run time, in order, and config sources removed) to streams.source_changes(pipeline); the newest
entry holds all of them. At start ingest applies it over the config's sources, so a restarted
pod runs the sources the one before it ran.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core import streams
from heron.core.media_uri import UriError
from heron.core.plan.sources import PlannedSource, plan_source
from heron.ingest.runtime_sources import GROUP
from heron.v1.commands_pb2 import SourceChanges
from heron.v1.stream_pb2 import SourceSpec

log = logging.getLogger(__name__)


class SourceChangeLog:
    """What this ingest changed in the config's sources (only the command thread changes it)."""

    def __init__(
        self,
        config_ids: Iterable[str],
        added: Iterable[SourceSpec] = (),
        removed: Iterable[str] = (),
    ) -> None:
        self._config = frozenset(config_ids)
        self._added: dict[str, SourceSpec] = {s.stream_id: s for s in added}
        self._removed: list[str] = [r for r in dict.fromkeys(removed) if r in self._config]

    def added(self, spec: SourceSpec) -> None:
        # A re-added id moves to the end: the order is the order sources were added in.
        self._added.pop(spec.stream_id, None)
        self._added[spec.stream_id] = spec
        # It replaces an ended config source of that id: a restart must not open that one.
        self._remove_config(spec.stream_id)

    def removed(self, stream_id: str) -> None:
        self._added.pop(stream_id, None)
        self._remove_config(stream_id)

    def _remove_config(self, stream_id: str) -> None:
        if stream_id in self._config and stream_id not in self._removed:
            self._removed.append(stream_id)

    def message(self) -> SourceChanges:
        time = Timestamp()
        time.GetCurrentTime()
        return SourceChanges(added=list(self._added.values()), removed=self._removed, time=time)


def apply_changes(
    config: list[PlannedSource], changes: SourceChanges | None
) -> tuple[list[PlannedSource], SourceChangeLog]:
    """The config's sources less the removed ones plus the added ones, and the log to go on
    from. An added source the config now has itself, or whose URI no longer plans, is skipped."""
    config_ids = [p.spec.stream_id for p in config]
    if changes is None:
        return config, SourceChangeLog(config_ids)
    removed = set(changes.removed)
    planned = [p for p in config if p.spec.stream_id not in removed]
    have = {p.spec.stream_id for p in planned}
    applied: list[SourceSpec] = []
    for spec in changes.added:
        item = _replan(spec, have)
        if item is not None:
            planned.append(item)
            have.add(spec.stream_id)
            applied.append(spec)
    if changes.removed or applied:
        log.info(
            "applied run-time source changes: %d removed, %d added",
            len(removed & set(config_ids)),
            len(applied),
        )
    return planned, SourceChangeLog(config_ids, applied, changes.removed)


def _replan(spec: SourceSpec, have: set[str]) -> PlannedSource | None:
    if spec.stream_id in have:
        log.warning(
            "not re-adding run-time source %s: the pipeline config now has a source of that id",
            spec.stream_id,
        )
        return None
    try:
        streams.frames(spec.stream_id)
        return plan_source(spec, GROUP)
    except (UriError, ValueError) as e:
        log.warning("not re-adding run-time source %s: %s", spec.stream_id, e)
        return None
