"""The tiler puts source i in tile i, keeps each frame's aspect and maps boxes into the tile."""

from __future__ import annotations

import numpy as np
import pytest
from heron.overlay.tiler import Tiler


def solid(w: int, h: int, colour: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((h, w, 3), np.uint8)
    image[...] = colour
    return image


@pytest.mark.parametrize(
    ("rows", "cols", "source", "cell"),
    [(1, 2, 0, (0, 0)), (1, 2, 1, (320, 0)), (2, 2, 2, (0, 120)), (2, 2, 3, (320, 120)),
     (2, 3, 4, (213, 120))],
)  # fmt: skip
def test_source_id_goes_to_its_tile(
    rows: int, cols: int, source: int, cell: tuple[int, int]
) -> None:
    assert Tiler(rows, cols, 640, 240).cell(source) == cell


def test_sources_beyond_the_grid_have_no_tile() -> None:
    tiler = Tiler(1, 2, 640, 240)
    assert tiler.cell(2) is None
    assert tiler.place(2, solid(320, 240, (1, 2, 3))) is None
    assert not tiler.canvas.any()


def test_frames_keep_their_aspect_centred_with_bars() -> None:
    tiler = Tiler(1, 2, 640, 240)  # tiles of 320x240
    tile = tiler.place(1, solid(640, 240, (0, 0, 255)))  # 8:3 -> 320x120, centred vertically
    assert tile is not None
    red = np.all(tiler.canvas == (0, 0, 255), axis=2)
    ys, xs = np.nonzero(red)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (320, 639, 60, 179)
    assert not tiler.canvas[:, :320].any()  # tile 0 untouched
    box = tile.to_tile([[0, 0, 640, 240], [320, 120, 640, 240]])
    assert box.tolist() == [[0, 60, 320, 180], [160, 120, 320, 180]]


def test_a_tile_keeps_its_last_frame_until_replaced() -> None:
    tiler = Tiler(1, 2, 64, 32)
    tiler.place(0, solid(32, 32, (9, 9, 9)))
    tiler.place(1, solid(32, 32, (5, 5, 5)))
    tiler.place(1, solid(32, 32, (7, 7, 7)))
    assert tuple(tiler.canvas[16, 10]) == (9, 9, 9)
    assert tuple(tiler.canvas[16, 40]) == (7, 7, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 2, 640, 240), "rows: expected >= 1, got 0"),
     ((1, 0, 640, 240), "columns: expected >= 1, got 0"),
     ((4, 4, 3, 3), "a 3x3 canvas cannot hold 4x4 tiles")],
)  # fmt: skip
def test_bad_grids_are_refused(args: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tiler(*args)
