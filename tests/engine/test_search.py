"""`--method auto` and image roles end to end: the method is chosen on the select images
within the budget, the gate's advice names what to try next, and calibration refuses images
that play two roles (the CLI and the Job)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from heron.core.int8 import calib_cache
from heron.core.int8.calib_cache import Algorithm
from heron.engine import accuracy
from heron.engine.calibrate import calibrate
from heron.engine.cli import app
from heron.engine.model_info import load_onnx
from heron.engine.options import CalibrationOptions
from heron.engine.search import CANDIDATES, FALLBACK
from heron.engine.service import main
from typer.testing import CliRunner

pytestmark = pytest.mark.shared_data

# mAP drop of the S8S8 form per method; the U8S8 form loses half of it.
DROPS = {
    "percentile 99.999": 1.5,
    "percentile 99.99": 0.4,
    "entropy": 0.4,  # a tie with 99.99: the earlier candidate wins
    "percentile 99.9999": 2.0,
    "minmax": 3.0,
}


@pytest.fixture
def fake_ap(detector_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """FP32 scores 80; an INT8 model loses DROPS[its method] (its `heron.quantization` note
    names the method). Returns the data folders scored."""
    scored: list[Path] = []

    def evaluate(model: Path, data: Path) -> tuple[dict[str, float], float]:
        scored.append(data)
        if model == detector_onnx:
            return {"mask": 80.0}, 80.0
        note = next(p.value for p in load_onnx(model).metadata_props if "calibration" in p.value)
        variant, rest = note.split("; ", 1)
        drop = DROPS[rest.split(" calibration")[0]] / (1 if variant == "tensorrt" else 2)
        return {"mask": 80.0 - drop}, 80.0 - drop

    monkeypatch.setattr(accuracy, "evaluate_ap", evaluate)
    return scored


def test_auto_chooses_the_least_drop_on_the_select_images(
    detector_onnx: Path, calib_images: Path, fake_ap: list[Path], tmp_path: Path
) -> None:
    select = tmp_path / "select"
    options = CalibrationOptions(images=calib_images, batches=1, batch_size=4, select_data=select)
    lines: list[str] = []
    result = calibrate(
        detector_onnx, tmp_path / "out", options, on_candidate=lambda d, t, x: lines.append(x)
    )
    assert result.search is not None
    assert result.recipe.label == "percentile 99.99"
    assert [c.recipe for c in result.search.candidates] == list(CANDIDATES)
    drops = [c.worst_drop for c in result.search.candidates]
    assert drops == pytest.approx([DROPS[c.label] for c in CANDIDATES])
    assert set(fake_ap) == {select}  # chosen on the select images only
    assert lines[1] == "percentile 99.99: mAP drop S8S8 0.40, U8S8 0.20"
    assert calib_cache.read(result.cache).algorithm is Algorithm.LEGACY  # percentile's header
    summary = result.search.to_dict()
    assert summary["chosen"] == "percentile 99.99" and summary["skipped"] == []


def test_the_budget_stops_the_search_after_the_first_candidate(
    detector_onnx: Path, calib_images: Path, fake_ap: list[Path], tmp_path: Path
) -> None:
    options = CalibrationOptions(
        images=calib_images,
        batches=1,
        batch_size=4,
        select_data=tmp_path / "select",
        search_budget_s=1e-3,
    )
    result = calibrate(detector_onnx, tmp_path / "out", options)
    assert result.search is not None
    assert [c.recipe for c in result.search.candidates] == [CANDIDATES[0]]
    assert result.search.skipped == CANDIDATES[1:]
    assert result.recipe == CANDIDATES[0]


def test_without_select_images_auto_takes_the_fallback(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    options = CalibrationOptions(images=calib_images, batches=1, batch_size=4)
    result = calibrate(detector_onnx, tmp_path / "out", options)
    assert result.search is None and result.recipe == FALLBACK


def _kitti(folder: Path, images: list[Path]) -> Path:
    """A KITTI folder of links to `images`, each with an empty label file."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for image in images:
        (folder / "images" / image.name).symlink_to(image.resolve())
        (folder / "labels" / f"{image.stem}.txt").write_text("")
    return folder


runner = CliRunner()


def test_calibrate_refuses_gate_images_it_calibrates_on(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    gate = _kitti(tmp_path / "gate", sorted(calib_images.iterdir())[2:5])
    args = ["calibrate", "-m", str(detector_onnx), "--images", str(calib_images)]
    args += ["--batches", "1", "--batch-size", "4", "-o", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--eval-data", str(gate)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"calibration images (--images {calib_images}, 4 images)" in output
    assert f"gate images (--eval-data {gate}, 3 images) share 2 images" in output
    assert "no image may play two roles" in output
    assert not (tmp_path / "out").exists()  # refused before calibrating


def test_select_and_gate_images_must_be_apart(
    detector_onnx: Path, calib_images: Path, shared_data: Path, tmp_path: Path
) -> None:
    held_out = sorted((shared_data / "facemask-kaggle" / "images").glob("*.jpg"))[-4:]
    select = _kitti(tmp_path / "select", held_out[:3])
    gate = _kitti(tmp_path / "gate", held_out[2:])
    args = ["calibrate", "-m", str(detector_onnx), "--images", str(calib_images)]
    args += ["--batch-size", "4", "-o", str(tmp_path / "out"), "--select-data", str(select)]
    result = runner.invoke(app, [*args, "--eval-data", str(gate)])
    assert result.exit_code == 1
    assert "select images (--select-data" in result.output
    assert "share 1 images" in " ".join(result.output.split())


def test_the_job_refuses_overlapping_roles(
    detector_onnx: Path, calib_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = _kitti(tmp_path / "gate", sorted(calib_images.iterdir())[:2])
    settings = tmp_path / "engine.yaml"
    settings.write_text(
        f"onnx: {detector_onnx}\nrepository: {tmp_path / 'repo'}\nprecision: int8\n"
        f"work_dir: {tmp_path / 'work'}\neval_data: {gate}\n"
        f"calibration:\n  images: {calib_images}\n  batch_size: 4\n"
    )
    assert main(["--config", str(settings)]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not out["ok"] and "share 2 images" in out["error"]
    assert "calibration images" in out["error"] and "gate images" in out["error"]


def test_a_failing_gate_says_what_to_try_next(
    detector_onnx: Path, calib_images: Path, shared_data: Path, tmp_path: Path, fake_ap: list[Path]
) -> None:
    """A fixed method that fails: the advice is the search on select images; the JSON report
    names every image set's role with its count and names hash."""
    held_out = sorted((shared_data / "facemask-kaggle" / "images").glob("*.jpg"))[-3:]
    gate = _kitti(tmp_path / "gate", held_out)
    report = tmp_path / "report.json"
    args = ["calibrate", "-m", str(detector_onnx), "--images", str(calib_images)]
    args += ["--batches", "1", "--batch-size", "4", "-o", str(tmp_path / "out")]
    args += ["--method", "minmax", "--eval-data", str(gate), "--json", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "INT8 loses more than 1.00 points of mAP" in output
    assert "Try next: --method auto --select-data KITTI_DIR" in output
    assert "--keep-fp auto" in output
    sets = json.loads(report.read_text())["image_sets"]
    assert [(s["role"], s["count"]) for s in sets] == [("calibration", 4), ("gate", 3)]
    assert all(len(s["names_sha256"]) == 64 for s in sets)
