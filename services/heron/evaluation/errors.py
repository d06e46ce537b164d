"""The one error every data parser raises (the KITTI reader here and heron.training.data's
converters): it names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

from heron.core.config.diagnostics import Diagnostic, Severity


class DataFormatError(ValueError):
    """A data or label file is malformed.

    `line` is 1-based; 0 when the problem concerns the file as a whole (or the format, like
    JSON paths or .mat records, has no line to point at: `field` then says where).
    """

    def __init__(self, file: Path | str, line: int, message: str, field: str = "") -> None:
        self.file = Path(file)
        self.line = line
        self.message = message
        self.field = field
        super().__init__(str(self.to_diagnostic()))

    def to_diagnostic(self) -> Diagnostic:
        """The same finding as `heron data check` and `heron config check` print it."""
        return Diagnostic(Severity.ERROR, self.file, self.line, self.message, self.field)
