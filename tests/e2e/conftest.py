"""A clip, a small exported detector and a pipeline config for `heron run` end to end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.e2e.model import write_detector
from tests.inference.conftest import NET_H, NET_W, write_nvinfer
from tests.ingest.clips import make_clip

REAL_CLIP = SHARED_DATA / "videos" / "Face_Mask_Video.mp4"


@dataclass(frozen=True)
class Clip:
    path: Path
    frames: int
    real: bool


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The real face-mask clip when ../shared is there, else a generated numbered clip as long
    (the kill tests need a run that outlasts three kills 1.5 s apart)."""
    if REAL_CLIP.is_file():
        return Clip(REAL_CLIP, count_frames(REAL_CLIP), True)
    path = make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=635, fps=25)
    return Clip(path, 635, False)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A generated 6-second numbered clip, for tests that need a run, not the real faces."""
    path = make_clip(tmp_path_factory.mktemp("short") / "short.mp4", frames=150, fps=25)
    return Clip(path, 150, False)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported DetectNet_v2-shaped ONNX (random weights) with its nvinfer config."""
    folder = tmp_path_factory.mktemp("model")
    onnx = write_detector(folder / "tiny.onnx", NET_H, NET_W)
    write_nvinfer(folder, onnx, extra="batch-size=1")
    return folder


def write_app(
    folder: Path,
    model_dir: Path,
    uri: str,
    *,
    loop: bool = False,
    output: Path | None = None,
    interval_s: int = 1,
    tracker: bool = False,
    osd: bool = True,
) -> Path:
    """A deepstream-app config: one file source, the detector, a fake or an MP4 file sink (with
    the OSD unless `osd` is off: a label drawn over a numbered clip's blocks misreads them),
    optionally the IOU tracker."""
    sink = "[sink0]\nenable=1\ntype=1\n"
    if output is not None:
        sink = f"[sink0]\nenable=1\ntype=3\ncontainer=1\ncodec=1\noutput-file={output}\n"
        sink += f"\n[osd]\nenable={int(osd)}\nborder-width=2\n"
    path = folder / "app.txt"
    path.write_text(
        f"[application]\nenable-perf-measurement=1\nperf-measurement-interval-sec={interval_s}\n\n"
        f"[source0]\nenable=1\ntype=2\nuri={uri}\n\n"
        f"[streammux]\nbatch-size=1\nwidth={NET_W * 2}\nheight={NET_H * 2}\n"
        "batched-push-timeout=40000\n\n"
        f"[primary-gie]\nenable=1\nconfig-file={model_dir / 'nvinfer.txt'}\n\n"
        f"{sink}\n"
        + ("[tracker]\nenable=1\nll-lib-file=/x/libnvds_mot_iou.so\n\n" if tracker else "")
        + f"[tests]\nfile-loop={int(loop)}\n"
    )
    return path
