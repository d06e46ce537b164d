"""[osd] `font` names (Pango font families in DeepStream) mapped to OpenCV's Hershey fonts.

OpenCV draws only its built-in Hershey vector fonts, so a family becomes the closest Hershey
face: serif families -> COMPLEX (serifed strokes), sans families -> SIMPLEX / DUPLEX (bold),
monospace -> PLAIN, script/cursive -> SCRIPT_SIMPLEX; "Italic" anywhere in the name adds
FONT_ITALIC. An unknown name falls back to SIMPLEX with a warning. Sizes are points, as in
Pango: `text-size` pt = text-size * 4/3 pixels tall (96 dpi), which OpenCV turns into a scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Names as DeepStream configs write them (fontconfig families and their aliases), lower case.
FAMILIES: dict[str, str] = {
    "serif": "FONT_HERSHEY_COMPLEX",
    "times": "FONT_HERSHEY_COMPLEX",
    "times new roman": "FONT_HERSHEY_COMPLEX",
    "dejavu serif": "FONT_HERSHEY_COMPLEX",
    "liberation serif": "FONT_HERSHEY_COMPLEX",
    "sans": "FONT_HERSHEY_SIMPLEX",
    "sans-serif": "FONT_HERSHEY_SIMPLEX",
    "arial": "FONT_HERSHEY_SIMPLEX",
    "helvetica": "FONT_HERSHEY_SIMPLEX",
    "dejavu sans": "FONT_HERSHEY_SIMPLEX",
    "liberation sans": "FONT_HERSHEY_SIMPLEX",
    "ubuntu": "FONT_HERSHEY_SIMPLEX",
    "sans bold": "FONT_HERSHEY_DUPLEX",
    "arial bold": "FONT_HERSHEY_DUPLEX",
    "mono": "FONT_HERSHEY_PLAIN",
    "monospace": "FONT_HERSHEY_PLAIN",
    "courier": "FONT_HERSHEY_PLAIN",
    "dejavu sans mono": "FONT_HERSHEY_PLAIN",
    "script": "FONT_HERSHEY_SCRIPT_SIMPLEX",
    "cursive": "FONT_HERSHEY_SCRIPT_SIMPLEX",
}
FALLBACK = "FONT_HERSHEY_SIMPLEX"


@dataclass(frozen=True)
class HersheyFont:
    face: int  # cv2.FONT_HERSHEY_* | cv2.FONT_ITALIC
    name: str  # the cv2 constant's name, for logs and docs

    def scale(self, points: int, thickness: int) -> float:
        """The fontScale whose capital letters are `points` pt (at 96 dpi) tall."""
        import cv2

        pixels = max(1, round(points * 4 / 3))
        return float(cv2.getFontScaleFromHeight(self.face, pixels, thickness))


def hershey_font(name: str) -> HersheyFont:
    """The Hershey face for a Pango family name like "Serif", "Sans Bold Italic", "Arial"."""
    import cv2

    key = " ".join(name.lower().split())
    italic = "italic" in key or "oblique" in key
    key = key.replace("italic", "").replace("oblique", "").strip()
    const = (FAMILIES.get(key) or FAMILIES.get(key.split(" ")[0])) if key else None
    if const is None:
        log.warning(
            "[osd] font %r is not one OpenCV can draw; using %s (known: %s)",
            name,
            FALLBACK,
            ", ".join(sorted(FAMILIES)),
        )
        const = FALLBACK
    face = int(getattr(cv2, const)) | (int(cv2.FONT_ITALIC) if italic else 0)
    return HersheyFont(face, const + (" | FONT_ITALIC" if italic else ""))
