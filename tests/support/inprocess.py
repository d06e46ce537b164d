"""Running a service inside the test process."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def no_forced_exit(code: int) -> None:
    """Stands in for `os._exit` in a service embedded in pytest: the shutdown watchdog of a
    service whose work outlived its grace period must fail that test, not end the whole run."""
    log.error("the service's shutdown watchdog fired (exit code %d) inside the test process", code)
