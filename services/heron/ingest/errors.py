"""What can go wrong with a source, split by what the stream worker does about it."""

from __future__ import annotations


class SourceUnavailableError(Exception):
    """Temporary: the source could not be opened, went away or stalled. Retried with backoff."""


class SourceFailedError(Exception):
    """Permanent: retrying cannot help (no video stream, a file that does not decode)."""
