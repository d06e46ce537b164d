"""Run a trained DetectNet_v2 — a checkpoint (.pt, PyTorch) or an export (.onnx, ONNX Runtime) —
and turn its grids into per-image `Detections` with `heron.postprocess`, the same clustering
the streaming inference service runs.

Both kinds carry their settings (classes, input size, bbox coding, postprocessing_config):
the checkpoint in its `settings` entry, the ONNX file in its metadata (`heron.settings`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.evaluation.images import read_image, resize
from heron.training.settings import SettingsError, TrainingSettings

if TYPE_CHECKING:
    from heron.core.detections import Detections
    from heron.postprocess.params import ClusterParams


class ModelFileError(ValueError):
    """A model file is missing, of an unknown kind, or lacks Heron's settings."""


class Runner(Protocol):
    """A loaded model: float RGB [0, 1] (N, 3, H, W) → (coverage, bbox) as numpy arrays."""

    settings: TrainingSettings

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class TorchRunner:
    def __init__(self, path: Path, device: str | None = None) -> None:
        from heron.training.prune.layout import load_pruned

        # A pruned network's layers are narrower: its tensor shapes give the layout.
        self.model, self.settings = load_pruned(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        cov, bbox = self.model(x)
        return cov.float().cpu().numpy(), bbox.float().cpu().numpy()


class OnnxRunner:
    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        from heron.core.int8.qdq import scoring_options

        try:
            options = scoring_options(path)  # an INT8 model scored as the arithmetic it names
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{path}: ONNX Runtime cannot load it ({e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if SETTINGS_METADATA_KEY not in meta:
            raise ModelFileError(
                f"{path}: no {SETTINGS_METADATA_KEY!r} metadata; export it with `heron export`"
            )
        try:
            self.settings = TrainingSettings.from_dict(json.loads(meta[SETTINGS_METADATA_KEY]))
        except (json.JSONDecodeError, SettingsError) as e:
            raise ModelFileError(f"{path}: invalid {SETTINGS_METADATA_KEY} metadata: {e}") from None
        self.outputs = [o.name for o in self.session.get_outputs()]
        _check_detector(path, self.session)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME

        feeds = {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)}
        cov, bbox = self.session.run([COV_NAME, BBOX_NAME], feeds)
        return np.asarray(cov), np.asarray(bbox)


def _check_detector(path: Path, session: Any) -> None:
    """An ONNX model whose metadata says it is Heron's may still be something else: refuse one
    without DetectNet_v2's image input and two outputs before it is fed images."""
    from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME

    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    shape = inputs.get(INPUT_NAME)
    if shape is None or len(shape) != 4:
        found = ", ".join(f"{n} {list(s)}" for n, s in inputs.items()) or "none"
        raise ModelFileError(
            f"{path}: expected a DetectNet_v2 export with the image input {INPUT_NAME!r} of shape "
            f"[N, C, H, W]; found inputs {found}"
        )
    missing = [n for n in (COV_NAME, BBOX_NAME) if n not in outputs]
    if missing:
        raise ModelFileError(
            f"{path}: expected the DetectNet_v2 outputs {COV_NAME!r} and {BBOX_NAME!r}; "
            f"found {sorted(outputs)}"
        )


def load_runner(path: Path | str, device: str | None = None) -> Runner:
    """A checkpoint (.pt/.pth) or ONNX (.onnx) model, by file suffix."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if path.suffix.lower() == ".onnx":
        return OnnxRunner(path)
    if path.suffix.lower() in (".pt", ".pth"):
        return TorchRunner(path, device)
    raise ModelFileError(f"{path}: expected a .pt checkpoint or an .onnx export")


def cluster_params(settings: TrainingSettings) -> list[ClusterParams]:
    """One ClusterParams per output class, from the spec's postprocessing_config; the same
    conversion (and MAX_CANDIDATES cap) the engine's INT8 gate scores with."""
    from heron.evaluation import model_settings

    return [model_settings.cluster_params(settings.cluster_for(name)) for name in settings.classes]


def decode(cov: np.ndarray, bbox: np.ndarray, settings: TrainingSettings) -> list[Detections]:
    """Grids of a batch → Detections per image, in network-input pixels."""
    from heron.postprocess import postprocess
    from heron.postprocess.grid import BBoxCoding

    coding = BBoxCoding(
        stride=settings.model.output_stride,
        scale=settings.model.bbox_scale,
        offset=settings.model.bbox_offset,
    )
    result: list[Detections] = postprocess(cov, bbox, cluster_params(settings), coding=coding)
    return result


def load_batch(
    paths: Sequence[Path], settings: TrainingSettings
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Images resized to the network input, float [0, 1]; and each original (width, height)."""
    w, h = settings.model.input_width, settings.model.input_height
    images, sizes = [], []
    for path in paths:
        image = read_image(path)
        sizes.append((int(image.shape[2]), int(image.shape[1])))
        images.append(resize(image, w, h))
    return torch.stack(images).float().div_(255.0).numpy(), sizes


@dataclass(frozen=True)
class Prediction:
    image: Path
    size: tuple[int, int]  # (width, height) of the image file
    detections: Detections  # in pixels of the image file


def predict_paths(
    runner: Runner, paths: Sequence[Path], batch_size: int = 8
) -> Iterator[Prediction]:
    """Detections per image, scaled back from the network input to each image's pixels."""
    from heron.core.detections import Detections

    settings = runner.settings
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start : start + batch_size])
        images, sizes = load_batch(chunk, settings)
        cov, bbox = runner(images)
        for path, size, det in zip(chunk, sizes, decode(cov, bbox, settings), strict=True):
            sx = size[0] / settings.model.input_width
            sy = size[1] / settings.model.input_height
            boxes = det.xyxy * np.array([sx, sy, sx, sy], dtype=np.float32)
            yield Prediction(path, size, Detections(boxes, det.scores, det.class_ids))


def image_paths(source: Path) -> list[Path]:
    """An image file, or every image of a folder (a KITTI folder's images/ when present)."""
    from heron.evaluation.kitti import is_image

    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such image or folder")
    folder = source / "images" if (source / "images").is_dir() else source
    paths = sorted(p for p in folder.iterdir() if is_image(p))
    if not paths:
        raise FileNotFoundError(f"{folder}: no images (.jpg, .jpeg, .png, .bmp) found")
    return paths


def settings_json(settings: TrainingSettings) -> str:
    return json.dumps(settings.to_dict(), sort_keys=True)


def as_dict(prediction: Prediction, classes: Sequence[str]) -> dict[str, Any]:
    d = prediction.detections
    return {
        "image": str(prediction.image),
        "objects": [
            {"class": classes[int(c)], "score": float(s), "box": [float(v) for v in b]}
            for b, s, c in zip(d.xyxy, d.scores, d.class_ids, strict=True)
        ],
    }
