"""Where each label goes: nvdsosd's place, or, where that would hide a label, the next free one.

nvdsosd draws a label above its box's top-left corner; in a crowded frame those labels cover one
another. Here each label, in the objects' order, takes the first of its candidate places that
lies wholly in the image and overlaps no label placed before it:

1. above the box, at its left edge (nvdsosd's place: a label alone keeps it where it fits);
2. inside the box, at its top-left corner;
3. below the box, at its left edge;
4. to 6. the same three, aligned with the box's right edge;
7. and 8. inside the box at its bottom edge, left then right;
9. above the box one label higher; 10. below it one label lower.

Every place is shifted sideways to stay in the image (as nvdsosd's label is). When no place is
free, the label takes the one that overlaps the labels already placed least (moved into the
image when it is not; on a tie, one that needed no moving, then the earlier). The result depends
only on the boxes, the label sizes and their order: a frame is always labelled the same way.

Placed labels are kept in a grid of label-sized cells, so a candidate is checked against its
neighbours only: ~50 labels cost well under a millisecond (docs/overlay.md has the figures).
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in image pixels (x2, y2 exclusive)
Size = tuple[int, int]  # a label's width and height, its background included
Place = tuple[int, int]  # a label's top-left corner


def place_labels(
    boxes: Sequence[Box], sizes: Sequence[Size], width: int, height: int
) -> list[Place]:
    """The top-left corner of each box's label in a `width` x `height` image (see above)."""
    if len(boxes) != len(sizes):
        raise ValueError(f"labels: {len(boxes)} boxes but {len(sizes)} label sizes")
    if not boxes:
        return []
    if min(min(size) for size in sizes) < 1:
        raise ValueError(f"labels: sizes must be at least 1x1 pixels, got {list(sizes)}")
    grid = _Grid(max(w for w, _ in sizes), max(h for _, h in sizes))
    places: list[Place] = []
    for box, size in zip(boxes, sizes, strict=True):
        place = _place(box, size, (width, height), grid)
        grid.add(*place, *size)
        places.append(place)
    return places


def _candidates(box: Box, w: int, h: int) -> list[Place]:
    x1, y1, x2, y2 = box
    left, right = x1, x2 - w
    above, below = y1 - h, y2
    return [
        (left, above), (left, y1), (left, below),
        (right, above), (right, y1), (right, below),
        (left, y2 - h), (right, y2 - h),
        (left, above - h), (left, below + h),
    ]  # fmt: skip


def _place(box: Box, size: Size, image: Size, grid: _Grid) -> Place:
    w, h = size
    max_x, max_y = max(image[0] - w, 0), max(image[1] - h, 0)
    candidates = _candidates(box, w, h)
    for cx, cy in candidates:  # the first free place that needs no moving into the image
        if 0 <= cy <= max_y:
            x = 0 if cx < 0 else max_x if cx > max_x else cx
            if grid.free(x, cy, w, h):
                return x, cy
    # None is free: least overlap first; on a tie, one that was not moved, then the order.
    scored = []
    for i, (cx, cy) in enumerate(candidates):
        x, y = min(max(cx, 0), max_x), min(max(cy, 0), max_y)
        scored.append((grid.overlap(x, y, w, h), y != cy, i, x, y))
    _, _, _, x, y = min(scored)
    return x, y


class _Grid:
    """Placed labels, each filed under the cell its top-left corner lies in. Cells are as large
    as the largest label, so a label that meets a rectangle lies in the cells the rectangle
    touches or in the row and column of cells before them: each is looked at once."""

    def __init__(self, cell_w: int, cell_h: int) -> None:
        self.cell_w, self.cell_h = cell_w, cell_h
        self.cells: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}  # x, y, x2, y2

    def add(self, x: int, y: int, w: int, h: int) -> None:
        self.cells.setdefault((x // self.cell_w, y // self.cell_h), []).append((x, y, x + w, y + h))

    def _near(self, x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
        cw, ch, cells = self.cell_w, self.cell_h, self.cells
        found: list[tuple[int, int, int, int]] = []
        for cy in range(y // ch - 1, (y + h - 1) // ch + 1):
            for cx in range(x // cw - 1, (x + w - 1) // cw + 1):
                found.extend(cells.get((cx, cy), ()))
        return found

    def free(self, x: int, y: int, w: int, h: int) -> bool:
        """No placed label shares a pixel with the rectangle."""
        x2, y2 = x + w, y + h
        for px, py, px2, py2 in self._near(x, y, w, h):
            if px < x2 and x < px2 and py < y2 and y < py2:
                return False
        return True

    def overlap(self, x: int, y: int, w: int, h: int) -> int:
        """Pixels the rectangle shares with the placed labels, summed over them."""
        x2, y2 = x + w, y + h
        total = 0
        for px, py, px2, py2 in self._near(x, y, w, h):
            ow, oh = min(x2, px2) - max(x, px), min(y2, py2) - max(y, py)
            if ow > 0 and oh > 0:
                total += ow * oh
        return total
