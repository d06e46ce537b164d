"""Fixtures of the chart tests: the real helm (tests/support/helm.py), the chart itself and
Prometheus's promtool.

Each skips with the reason on a machine without it: helm comes from `make setup`
(scripts/install-helm.sh), the chart from charts/heron, promtool from Debian's prometheus
package (`make apt`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.helm import INSTALL_HINT, helm_binary

CHART_DIR = REPO / "charts" / "heron"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary tests.support.helm runs; skips when there is none."""
    binary = helm_binary()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    return binary


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    """charts/heron; skips while it does not exist."""
    if not (CHART_DIR / "Chart.yaml").is_file():
        pytest.skip(f"{CHART_DIR} has no Chart.yaml yet")
    return CHART_DIR


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's promtool; skips when it is not installed."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed: apt-get install --no-install-recommends prometheus")
    return found
