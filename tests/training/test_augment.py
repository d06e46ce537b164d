"""Device augmentation: boxes move with the pixels; colour changes keep the geometry."""

from __future__ import annotations

import pytest
import torch
from heron.training import mosaic as mosaics
from heron.training.augment import augment, filter_boxes
from heron.training.settings import AugmentSettings


def white_box_image() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.zeros(1, 3, 64, 128, dtype=torch.uint8)
    images[:, :, 16:40, 20:60] = 255
    return images, torch.tensor([[[20.0, 16.0, 60.0, 40.0]]]), torch.tensor([[0]])


@pytest.mark.parametrize(
    "aug",
    [
        AugmentSettings(hflip_probability=1.0),
        AugmentSettings(vflip_probability=1.0, hflip_probability=0.0),
        AugmentSettings(hflip_probability=0.0, zoom_min=1.3, zoom_max=1.3),
        AugmentSettings(hflip_probability=0.0, zoom_min=0.7, zoom_max=0.7),
        AugmentSettings(hflip_probability=0.5, translate_max_x=20, translate_max_y=10),
    ],
)
def test_boxes_follow_the_pixels(aug: AugmentSettings) -> None:
    images, boxes, labels = white_box_image()
    gen = torch.Generator().manual_seed(3)
    x, moved, kept = augment(images, boxes, labels, aug=aug, gen=gen)
    assert kept[0, 0] == 0
    x1, y1, x2, y2 = moved[0, 0].round().int().tolist()
    inside = x[0, 0, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
    assert inside.min() > 0.9  # the white patch is where the box says
    outside = x[0, 0].clone()
    outside[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = 0
    assert outside.max() < 0.1


def test_colour_jitter_keeps_range_and_shape() -> None:
    images = torch.randint(0, 256, (4, 3, 32, 48), dtype=torch.uint8)
    aug = AugmentSettings(
        hflip_probability=0.0,
        hue_rotation_max=25,
        saturation_shift_max=0.2,
        contrast_scale_max=0.1,
        color_shift_stddev=0.02,
    )
    boxes = torch.tensor([[[1.0, 1.0, 20.0, 20.0]]] * 4)
    x, moved, _ = augment(
        images,
        boxes,
        torch.zeros(4, 1, dtype=torch.long),
        aug=aug,
        gen=torch.Generator().manual_seed(0),
    )
    assert x.shape == (4, 3, 32, 48) and x.min() >= 0 and x.max() <= 1
    assert not torch.allclose(x, images.float() / 255)
    torch.testing.assert_close(moved, boxes)


def test_grey_pixels_stay_grey_under_hue_rotation() -> None:
    images = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    aug = AugmentSettings(hflip_probability=0.0, hue_rotation_max=90)
    x, _, _ = augment(
        images,
        torch.zeros(2, 1, 4),
        torch.full((2, 1), -1),
        aug=aug,
        gen=torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(x, torch.full_like(x, 128 / 255))


def test_small_and_outside_boxes_are_dropped() -> None:
    boxes = torch.tensor(
        [[[-30.0, 5.0, -2.0, 20.0], [10.0, 10.0, 10.5, 30.0], [120.0, 10.0, 140.0, 30.0]]]
    )
    clipped, labels = filter_boxes(
        boxes, torch.tensor([[0, 1, 1]]), width=128, height=64, min_w=2.0, min_h=2.0
    )
    assert labels.tolist() == [[-1, -1, 1]]
    assert clipped[0, 2].tolist() == [120.0, 10.0, 128.0, 30.0]


def mosaic(
    x: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    *,
    probability: float,
    min_scale: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mosaics alone (no warp): planned, boxes moved, pixels sampled."""
    n, _, h, w = x.shape
    plan = mosaics.plan(
        n, (w, h), probability=probability, min_scale=min_scale, gen=gen, device=x.device
    )
    moved, kept = mosaics.move_boxes(boxes, labels, plan, (w, h))
    return mosaics.sample(x, plan, None), moved, kept


def assert_boxes_show_their_sources(
    out: torch.Tensor, moved: torch.Tensor, kept: torch.Tensor, *, levels: int = 4
) -> int:
    """Slot q of output i holds the box of image i + q: its pixels have that image's grey."""
    checked = 0
    n, _, h, w = out.shape
    slots = moved.shape[1]
    for i in range(n):
        for slot in range(slots):
            if kept[i, slot] < 0:
                continue
            x1, y1, x2, y2 = moved[i, slot].tolist()
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            patch = out[i, 0, int(cy1) + 2 : int(cy2) - 2, int(cx1) + 2 : int(cx2) - 2]
            if patch.numel() == 0:
                continue
            level = 40 * ((i + slot) % levels + 1) / 255
            assert torch.allclose(patch.median(), torch.tensor(level), atol=0.02), (i, slot)
            checked += 1
    return checked


def coloured_tiles(n: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image i: black with one patch of grey level 40·(i+1) where its single box is."""
    images = torch.zeros(n, 3, 96, 160, dtype=torch.uint8)
    boxes = torch.zeros(n, 1, 4)
    for i in range(n):
        x1, y1 = 10 + 8 * i, 12 + 4 * i
        images[i, :, y1 : y1 + 30, x1 : x1 + 40] = 40 * (i + 1)
        boxes[i, 0] = torch.tensor([x1, y1, x1 + 40, y1 + 30])
    return images, boxes, torch.zeros(n, 1, dtype=torch.long)


def test_mosaic_boxes_follow_their_tiles() -> None:
    images, boxes, labels = coloured_tiles()
    x = images.float() / 255
    gen = torch.Generator().manual_seed(5)
    out, moved, kept = mosaic(x, boxes, labels, probability=1.0, min_scale=0.5, gen=gen)
    assert out.shape == x.shape and moved.shape == (4, 4, 4) and kept.shape == (4, 4)
    checked = assert_boxes_show_their_sources(out, moved, kept)
    assert checked >= 6


def test_mosaic_drops_boxes_its_seams_cut_to_slivers() -> None:
    images, boxes, labels = coloured_tiles(2)
    boxes[:] = torch.tensor([0.0, 0.0, 160.0, 96.0])  # whole-image boxes
    gen = torch.Generator().manual_seed(1)
    _, moved, kept = mosaic(
        images.float() / 255, boxes, labels, probability=1.0, min_scale=1.0, gen=gen
    )
    # at scale 1 a tile shows the part of its image beyond the meeting point: whole-image boxes
    # survive only where that part keeps a quarter of the area
    for i in range(2):
        for slot in range(4):
            x1, y1, x2, y2 = moved[i, slot].tolist()
            area = (min(x2, 160) - max(x1, 0)) * (min(y2, 96) - max(y1, 0))
            assert (kept[i, slot] >= 0) == (area >= 0.25 * 160 * 96)


def test_mosaic_probability_zero_changes_nothing() -> None:
    images, boxes, labels = coloured_tiles()
    x = images.float() / 255
    gen = torch.Generator().manual_seed(0)
    out, moved, kept = mosaic(x, boxes, labels, probability=0.0, min_scale=0.5, gen=gen)
    assert torch.allclose(out, x, atol=1e-5)  # resampled at its own pixel centres
    assert torch.equal(moved[:, :1], boxes) and torch.equal(kept[:, :1], labels)
    assert (kept[:, 1:] == -1).all()


def test_augment_makes_mosaics_only_when_on() -> None:
    images, boxes, labels = coloured_tiles()
    aug = AugmentSettings(hflip_probability=0.0, mosaic_probability=1.0)
    gen = torch.Generator().manual_seed(0)
    _, moved, _ = augment(images, boxes, labels, aug=aug, gen=gen)
    assert moved.shape[1] == 4
    _, moved, _ = augment(images, boxes, labels, aug=aug, gen=gen, mosaic_on=False)
    assert moved.shape[1] == 1


def test_mosaic_and_warp_in_one_resampling_keep_boxes_on_their_pixels() -> None:
    images, boxes, labels = coloured_tiles()
    aug = AugmentSettings(
        hflip_probability=1.0, zoom_min=0.8, zoom_max=0.8, translate_max_x=8, mosaic_probability=1.0
    )
    gen = torch.Generator().manual_seed(7)
    out, moved, kept = augment(images, boxes, labels, aug=aug, gen=gen)
    assert assert_boxes_show_their_sources(out, moved, kept) >= 6
    # nothing outside the boxes but black: no tile bleeds into another's quadrant
    mask = torch.ones_like(out[:, 0], dtype=torch.bool)
    for i in range(4):
        for x1, y1, x2, y2 in moved[i].round().int().tolist():  # dropped slivers too
            mask[i, max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = False
    assert out[:, 0][mask].max() < 0.1
