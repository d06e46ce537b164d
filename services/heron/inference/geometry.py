"""Where a frame's pixels went on their way into the network, so boxes can come back.

Two scalings happen before inference: the muxer's (frame → muxer output, stretched or letterboxed
when streammux `enable-padding=1`) and nvinfer's (muxer output → network input, stretched or
letterboxed with `maintain-aspect-ratio=1`, centred with `symmetric-padding=1`). Each is a
`Placement`; composed, they give the `FrameGeometry` heron.postprocess maps boxes back with.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.postprocess import FrameGeometry


@dataclass(frozen=True)
class Placement:
    """An image of `src` size drawn into a `dst` canvas at `(left, top)`, scaled to `size`."""

    src: tuple[int, int]  # width, height
    dst: tuple[int, int]
    size: tuple[int, int]  # the scaled image's width, height inside dst
    left: int = 0
    top: int = 0

    @property
    def scale_x(self) -> float:
        return self.size[0] / self.src[0]

    @property
    def scale_y(self) -> float:
        return self.size[1] / self.src[1]

    @property
    def identity(self) -> bool:
        return self.src == self.dst == self.size and self.left == self.top == 0


def place(
    src: tuple[int, int], dst: tuple[int, int], *, keep_aspect: bool, symmetric: bool
) -> Placement:
    """Where `src` lands in `dst`: stretched, or aspect kept as gstnvinfer computes it."""
    (sw, sh), (dw, dh) = src, dst
    if sw < 1 or sh < 1 or dw < 1 or dh < 1:
        raise ValueError(f"image sizes must be positive, got source {src} and target {dst}")
    if not keep_aspect:
        return Placement(src, dst, dst)
    # gstnvinfer: fill the width if the scaled height fits, else the height; sizes truncated.
    height_at_full_width = dw * sh / sw
    if height_at_full_width <= dh:
        size = (dw, max(1, int(height_at_full_width)))
    else:
        size = (max(1, int(dh * sw / sh)), dh)
    if not symmetric:
        return Placement(src, dst, size)
    return Placement(src, dst, size, (dw - size[0]) // 2, (dh - size[1]) // 2)


def frame_geometry(muxer: Placement | None, network: Placement) -> FrameGeometry:
    """Network-input pixels → original frame pixels through both placements."""
    sx, sy, ox, oy = network.scale_x, network.scale_y, float(network.left), float(network.top)
    frame = network.src
    if muxer is not None:
        # x_net = (x_frame * m_sx + m_left) * n_sx + n_left
        ox += muxer.left * sx
        oy += muxer.top * sy
        sx *= muxer.scale_x
        sy *= muxer.scale_y
        frame = muxer.src
    return FrameGeometry(frame[0], frame[1], sx, sy, ox, oy)
