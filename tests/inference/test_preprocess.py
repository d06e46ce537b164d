"""nvinfer preprocessing against values computed by hand, pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.config.nvinfer_models import InferProperty
from heron.inference.errors import ModelMismatchError
from heron.inference.geometry import Placement, frame_geometry, place
from heron.inference.preprocess import Preprocessor, PreprocessSpec

# A 4x2 BGR image with distinct values in every pixel and channel.
IMAGE = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3) * 10


def prop(**keys: object) -> InferProperty:
    base: dict[str, object] = {"scaling_filter": 0}  # nearest: 2x upscale duplicates pixels
    return InferProperty.model_validate({**base, **keys})


def by_hand(
    spec: PreprocessSpec, image: np.ndarray, left: int, top: int, factor: int
) -> np.ndarray:
    """The expected tensor, one element at a time: zero padding, then scale*(x - offset)."""
    out = np.empty((spec.channels, spec.height, spec.width), np.float32)
    h, w = image.shape[:2]
    for c in range(spec.channels):
        for y in range(spec.height):
            for x in range(spec.width):
                sy, sx = (y - top) // factor, (x - left) // factor
                inside = 0 <= y - top < h * factor and 0 <= x - left < w * factor
                b, g, r = (int(v) for v in image[sy, sx]) if inside else (0, 0, 0)
                if spec.channels == 1:
                    value = round(0.299 * r + 0.587 * g + 0.114 * b)  # OpenCV's BGR2GRAY
                else:
                    value = (r, g, b)[c] if spec.color.value == "rgb" else (b, g, r)[c]
                out[c, y, x] = spec.scale * (value - spec.offsets[c])
    return out


@pytest.mark.parametrize(
    ("keys", "chw", "left", "top"),
    [
        # stretch: 4x2 → 8x4 is an exact 2x upscale
        ({"model_color_format": 0, "net_scale_factor": 0.5, "offsets": [1, 2, 3]}, (3, 4, 8), 0, 0),
        ({"model_color_format": 1, "net_scale_factor": 2.0, "offsets": [5, 0, 7]}, (3, 4, 8), 0, 0),
        # aspect kept into 8x8: the image fills the top 4 rows (right/bottom padding)
        ({"maintain_aspect_ratio": True, "offsets": [10, 20, 30]}, (3, 8, 8), 0, 0),
        # symmetric padding centres it: 2 rows above, 2 below
        (
            {"maintain_aspect_ratio": True, "symmetric_padding": True, "net_scale_factor": 0.1},
            (3, 8, 8),
            0,
            2,
        ),
        ({"model_color_format": 2, "offsets": [12], "net_scale_factor": 0.25}, (1, 4, 8), 0, 0),
    ],
)
def test_preprocessing_matches_hand_computation(
    keys: dict[str, object], chw: tuple[int, int, int], left: int, top: int
) -> None:
    spec = PreprocessSpec.from_nvinfer(prop(**keys), chw)
    batch, placements = Preprocessor(spec)([IMAGE, IMAGE])
    expected = by_hand(spec, IMAGE, left, top, factor=2)
    assert batch.shape == (2, *chw) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(batch[0], batch[1])
    assert placements[0] == Placement((4, 2), (chw[2], chw[1]), (8, 4), left, top)


def test_frames_of_different_sizes_batch_together() -> None:
    spec = PreprocessSpec.from_nvinfer(prop(maintain_aspect_ratio=True), (3, 8, 8))
    tall = np.full((8, 2, 3), 200, np.uint8)
    batch, placements = Preprocessor(spec)([IMAGE, tall])
    assert [p.size for p in placements] == [(8, 4), (2, 8)]
    assert batch[1, :, :, :2].min() == 200 and batch[1, :, :, 2:].max() == 0  # padded right


@pytest.mark.parametrize(
    ("keys", "chw", "message"),
    [
        ({"offsets": [1, 2]}, (3, 4, 8), "offsets: expected 3 value(s)"),
        ({"infer_dims": [3, 544, 960]}, (3, 4, 8), "infer-dims: the config says c;h;w = 3;544;960"),
        ({"input_dims": [3, 8, 8, 0]}, (3, 4, 8), "input-dims: the config says"),
        ({"model_color_format": 2}, (3, 4, 8), "needs 1 input channel(s), but the network"),
        ({"model_color_format": 0}, (1, 4, 8), "needs 3 input channel(s)"),
        ({"network_input_order": 1}, (3, 4, 8), "NHWC"),
    ],
)
def test_config_that_does_not_fit_the_model_is_refused(
    keys: dict[str, object], chw: tuple[int, int, int], message: str
) -> None:
    with pytest.raises(ModelMismatchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PreprocessSpec.from_nvinfer(prop(**keys), chw)


@pytest.mark.parametrize(
    ("src", "dst", "symmetric", "size", "offset"),
    [
        ((1920, 1080), (960, 544), False, (960, 540), (0, 0)),  # width fills, 4 rows padded
        ((1920, 1080), (960, 544), True, (960, 540), (0, 2)),
        ((640, 480), (960, 544), False, (725, 544), (0, 0)),  # 544*640/480 = 725.33 truncated
        ((640, 480), (960, 544), True, (725, 544), (117, 0)),
    ],
)
def test_aspect_placement_follows_gstnvinfer(
    src: tuple[int, int],
    dst: tuple[int, int],
    symmetric: bool,
    size: tuple[int, int],
    offset: tuple[int, int],
) -> None:
    p = place(src, dst, keep_aspect=True, symmetric=symmetric)
    assert (p.size, (p.left, p.top)) == (size, offset)


@pytest.mark.parametrize("muxer_padding", [False, True])
@pytest.mark.parametrize("net_aspect", [False, True])
def test_boxes_map_back_through_muxer_and_network(muxer_padding: bool, net_aspect: bool) -> None:
    """A box drawn on the 1280x720 source, carried to the network by hand, comes back."""
    muxer = place((1280, 720), (640, 480), keep_aspect=muxer_padding, symmetric=False)
    network = place((640, 480), (960, 544), keep_aspect=net_aspect, symmetric=True)
    box = np.array([[100.0, 50.0, 400.0, 300.0]], np.float32)
    on_muxer = box * ([muxer.scale_x, muxer.scale_y] * 2) + ([muxer.left, muxer.top] * 2)
    on_net = on_muxer * ([network.scale_x, network.scale_y] * 2) + ([network.left, network.top] * 2)
    geometry = frame_geometry(muxer, network)
    assert (geometry.frame_width, geometry.frame_height) == (1280, 720)
    np.testing.assert_allclose(geometry.to_frame(on_net.astype(np.float32)), box, rtol=1e-5)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="image sizes must be positive"):
        place((0, 10), (8, 8), keep_aspect=True, symmetric=False)
