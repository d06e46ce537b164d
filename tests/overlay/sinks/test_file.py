"""The file sink writes video that PyAV decodes: every frame, boxes where they were drawn,
timestamps from the source."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from heron.core.config.sinks import Codec, Container
from heron.overlay.sinks.base import SinkConfigError
from heron.overlay.sinks.file import FileVideoSink
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef

W, H = 320, 240
BOX = (100, 60, 200, 160)  # x1 y1 x2 y2


def frame_with_box(i: int) -> np.ndarray:
    image = np.full((H, W, 3), 40, np.uint8)
    x1, y1, x2, y2 = BOX
    image[y1 : y1 + 4, x1:x2] = image[y2 - 4 : y2, x1:x2] = (0, 255, 0)
    image[y1:y2, x1 : x1 + 4] = image[y1:y2, x2 - 4 : x2] = (0, 255, 0)
    image[200:210, 10 + i : 20 + i] = 255  # something that moves
    return image


def meta(i: int, pts: int | None) -> list[FrameMetadata]:
    if pts is None:
        return [FrameMetadata(frame=FrameRef(stream_id="a", frame_number=i))]
    ref = FrameRef(stream_id="a", frame_number=i, pts=pts, time_base_num=1, time_base_den=12800)
    return [FrameMetadata(frame=ref)]


def decode(path: Path) -> tuple[list[np.ndarray], list[float], av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return (
            [f.to_ndarray(format="bgr24") for f in frames],
            [float(f.time) for f in frames],
            stream,
        )


@pytest.mark.parametrize(
    ("container", "codec", "suffix"),
    [(Container.MP4, Codec.H264, "mp4"), (Container.MKV, Codec.H264, "mkv"),
     (Container.MP4, Codec.MPEG4, "mp4")],
)  # fmt: skip
def test_every_frame_decodes_with_the_box_where_drawn(
    tmp_path: Path, container: Container, codec: Codec, suffix: str
) -> None:
    path = tmp_path / f"out.{suffix}"
    sink = FileVideoSink("sink0", path, codec=codec, container=container, fps=25)
    for i in range(30):
        sink.write(frame_with_box(i), meta(i, i * 512))  # 512/12800 s = 25 fps
    sink.close()
    sink.close()  # idempotent
    frames, times, _ = decode(path)
    assert len(frames) == 30
    last = frames[-1].astype(int)
    x1, y1, x2, y2 = BOX
    for y, x in [(y1 + 1, (x1 + x2) // 2), (y2 - 2, (x1 + x2) // 2), ((y1 + y2) // 2, x1 + 1)]:
        b, g, r = last[y, x]
        assert g > 200 and b < 60 and r < 60, (y, x, last[y, x])
    assert abs(last[(y1 + y2) // 2, (x1 + x2) // 2] - 40).max() < 12  # inside: background
    assert times[1] - times[0] == pytest.approx(0.04, abs=1e-3)


def test_source_timestamps_pace_the_file_and_a_restart_is_spliced(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = FileVideoSink("sink0", path, fps=30)
    pts = [0, 1024, 2048, 0, 1024]  # 12.5 fps, then the file source loops
    for i, p in enumerate(pts):
        sink.write(frame_with_box(i), meta(i, p))
    sink.close()
    _, times, _ = decode(path)
    assert times == pytest.approx([0.0, 0.08, 0.16, 0.24, 0.32], abs=1e-3)


def test_without_source_timestamps_frames_are_spaced_by_fps(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = FileVideoSink("sink0", path, fps=10)
    for i in range(3):
        sink.write(frame_with_box(i), meta(i, None))
    sink.close()
    _, times, _ = decode(path)
    assert times == pytest.approx([0.0, 0.1, 0.2], abs=1e-3)


def test_odd_and_changing_sizes_are_fitted_to_the_first_even_size(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = FileVideoSink("sink0", path)
    sink.write(np.zeros((241, 321, 3), np.uint8), meta(0, None))
    sink.write(np.zeros((100, 100, 3), np.uint8), meta(1, None))
    sink.write(None, meta(2, None))  # metadata-only calls carry no picture
    sink.close()
    frames, _, stream = decode(path)
    assert len(frames) == 2 and (stream.width, stream.height) == (320, 240)


def test_a_missing_output_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SinkConfigError, match=r"sink0 output-file: .* does not exist"):
        FileVideoSink("sink0", tmp_path / "nope" / "out.mp4")
