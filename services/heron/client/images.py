"""Images a caller hands to `detect`, as the Detector's `Image` messages.

A path or bytes travel as they are (the server decodes JPEG and PNG); a numpy array travels
as raw packed pixels with its size and format, so nothing is re-encoded on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from heron.v1 import detector_pb2, frame_pb2

ImageInput: TypeAlias = str | Path | bytes | npt.NDArray[np.uint8] | detector_pb2.Image
"""A file path (JPEG/PNG), encoded JPEG/PNG bytes, an HxWx3 / HxW uint8 array, or an Image."""

ChannelOrder: TypeAlias = Literal["bgr", "rgb"]

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_COLOUR = {"bgr": frame_pb2.PIXEL_FORMAT_BGR24, "rgb": frame_pb2.PIXEL_FORMAT_RGB24}


class ImageError(ValueError):
    """An image the client cannot send: it names the image and says what was expected."""


def to_images(
    images: Sequence[ImageInput], *, order: ChannelOrder = "bgr"
) -> list[detector_pb2.Image]:
    """Each input as an Image; ids are the paths given, else the position in `images`."""
    if isinstance(images, str | bytes | Path | np.ndarray):
        raise ImageError(
            f"images: expected a sequence of images, got one {type(images).__name__}; "
            "wrap it in a list"
        )
    if not images:
        raise ImageError("images: expected at least one image, got none")
    return [to_image(image, str(i), order=order) for i, image in enumerate(images)]


def to_image(image: ImageInput, index: str, *, order: ChannelOrder = "bgr") -> detector_pb2.Image:
    """One input as an Image (`index` is its id unless it is a path or already an Image)."""
    if isinstance(image, detector_pb2.Image):
        return image
    if isinstance(image, str | Path):
        return _from_file(Path(image))
    if isinstance(image, bytes):
        _check_encoded(image, f"images[{index}]")
        return detector_pb2.Image(id=index, encoded=image)
    if isinstance(image, np.ndarray):
        return detector_pb2.Image(id=index, raw=_from_array(image, f"images[{index}]", order))
    raise ImageError(
        f"images[{index}]: expected a path, JPEG/PNG bytes or a uint8 numpy array, "
        f"got {type(image).__name__}"
    )


def _from_file(path: Path) -> detector_pb2.Image:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read it: {e.strerror or e}") from None
    _check_encoded(data, str(path))
    return detector_pb2.Image(id=str(path), encoded=data)


def _check_encoded(data: bytes, name: str) -> None:
    if not data.startswith((_JPEG, _PNG)):
        raise ImageError(f"{name}: expected a JPEG or PNG image, got {_first_bytes(data)}")


def _first_bytes(data: bytes) -> str:
    if not data:
        return "an empty file"
    return f"{len(data)} bytes starting {data[:8].hex(' ')}"


def _from_array(
    array: npt.NDArray[np.uint8], name: str, order: ChannelOrder
) -> detector_pb2.RawImage:
    if array.dtype != np.uint8:
        raise ImageError(f"{name}: expected a uint8 array, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        pixel_format = frame_pb2.PIXEL_FORMAT_GRAY8
    elif array.ndim == 3 and array.shape[2] == 3:
        pixel_format = _COLOUR[order]
    else:
        raise ImageError(
            f"{name}: expected an HxWx3 (colour) or HxW (grey) array, got shape {array.shape}"
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(f"{name}: the image is empty (shape {array.shape})")
    return detector_pb2.RawImage(
        data=np.ascontiguousarray(array).tobytes(),
        width=width,
        height=height,
        format=pixel_format,
    )
