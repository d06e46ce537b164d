"""Fixtures of the chart tests: the real helm (tests/support/helm.py) and the chart itself.

Both skip with the reason on a machine without them: helm comes from `make setup`
(scripts/install-helm.sh), the chart from charts/heron.
"""

from __future__ import annotations

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
