"""The tiler: every source's frame scaled into its tile of a rows x columns grid, as
nvmultistreamtiler does.

Source id i goes to tile i (row i // columns, column i % columns); sources with ids beyond the
grid are not shown (deepstream-app warns about that at config time). Each frame keeps its aspect
ratio and is centred in its tile with black bars. A tile keeps the last frame its source sent
until a new one comes, so a batch that lacks a source does not blank that tile.

Order: tile first, then draw (see docs/overlay.md). nvdsosd also runs after the tiler, so
border-width and text-size are output pixels whatever the source resolution, and boxes are
mapped into tile coordinates with `Tile.to_tile`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heron.core.config.models import TiledDisplay
from heron.core.framestore import Letterbox

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Tile:
    """Where one source's frame landed on the canvas."""

    source_id: int
    x: int
    y: int
    width: int
    height: int
    placement: Letterbox  # frame pixels -> tile pixels (offsets centre the picture)

    def view(self, canvas: Image) -> Image:
        return canvas[self.y : self.y + self.height, self.x : self.x + self.width]

    def to_tile(self, boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Boxes (N x 4) in frame pixels -> pixels of this tile's view."""
        return self.placement.to_output(boxes)


class Tiler:
    def __init__(self, rows: int, columns: int, width: int, height: int) -> None:
        for name, value in (("rows", rows), ("columns", columns)):
            if value < 1:
                raise ValueError(f"[tiled-display] {name}: expected >= 1, got {value}")
        if width // columns < 1 or height // rows < 1:
            raise ValueError(
                f"[tiled-display]: a {width}x{height} canvas cannot hold {rows}x{columns} tiles"
            )
        self.rows, self.columns = rows, columns
        self.width, self.height = width, height
        self.tile_w, self.tile_h = width // columns, height // rows
        self.canvas: Image = np.zeros((height, width, 3), np.uint8)

    @classmethod
    def from_config(cls, tiled: TiledDisplay) -> Tiler:
        return cls(tiled.rows, tiled.columns, tiled.width, tiled.height)

    @property
    def tiles(self) -> int:
        return self.rows * self.columns

    def cell(self, source_id: int) -> tuple[int, int] | None:
        """(x, y) of the tile of `source_id`, or None when the grid has no tile for it."""
        if not 0 <= source_id < self.tiles:
            return None
        row, col = divmod(source_id, self.columns)
        return col * self.tile_w, row * self.tile_h

    def place(self, source_id: int, frame: Image) -> Tile | None:
        """Scale `frame` into its tile of the canvas; None when the source has no tile."""
        cell = self.cell(source_id)
        if cell is None:
            return None
        h, w = frame.shape[:2]
        fit = Letterbox.fit(w, h, self.tile_w, self.tile_h, padding=True)
        centred = Letterbox(
            w, h, self.tile_w, self.tile_h, fit.content_w, fit.content_h,
            (self.tile_w - fit.content_w) // 2, (self.tile_h - fit.content_h) // 2,
        )  # fmt: skip
        tile = Tile(source_id, cell[0], cell[1], self.tile_w, self.tile_h, centred)
        view = tile.view(self.canvas)
        view[...] = 0  # the bars around the centred picture
        x, y = centred.offset_x, centred.offset_y
        region = view[y : y + fit.content_h, x : x + fit.content_w]
        if (fit.content_w, fit.content_h) == (w, h):
            np.copyto(region, frame)
        else:
            import cv2

            # Bilinear, as nvmultistreamtiler scales: INTER_AREA was 4-5x slower here at the
            # usual 1.5x reductions (9 ms vs 2 ms a 960x544 frame), too much for the output.
            cv2.resize(frame, (fit.content_w, fit.content_h), dst=region,
                       interpolation=cv2.INTER_LINEAR)  # fmt: skip
        return tile

    def reset(self) -> None:
        self.canvas[...] = 0
