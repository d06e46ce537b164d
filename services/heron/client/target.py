"""The address a client dials, checked before any channel is opened."""

from __future__ import annotations

import re

# A host name, an IPv4 address or a bracketed IPv6 address, then the port.
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})$")
_MAX_PORT = 65535


def check_target(target: str) -> str:
    """`target` as given when it is HOST:PORT (or unix:PATH); a ValueError saying why not."""
    if target.startswith(("unix:", "unix-abstract:")) and len(target.partition(":")[2]) > 0:
        return target
    match = _HOST_PORT.match(target)
    if match is None:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:50051) or unix:PATH, got {target!r}")
    port = int(match["port"])
    if not 1 <= port <= _MAX_PORT:
        raise ValueError(f"the port must be 1 to {_MAX_PORT}, got {port} in {target!r}")
    return target
