"""What every decoder takes and gives: an `OpenRequest` in, `DecodedFrame`s out, behind the
`Decoder` protocol. Apart from the backends (decoders.py, nvdec.py) so that each imports the
interface and none imports another backend's module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import numpy as np

from heron.core.media_uri import MediaTarget


@dataclass(frozen=True)
class OpenRequest:
    """One attempt to open a target: its demuxer options and how long a read may block."""

    target: MediaTarget
    options: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None  # per open and per read; None blocks forever
    threads: int = 0  # 0 = let FFmpeg choose


@dataclass(frozen=True)
class DecodedFrame:
    image: np.ndarray  # BGR, uint8, H x W x 3
    pts: int | None
    time_base: Fraction | None
    decode_s: float = 0.0  # CPU time decoding and converting it (waiting for input excluded)
    source_fps: float | None = None  # the stream's nominal frame rate, when the media says


class Decoder(Protocol):
    """Opens `request.target` and yields its frames until the media ends."""

    name: str

    def frames(self, request: OpenRequest) -> Iterator[DecodedFrame]: ...
