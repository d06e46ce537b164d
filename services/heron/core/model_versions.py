"""What a SetModelVersionsRequest must look like before any model is asked: one check, used by
the control service (to refuse before the command travels) and by every inference instance
(which also checks a stored routing at start the same way).

A version is a folder name of a Triton-layout model repository (`<repo>/<model>/<version>/`):
letters, digits, '_', '.', '-', so a version can never name a path outside the model's folder.
"""

from __future__ import annotations

import re

from heron.v1.control_pb2 import SetModelVersionsRequest

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class VersionRequestError(ValueError):
    """A request that is wrong whatever the model; `field` is the request's field path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def check_version(field: str, version: str) -> str:
    if not _VERSION.match(version):
        raise VersionRequestError(
            field,
            f"expected a version: 1-64 letters, digits, '_', '.', '-' (a folder of the model "
            f"repository, e.g. '2'), got {version!r}",
        )
    return version


def check_request(request: SetModelVersionsRequest) -> None:
    """Raise VersionRequestError naming the first field that is wrong. `default_version` may
    be "" (the config's model); every stream id and every stream's version must be given."""
    if request.default_version:
        check_version("default_version", request.default_version)
    for stream_id in sorted(request.stream_versions):
        where = f"stream_versions[{stream_id!r}]"
        if not stream_id.strip():
            raise VersionRequestError(where, "expected a stream id, got an empty one")
        version = request.stream_versions[stream_id]
        if not version:
            raise VersionRequestError(
                where,
                "expected a version, got an empty one (leave the stream out to run the "
                "default version)",
            )
        check_version(where, version)
