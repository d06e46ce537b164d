"""Where a source's media comes from, turned into what `av.open` needs.

Accepted forms (the same for every source kind, so a test stand-in goes through the same code):

| form | opens |
|---|---|
| `file:///abs/clip.mp4`, `file:/abs/clip.mp4`, `/abs/clip.mp4`, `clip.mp4` | a local file |
| `http://...`, `https://...` | a remote file, read with a socket timeout |
| `rtsp://...`, `rtsps://...` | an RTSP camera (live) |
| `/dev/videoN`, `v4l2:///dev/videoN` | a V4L2 camera (live) |
| `lavfi://testsrc2=size=640x480:rate=30,realtime` (or `lavfi:...`) | an FFmpeg lavfi graph |

A lavfi graph with `realtime` is live; without it, it behaves like a file. `file:` URIs are read
as GStreamer reads them (`heron.core.config.file_uri`; `file://localhost/abs/clip.mp4` too): a
host other than localhost, a relative path or a '#' is refused rather than silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from heron.core.config.file_uri import FileUriError, file_uri_path

SCHEMES = ("file://", "http://", "https://", "rtsp://", "rtsps://", "v4l2://", "lavfi://")
_V4L2_DEVICE = re.compile(r"^/dev/video\d+$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class MediaKind(StrEnum):
    FILE = "file"
    HTTP = "http"
    RTSP = "rtsp"
    V4L2 = "v4l2"
    LAVFI = "lavfi"


class UriError(ValueError):
    """A source URI that cannot be opened: names the URI, what was expected and what came."""


@dataclass(frozen=True)
class MediaTarget:
    """Arguments for one `av.open`: the URL, the demuxer to force and its options."""

    kind: MediaKind
    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        """A live source never ends: end-of-stream means it went away."""
        if self.kind is MediaKind.LAVFI:
            return "realtime" in self.url
        return self.kind in (MediaKind.RTSP, MediaKind.V4L2)


def parse_uri(uri: str, *, check_exists: bool = True) -> MediaTarget:
    """Classify `uri`; a local file or device must exist when `check_exists`."""
    text = uri.strip()
    if not text:
        raise UriError(
            "empty source URI: expected file://, http(s)://, rtsp://, lavfi:// or a path"
        )
    lower = text.lower()
    if lower.startswith("lavfi:"):
        graph = text[len("lavfi://") :] if lower.startswith("lavfi://") else text[len("lavfi:") :]
        if not graph:
            raise UriError(f"source URI {uri!r}: expected a filter graph after 'lavfi://'")
        return MediaTarget(MediaKind.LAVFI, graph, format="lavfi")
    if lower.startswith(("rtsp://", "rtsps://")):
        if not urlsplit(text).hostname:
            raise UriError(f"source URI {uri!r}: expected a host, as in rtsp://camera:554/stream")
        return MediaTarget(MediaKind.RTSP, text)
    if lower.startswith(("http://", "https://")):
        if not urlsplit(text).hostname:
            raise UriError(f"source URI {uri!r}: expected a host, as in https://host/clip.mp4")
        return MediaTarget(MediaKind.HTTP, text)
    if lower.startswith("v4l2://"):
        return _device(urlsplit(text).path, uri, check_exists)
    if lower.startswith("file:"):
        try:
            path = file_uri_path(text)
        except FileUriError as e:
            raise UriError(f"source URI {uri!r}: {e}") from None
        return _file(Path(path), uri, check_exists)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UriError(
            f"source URI {uri!r}: unsupported scheme {scheme!r}; expected one of "
            f"{', '.join(SCHEMES)}, /dev/videoN or a file path"
        )
    if _V4L2_DEVICE.match(text):
        return _device(text, uri, check_exists)
    if _WINDOWS_DRIVE.match(text) or ":" not in text.split("/", 1)[0]:
        return _file(Path(text), uri, check_exists)
    raise UriError(
        f"source URI {uri!r}: expected one of {', '.join(SCHEMES)}, /dev/videoN or a file path"
    )


def _file(path: Path, uri: str, check_exists: bool) -> MediaTarget:
    if check_exists and not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise UriError(f"source URI {uri!r}: file {str(path)!r} {what}")
    return MediaTarget(MediaKind.FILE, str(path))


def _device(path: str, uri: str, check_exists: bool) -> MediaTarget:
    if not _V4L2_DEVICE.match(path):
        raise UriError(f"source URI {uri!r}: expected a V4L2 device /dev/videoN, got {path!r}")
    if check_exists and not Path(path).exists():
        raise UriError(
            f"source URI {uri!r}: V4L2 device {path} does not exist (is the camera plugged in "
            "and the device mounted into the container?)"
        )
    return MediaTarget(MediaKind.V4L2, path, format="v4l2")
