"""Shared by the data tests: where the committed tiny data sets live."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
"""tests/fixtures/datasets: one tiny data set per source format (see its README.md)."""
