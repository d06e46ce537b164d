"""`file:` URIs read the way DeepStream's sources read them.

GStreamer's filesrc turns a URI into a path with GLib's `g_filename_from_uri`, which accepts the
RFC 8089 forms `file:///abs/clip.mp4`, `file:/abs/clip.mp4` (one slash, as NVIDIA's face-mask
sample configs write it) and `file://localhost/abs/clip.mp4`, and refuses everything else:
`file:` with no path, `file:clip.mp4` (not absolute), a host other than localhost (filesrc opens
local files only), a `#` anywhere, a malformed `%` escape and an escaped `/` (`%2F`).

deepstream-app adds one form of its own before GStreamer sees the URI: `file://clip.mp4` (no
third slash) is a path relative to the config's folder. `resolve_config_file_uri` applies that
rule; `file_uri_path` is for URIs that no config folder qualifies (ingest, YAML models).

This module imports nothing of pydantic, so ingest can use it cheaply.
"""

from __future__ import annotations

import os.path
import re
from pathlib import Path
from urllib.parse import unquote

SCHEME = "file:"
FORMS = "file:///abs/clip.mp4, file:/abs/clip.mp4 or file://localhost/abs/clip.mp4"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_ESCAPE = re.compile(r"%(?:2[Ff]|00)")  # '/' and NUL: GLib refuses both escaped


class FileUriError(ValueError):
    """A `file:` URI GStreamer would refuse; the message says why and what is accepted."""


def is_file_uri(uri: str) -> bool:
    """Whether `uri` uses the file scheme (scheme names are case-insensitive)."""
    return uri[: len(SCHEME)].lower() == SCHEME


def file_uri_path(uri: str) -> str:
    """The local path an absolute `file:` URI names, %-escapes decoded."""
    return _unescape(_absolute_part(uri))


def canonical_file_uri(uri: str) -> str:
    """The same URI as `file:///abs/...` (escapes kept as written); refuses what GLib refuses."""
    raw = _absolute_part(uri)
    _unescape(raw)  # validate the escapes now, not when the file is opened
    return "file://" + raw


def resolve_config_file_uri(uri: str, base: Path) -> str:
    """A config's `file:` URI as deepstream-app reads it, made canonical against `base`.

    `file://rel/clip.mp4` is relative to `base` (the config's folder), as deepstream-app's
    parser makes it; the absolute forms become `file:///abs/...`. A URI GLib would refuse is
    returned unchanged, for model validation to report on the `uri` line.
    """
    rest = uri[len(SCHEME) :]
    relative = rest[2:]
    is_relative = bool(relative) and not relative.startswith("/") and not _names_localhost(relative)
    if rest.startswith("//") and is_relative:
        return "file://" + os.path.normpath(base / relative)
    try:
        return canonical_file_uri(uri)
    except FileUriError:
        return uri


def _names_localhost(after_slashes: str) -> bool:
    host, slash, path = after_slashes.partition("/")
    return host.lower() == "localhost" and bool(slash) and bool(path)


def _absolute_part(uri: str) -> str:
    """The still-escaped absolute path of a `file:` URI, following g_filename_from_uri.

    Messages leave the URI out: callers show it (validation appends "found ...", ingest
    prefixes "source URI ...").
    """
    if not is_file_uri(uri):
        raise FileUriError(f"expected a file: URI ({FORMS})")
    rest = uri[len(SCHEME) :]
    if not rest:
        raise FileUriError(f"expected a path after 'file:', as in {FORMS}")
    if "#" in rest:
        raise FileUriError("a file URI may not contain '#' (GStreamer refuses it); write it as %23")
    if not rest.startswith("/"):
        raise FileUriError(
            f"not an absolute file URI: write {FORMS} (a deepstream-app config may also write "
            "file://clip.mp4 for a path relative to its folder)"
        )
    if not rest.startswith("//"):
        return rest  # file:/abs
    host, slash, path = rest[2:].partition("/")
    if host and host.lower() != "localhost":
        raise FileUriError(
            f"the URI names the host {host!r}, but only local files can be opened ({FORMS}); "
            "in a deepstream-app config, file://dir/clip.mp4 is relative to the config's folder"
        )
    if not slash:
        raise FileUriError(f"expected a path after 'file://{host}', as in {FORMS}")
    return "/" + path


def _unescape(raw: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise FileUriError("a '%' in the URI is not followed by two hex digits")
    if _FORBIDDEN_ESCAPE.search(raw):
        raise FileUriError("the URI escapes '/' or NUL (%2F, %00), which no file name holds")
    return unquote(raw, errors="surrogateescape")
