"""Images as the detector sees them: decoded, resized to the network input, float [0, 1].

Training (its image cache, `heron evaluate`, `heron infer`) and the engine's accuracy gate both
take their pixels from here, so a model scored by either gets the same input bytes and the AP
they report is the same number. torchvision's decoders and torch's antialiased bilinear
resize, nothing else: the GPU training machines have no OpenCV.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from heron.evaluation.errors import DataFormatError

EVALUATION_BATCH_SIZE = 8
"""Images per forward pass when a model file is scored (`heron evaluate`, the INT8 gate)."""


def read_image(path: Path) -> Tensor:
    """uint8 RGB (3, H, W); DataFormatError naming the file when it cannot be decoded."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        with warnings.catch_warnings():
            # torchvision >= 0.29 points to TorchCodec; its decoders still work and need
            # nothing else installed (the GPU machines have no OpenCV).
            warnings.simplefilter("ignore", DeprecationWarning)
            image: Tensor = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as e:
        raise DataFormatError(path, 0, f"cannot decode image: {e}") from None
    return image


def resize(image: Tensor, width: int, height: int) -> Tensor:
    """uint8 (3, h, w) → uint8 (3, height, width), antialiased bilinear."""
    if image.shape[1:] == (height, width):
        return image
    x = functional.interpolate(
        image.unsqueeze(0).float(), size=(height, width), mode="bilinear", antialias=True
    )
    return x.squeeze(0).round_().clamp_(0, 255).to(torch.uint8)


def network_input(image: Path, boxes: np.ndarray, width: int, height: int) -> tuple[Tensor, Tensor]:
    """The image as uint8 (3, height, width) and its boxes (M, 4) float32 scaled with it."""
    pixels = read_image(image)
    h, w = pixels.shape[1:]
    scale = torch.tensor([width / w, height / h] * 2)
    return resize(pixels, width, height), torch.from_numpy(boxes) * scale


def to_float(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) → float32 in [0, 1]."""
    return images.float().div_(255.0)
