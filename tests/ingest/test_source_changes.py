"""The pieces of run-time sources without a running service: what a restart re-applies, which
ids an added source gets, and how many removed sources the report keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.plan.sources import PlannedSource, plan_source
from heron.ingest.changes import SourceChangeLog, apply_changes
from heron.ingest.runtime_sources import InUse, RefusedError, plan_added
from heron.ingest.workers import KEEP_REMOVED, WorkerSet
from heron.v1.commands_pb2 import SourceChanges
from heron.v1.control_pb2 import SourceState, SourceStatus
from heron.v1.stream_pb2 import SourceSpec, SourceType

LAVFI = "lavfi://testsrc2=size=160x120:rate=30"


def planned(stream_id: str, uri: str = LAVFI) -> PlannedSource:
    return plan_source(SourceSpec(stream_id=stream_id, uri=uri), "test")


def ids(sources: list[PlannedSource]) -> list[str]:
    return [p.spec.stream_id for p in sources]


def test_no_changes_leave_the_config_as_it_is() -> None:
    config = [planned("source-0"), planned("source-1")]
    sources, log = apply_changes(config, None)
    assert ids(sources) == ["source-0", "source-1"]
    assert (list(log.message().added), list(log.message().removed)) == ([], [])


def test_changes_drop_removed_sources_and_add_the_added_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "gone.mp4"
    changes = SourceChanges(
        added=[
            SourceSpec(stream_id="cam-b", uri=LAVFI),
            SourceSpec(stream_id="source-2", uri=LAVFI),  # the config has it now
            SourceSpec(stream_id="cam-c", uri=f"file://{gone}"),  # no longer plans
            SourceSpec(stream_id="cam-a", uri=LAVFI),
        ],
        removed=["source-1", "source-9"],  # source-9 left the config
    )
    config = [planned("source-0"), planned("source-1"), planned("source-2")]

    sources, log = apply_changes(config, changes)

    assert ids(sources) == ["source-0", "source-2", "cam-b", "cam-a"]
    assert "source-2: the pipeline config now has a source of that id" in caplog.text
    assert f"cam-c: source URI 'file://{gone}': file" in caplog.text
    kept = log.message()
    assert [s.stream_id for s in kept.added] == ["cam-b", "cam-a"]
    assert list(kept.removed) == ["source-1"]


def test_the_log_holds_what_a_restart_needs() -> None:
    log = SourceChangeLog(["source-0", "source-1"])
    log.added(SourceSpec(stream_id="a", uri=LAVFI))
    log.added(SourceSpec(stream_id="b", uri=LAVFI))
    log.removed("a")  # added, then removed: simply not added
    log.removed("source-1")
    log.added(SourceSpec(stream_id="source-0", uri=LAVFI))  # replaces the ended config source
    message = log.message()
    assert [s.stream_id for s in message.added] == ["b", "source-0"]
    assert list(message.removed) == ["source-1", "source-0"]
    assert message.HasField("time")


IN_USE = InUse(
    running=frozenset({"source-0", "source-2"}),
    known=frozenset({"source-0", "source-1", "source-2"}),
    source_ids=frozenset({0, 2}),
)


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("rtsp://cam.local/live", SourceType.SOURCE_TYPE_RTSP),
        ("RTSPS://cam.local/live", SourceType.SOURCE_TYPE_RTSP),
        (LAVFI, SourceType.SOURCE_TYPE_URI),
        ("https://host/clip.mp4", SourceType.SOURCE_TYPE_URI),
    ],
)
def test_an_added_source_gets_free_ids_and_its_type_from_the_uri(uri: str, kind: int) -> None:
    request = SourceSpec(uri=uri)
    spec = plan_added(request, IN_USE).spec
    assert (spec.stream_id, spec.source_id, spec.type) == ("source-3", 3, kind)
    assert request.stream_id == ""  # the request itself is left as sent


def test_a_camera_that_is_not_there_is_refused_as_a_config_one_is() -> None:
    with pytest.raises(RefusedError) as refused:
        plan_added(SourceSpec(uri="/dev/video97"), IN_USE)
    assert str(refused.value).startswith("source.uri: source URI '/dev/video97': V4L2 device")


def test_the_report_keeps_the_most_recent_removed_sources() -> None:
    workers = WorkerSet()
    for n in range(KEEP_REMOVED + 6):
        status = SourceStatus(state=SourceState.SOURCE_STATE_REMOVED)
        status.source.stream_id = f"s-{n}"
        workers.removed(status)
    kept = [s.source.stream_id for s in workers.statuses()]
    assert KEEP_REMOVED == 64
    assert kept == [f"s-{n}" for n in range(6, KEEP_REMOVED + 6)]
    assert "s-0" not in workers.in_use().known and "s-6" in workers.in_use().known
