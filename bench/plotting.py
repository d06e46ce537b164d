"""matplotlib for the bench scripts whose figure is optional: headless, or None where missing.

The GPU machine's Python has torch but not always matplotlib; a benchmark there should still
print its table and write its JSON, and the figure can be drawn later from the JSON.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")


def pyplot_or_none(png: Path) -> Any | None:
    """`matplotlib.pyplot` on the Agg backend, or None (and a log line naming `png`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib missing: no %s", png.name)
        return None
    return plt
