"""Which URIs a remote AddSource may start: never a file the operator did not offer.

Ingest opens whatever URI a command names, with the pod's rights; a config's sources were
written by the operator, but AddSource comes from any gRPC client. So a run-time source that
reads local files is checked here, at the API's edge, before any stage hears of it:

- a file (`file://...`, or a bare path) must lie inside one of `pipeline_api.media_roots`,
  checked first on the path as written (absolute, no `..`) and then on the path with every
  symlink followed (a link inside a root that points outside is refused). With no media roots
  (the default) every run-time file source is refused. What goes on to ingest is the resolved
  path, so a link swapped after this check cannot redirect the source.
- a lavfi graph may use only filters that read no file (`movie=`, `drawtext=textfile=` and
  the like would read one): the generators and plain transforms of `LAVFI_FILTERS`.
- rtsp://, http(s):// and /dev/videoN read no local file: they pass unchanged.

A path outside every root is refused before the file system is asked about it, so the answer
never tells a client whether a file outside the roots exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from heron.core.grpc import InvalidArgumentError
from heron.core.media_uri import MediaKind, UriError, parse_uri

FIELD = "source.uri"
SETTING = "pipeline_api.media_roots (HERON_PIPELINE_API__MEDIA_ROOTS)"

# Filters a run-time lavfi graph may name: sources that generate pictures and transforms
# without a file option. Left out on purpose: movie/amovie (open a file), drawtext (textfile=,
# fontfile=), life and cellauto (filename=), subtitles, lut3d, sendcmd, frei0r, ladspa, ...
LAVFI_FILTERS = frozenset(
    {
        "allrgb",
        "allyuv",
        "color",
        "colorchart",
        "colorspectrum",
        "gradients",
        "mandelbrot",
        "nullsrc",
        "pal100bars",
        "pal75bars",
        "rgbtestsrc",
        "smptebars",
        "smptehdbars",
        "testsrc",
        "testsrc2",
        "yuvtestsrc",
        "zoneplate",
        "boxblur",
        "crop",
        "drawbox",
        "drawgrid",
        "eq",
        "format",
        "fps",
        "hflip",
        "hue",
        "negate",
        "noise",
        "null",
        "pad",
        "realtime",
        "rotate",
        "scale",
        "setpts",
        "settb",
        "transpose",
        "trim",
        "vflip",
    }
)
_LABELS = re.compile(r"^(\s*\[[^\]]*\])*\s*")
_FILTER_NAME = re.compile(r"[a-z0-9_]+")


def check_added_uri(uri: str, media_roots: Sequence[Path]) -> str:
    """The URI to hand ingest for a run-time source: a file as `file://` of its resolved path,
    anything else as given. Raises InvalidArgumentError (field source.uri) for a URI that could
    read a file outside `media_roots`."""
    try:
        target = parse_uri(uri, check_exists=False)
    except UriError:
        return uri  # ingest refuses it with the same words as a config's URI
    if target.kind is MediaKind.FILE:
        return "file://" + quote(str(_inside_roots(target.url, media_roots)))
    if target.kind is MediaKind.LAVFI:
        _check_graph(target.url)
    return uri


def _inside_roots(path: str, roots: Sequence[Path]) -> Path:
    """`path` with its symlinks followed, when it and its target lie inside a root."""
    if not roots:
        raise InvalidArgumentError(
            FIELD,
            f"file sources cannot be added at run time unless the operator allows a media "
            f"directory: set {SETTING} to the directories they may come from (rtsp://, "
            "http(s)://, /dev/videoN and config sources need no setting)",
        )
    listed = ", ".join(str(r) for r in roots)
    written = PurePosixPath(path)
    if not written.is_absolute():
        raise InvalidArgumentError(
            FIELD, f"expected an absolute path inside a media root ({listed}), got {path!r}"
        )
    if ".." in written.parts:
        raise InvalidArgumentError(FIELD, f"'..' is not allowed in a file path, got {path!r}")
    # Lexically first: a path outside every root is refused without looking at the disk.
    if not any(_under(Path(path), root) for root in _spellings(roots)):
        raise InvalidArgumentError(FIELD, f"{path!r} is not inside a media root ({listed})")
    try:
        resolved = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise InvalidArgumentError(FIELD, f"file {path!r} does not exist") from None
    except (OSError, RuntimeError) as e:  # a symlink loop, a directory we may not read
        raise InvalidArgumentError(FIELD, f"cannot resolve {path!r}: {e}") from None
    if not any(_under(resolved, root.resolve()) for root in roots):
        raise InvalidArgumentError(
            FIELD, f"{path!r} leads outside the media roots ({listed}) through a symlink"
        )
    if not resolved.is_file():
        raise InvalidArgumentError(FIELD, f"{path!r} is not a regular file")
    return resolved


def _spellings(roots: Sequence[Path]) -> list[Path]:
    """Each root as configured and with its own symlinks followed: a client may name either."""
    return [Path(os.path.normpath(r)) for r in roots] + [r.resolve() for r in roots]


def _under(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _check_graph(graph: str) -> None:
    """Every filter of a lavfi graph in LAVFI_FILTERS.

    The graph is split at every ',' and ';', quoted or not: that finds every filter FFmpeg
    would see (and possibly more, refused alike), and a name written with quotes or escapes
    is not a plain name and is refused too.
    """
    for part in re.split(r"[,;]", graph):
        token = _LABELS.sub("", part)
        if not token.strip():
            continue  # no filter here (FFmpeg would refuse an empty one)
        name = re.split(r"[=\[]", token, maxsplit=1)[0].strip().split("@", 1)[0]
        if not _FILTER_NAME.fullmatch(name) or name not in LAVFI_FILTERS:
            raise InvalidArgumentError(
                FIELD,
                f"lavfi filter {name!r} is not allowed at run time (it may read files); "
                f"allowed: {', '.join(sorted(LAVFI_FILTERS))}",
            )
