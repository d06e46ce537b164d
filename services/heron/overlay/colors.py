"""DeepStream colours (RGBA floats in 0..1, `r;g;b;a`) as OpenCV BGR bytes, and the per-class
box colours of the primary GIE (`bbox-border-colorN`, `bbox-bg-colorN`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from heron.core.config.models import Gie, Osd

BGR = tuple[int, int, int]
RGBA = tuple[float, float, float, float]

# nvdsosd's box colour when neither the GIE nor [osd] names one: red.
DEFAULT_BORDER: RGBA = (1.0, 0.0, 0.0, 1.0)


def to_bgr(rgba: RGBA | tuple[float, ...]) -> BGR:
    """(r, g, b, a) floats in 0..1 -> (b, g, r) bytes; alpha is read separately (`alpha`)."""
    r, g, b = (min(max(float(c), 0.0), 1.0) for c in rgba[:3])
    return (round(b * 255), round(g * 255), round(r * 255))


def alpha(rgba: RGBA | tuple[float, ...]) -> float:
    return min(max(float(rgba[3]), 0.0), 1.0) if len(rgba) > 3 else 1.0


@dataclass(frozen=True)
class ClassColors:
    """Box border and optional fill colour per class id."""

    border_default: RGBA
    borders: dict[int, RGBA] = field(default_factory=dict)
    fill_default: RGBA | None = None
    fills: dict[int, RGBA] = field(default_factory=dict)

    @classmethod
    def from_config(cls, gie: Gie | None, osd: Osd) -> ClassColors:
        """GIE colours win; then [osd] border-color; then nvdsosd's red."""
        fallback = osd.border_color or DEFAULT_BORDER
        if gie is None:
            return cls(fallback)
        return cls(
            border_default=gie.bbox_border_color or fallback,
            borders=dict(gie.bbox_border_colors),
            fill_default=gie.bbox_bg_color,
            fills=dict(gie.bbox_bg_colors),
        )

    def border(self, class_id: int) -> RGBA:
        return self.borders.get(class_id, self.border_default)

    def fill(self, class_id: int) -> RGBA | None:
        return self.fills.get(class_id, self.fill_default)
