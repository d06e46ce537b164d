"""`heron infer --threshold`: only detections scoring at least it are written and drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from heron.cli.main import app
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "facemask" / "model.onnx"  # the committed detector
IMAGES = REPO / "tests" / "fixtures" / "datasets" / "voc" / "images"

runner = CliRunner()


def scores(folder: Path) -> list[float]:
    return [
        float(line.split()[15])
        for path in sorted((folder / "labels").glob("*.txt"))
        for line in path.read_text().splitlines()
    ]


def test_the_threshold_keeps_only_detections_scoring_at_least_it(tmp_path: Path) -> None:
    images = tmp_path / "images"
    shutil.copytree(IMAGES, images)
    every = tmp_path / "all"
    result = runner.invoke(app, ["infer", "-m", str(MODEL), "-i", str(images), "-o", str(every)])
    assert result.exit_code == 0, result.output
    default = scores(every)
    out = tmp_path / "kept"
    kept = runner.invoke(
        app, ["infer", "-m", str(MODEL), "-i", str(images), "-o", str(out), "--threshold", "0.3"]
    )
    assert kept.exit_code == 0, kept.output
    assert "scoring at least 0.3" in " ".join(kept.output.split())
    assert all(s >= 0.3 for s in scores(out))
    assert len(scores(out)) == sum(s >= 0.3 for s in default)
    assert min(default) < 0.3  # the spec's own thresholds keep low scores: what --threshold is for
    assert len(list((out / "images").glob("*.jpg"))) == 2


@pytest.mark.parametrize("value", ["-0.1", "1.5", "high"])
def test_a_malformed_threshold_is_refused(tmp_path: Path, value: str) -> None:
    args = ["infer", "-m", str(MODEL), "-i", str(IMAGES), "-o", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--threshold", value])
    assert result.exit_code == 2 and "--threshold" in result.output
    assert not (tmp_path / "o").exists()
