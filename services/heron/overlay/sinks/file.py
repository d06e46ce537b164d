"""type=3: encode the overlay's frames into a file with PyAV (FFmpeg): H.264 (libx264),
H.265 (libx265) or MPEG-4 Part 2, in MP4 or Matroska.

Timestamps come from the source: a frame's pts is its first source frame's pts (`FrameRef.pts`
in `time_base_num/time_base_den`), so the file plays at the rate the camera or file had, gaps
included. Without source timestamps (time base 0) frames are spaced 1/`fps`. A source that
starts over (file-loop) is spliced on one frame after the last. The size is the first frame's
(rounded down to even, as 4:2:0 needs); a later frame of another size is scaled to it.

The frames go through a `Recording` (recording.py): MPEG-TS parts on disk while the run lasts,
joined into the MP4 or Matroska file by `close()`, so an overlay killed mid-run and started
again (`resume=True`) continues the same recording with every frame once. That needs one packet
out of the encoder per frame in: x264/x265 run with `tune=zerolatency` (no B-frames, no
lookahead), as the NVENC encoders deepstream-app uses do by default; MPEG-4 Part 2 has no
B-frames unless asked. Any failure to write is a `RecordingError`: the run stops rather than
record a file with frames missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from heron.core.config.sinks import Codec, Container, EncoderType, FileSink
from heron.overlay.dedup import FrameKey, frame_key
from heron.overlay.sinks.base import Image, RecordingError, SinkConfigError
from heron.overlay.sinks.recording import PART_FORMAT, Recording
from heron.v1.detection_pb2 import FrameMetadata

log = logging.getLogger(__name__)

# Stream time base 1/60000: exact for 23.976/24/25/29.97/30/50/60 fps, and within MPEG-4 Part 2's
# 16-bit limit on the time base (1/90000 is refused there).
TICKS = 60_000
ENCODERS = {Codec.H264: "libx264", Codec.H265: "libx265", Codec.MPEG4: "mpeg4"}
FORMATS = {Container.MP4: "mp4", Container.MKV: "matroska"}
H264_PROFILES = {0: "baseline", 2: "main", 4: "high"}


class FileVideoSink:
    kind = "file"

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        codec: Codec = Codec.H264,
        container: Container = Container.MP4,
        bitrate: int = 4_000_000,
        fps: float = 30.0,
        gop: int = 30,
        profile: str | None = None,
        preset: str = "veryfast",
        resume: bool = False,
    ) -> None:
        if fps <= 0:
            raise SinkConfigError(f"{name} file sink: expected fps > 0, got {fps}")
        if not path.parent.is_dir():
            raise SinkConfigError(
                f"{name} output-file: expected a file in an existing folder, got {str(path)!r} "
                f"({str(path.parent)!r} does not exist)"
            )
        if path.is_dir():
            raise SinkConfigError(
                f"{name} output-file: expected a file, got {str(path)!r}, which is a folder"
            )
        self.name, self.path = name, path
        self.codec, self.container_kind = codec, container
        self.bitrate, self.fps, self.gop = bitrate, fps, gop
        self.profile, self.preset = profile, preset
        self.frames = 0
        self._out: Any = None  # av.container.OutputContainer once the first frame came
        self._stream: Any = None
        self._size: tuple[int, int] = (0, 0)
        self._last_pts = -1
        self._step = round(TICKS / fps)  # one frame's ticks, updated from the source's spacing
        self._origin: int | None = None  # source ticks of pts 0
        self._clock: str | None = None  # stream whose timestamps pace the file
        self.recording = Recording(path, resume=resume)
        self._pending_pts: list[int] = []  # written since the last commit
        self._pending_frames: list[FrameKey] = []
        if (timeline := self.recording.timeline()) is not None:
            self._last_pts, step = timeline  # go on where the killed writer's commits ended
            self._step = step or self._step

    @classmethod
    def from_sink(
        cls, name: str, sink: FileSink, *, fps: float, preset: str, resume: bool = False
    ) -> FileVideoSink:
        profile = None
        if sink.codec is Codec.H264:
            profile = H264_PROFILES.get(sink.profile)
            if profile is None:
                raise SinkConfigError(
                    f"[{name}] profile: expected 0 (baseline), 2 (main) or 4 (high) for H.264, "
                    f"got {sink.profile}"
                )
        if sink.enc_type is EncoderType.HW:
            log.warning(
                "[%s] enc-type=0 (NVENC) is not available here; encoding with %s on the CPU",
                name,
                ENCODERS[sink.codec],
            )
        return cls(
            name, sink.output_file, codec=sink.codec, container=sink.container,
            bitrate=sink.bitrate, fps=fps, gop=sink.iframeinterval, profile=profile,
            preset=preset, resume=resume,
        )  # fmt: skip

    def write(self, frame: Image | None, metadata: Sequence[FrameMetadata]) -> None:
        import av

        if frame is None:
            return
        keys = [frame_key(m) for m in metadata]
        if self.recording.seen(keys):  # committed before a restart, redelivered since
            log.info("%s: frame(s) %s are in the recording already", self.name, keys)
            return
        if self._out is None:
            width, height = self.recording.size() or (frame.shape[1], frame.shape[0])
            self._open(width, height)
        w, h = self._size
        if frame.shape[1] != w or frame.shape[0] != h:
            frame = _fit(frame, w, h)
        video = av.VideoFrame.from_ndarray(_to_i420(frame), format="yuv420p")
        video.pts = self._pts(metadata)
        video.time_base = Fraction(1, TICKS)
        try:
            self._mux(self._stream.encode(video))
        except (av.FFmpegError, OSError) as e:
            raise RecordingError(f"{self.name}: writing frame {self.frames} failed: {e}") from e
        self._pending_frames += keys
        self.frames += 1

    def commit(self) -> None:
        if self._pending_pts or self._pending_frames:
            self.recording.commit(self._pending_pts, self._pending_frames)
            self._pending_pts, self._pending_frames = [], []

    def close(self) -> None:
        """Flush the encoder and join the parts into the output file; safe to call twice."""
        import av

        if self._out is not None:
            try:
                self._mux(self._stream.encode(None))
                self.commit()
            except (av.FFmpegError, OSError) as e:
                raise RecordingError(f"{self.name}: flushing the encoder failed: {e}") from e
            finally:
                out, self._out = self._out, None
                out.close()
        if self.recording.parts:
            total = self.recording.finish(FORMATS[self.container_kind], TICKS)
            self.recording.parts.clear()
            log.info("%s: wrote %d frames to %s", self.name, total, self.path)

    def reset(self) -> None:
        self._origin = None  # the next source timestamps start a new segment
        self._clock = None

    def _open(self, width: int, height: int) -> None:
        import av

        w, h = width - width % 2, height - height % 2
        if w < 2 or h < 2:
            raise RecordingError(f"{self.name}: cannot encode a {width}x{height} frame")
        part = self.recording.new_part()
        try:
            # Each packet reaches the file as it is muxed: what commit() marks is on disk.
            out = av.open(
                str(part), mode="w", format=PART_FORMAT, container_options={"flush_packets": "1"}
            )
        except (av.FFmpegError, OSError) as e:
            raise RecordingError(f"{self.name}: cannot write {part}: {e}") from e
        try:
            options: dict[str, str] = {}
            if self.codec is not Codec.MPEG4:
                options = {"preset": self.preset, "tune": "zerolatency"}
            if self.profile:
                options["profile"] = self.profile
            rate = Fraction(self.fps).limit_denominator(1001)
            stream = out.add_stream(ENCODERS[self.codec], rate=rate, options=options)
            if not isinstance(stream, av.VideoStream):
                raise ValueError(f"{ENCODERS[self.codec]} is not a video encoder")
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.bit_rate = self.bitrate
            stream.codec_context.gop_size = self.gop
            stream.codec_context.time_base = Fraction(1, TICKS)
        except (av.FFmpegError, ValueError) as e:
            out.close()
            raise RecordingError(f"{self.name}: cannot open {ENCODERS[self.codec]}: {e}") from e
        self._out, self._stream, self._size = out, stream, (w, h)
        log.info("%s: writing %dx%d %s to %s", self.name, w, h, ENCODERS[self.codec], part)

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._pending_pts.append(int(packet.pts))  # in ticks: the codec's time base
            self._out.mux(packet)

    def _pts(self, metadata: Sequence[FrameMetadata]) -> int:
        following = self._last_pts + self._step if self._last_pts >= 0 else 0
        ticks = self._source_ticks(metadata)
        if ticks is None:
            pts = following
        else:
            if self._origin is None:
                self._origin = ticks - following
            pts = ticks - self._origin
            if pts <= self._last_pts:  # the source started over: splice one frame later
                self._origin = ticks - following
                pts = following
            elif self._last_pts >= 0:
                self._step = pts - self._last_pts
        self._last_pts = pts
        return pts

    def _source_ticks(self, metadata: Sequence[FrameMetadata]) -> int | None:
        """The clock source's timestamp in ticks: one stream's clock (the first with
        timestamps) paces a tiled file, so frames of other streams cannot move it back."""
        for meta in metadata:
            ref = meta.frame
            if not (ref.time_base_den and ref.time_base_num):
                continue
            if self._clock is None:
                self._clock = ref.stream_id
            if ref.stream_id == self._clock:
                return round(ref.pts * ref.time_base_num * TICKS / ref.time_base_den)
        return None


def _to_i420(frame: Image) -> Image:
    import cv2

    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), np.uint8)


def _fit(frame: Image, width: int, height: int) -> Image:
    import cv2

    if (
        frame.shape[1] >= width
        and frame.shape[0] >= height
        and (frame.shape[1] - width < 2 and frame.shape[0] - height < 2)
    ):
        return frame[:height, :width]  # only the odd pixel cut off
    return np.asarray(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
