"""The TAO spec path end to end: `heron train/evaluate/infer/export`, `python -m heron.training`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from heron.cli.main import app
from heron.core.config.diagnostics import ConfigError
from heron.core.config.tao import load_experiment_spec
from heron.training import JobRequest, TrainingError, TrainOptions, VocData, run_job
from heron.training.job_cli import main as job_main
from heron.training.settings import SettingsError
from heron.training.spec import from_experiment
from typer.testing import CliRunner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tao"

TINY_SPEC = """
random_seed: 42
dataset_config {
  data_sources { tfrecords_path: "split/*" image_directory_path: "kitti/images" }
  image_extension: "jpg"
  target_class_mapping { key: "with_mask" value: "mask" }
  target_class_mapping { key: "without_mask" value: "no-mask" }
  target_class_mapping { key: "mask_weared_incorrect" value: "no-mask" }
  validation_fold: 0
}
augmentation_config {
  preprocessing { output_image_width: 128 output_image_height: 64 output_image_channel: 3
                  min_bbox_width: 1.0 min_bbox_height: 1.0 }
  spatial_augmentation { hflip_probability: 0.5 zoom_min: 1.0 zoom_max: 1.0
                         translate_max_x: 4.0 translate_max_y: 4.0 }
  color_augmentation { hue_rotation_max: 25.0 saturation_shift_max: 0.2
                       contrast_scale_max: 0.1 contrast_center: 0.5 }
}
postprocessing_config {
  target_class_config { key: "mask" value { clustering_config {
    clustering_algorithm: DBSCAN coverage_threshold: 0.005 dbscan_eps: 0.2
    dbscan_min_samples: 1 minimum_bounding_box_height: 2 } } }
  target_class_config { key: "no-mask" value { clustering_config {
    clustering_algorithm: DBSCAN coverage_threshold: 0.005 dbscan_eps: 0.2
    dbscan_min_samples: 1 minimum_bounding_box_height: 2 } } }
}
model_config {
  ARCH_LINES
  objective_set { bbox { scale: 35.0 offset: 0.5 } cov { } }
}
evaluation_config {
  validation_period_during_training: 1
  first_validation_epoch: 1
  minimum_detection_ground_truth_overlap { key: "mask" value: 0.5 }
  minimum_detection_ground_truth_overlap { key: "no-mask" value: 0.5 }
  average_precision_mode: INTEGRATE
}
cost_function_config {
  target_classes { name: "mask" class_weight: 1.0 coverage_foreground_weight: 0.05
    objectives { name: "cov" initial_weight: 1.0 weight_target: 1.0 }
    objectives { name: "bbox" initial_weight: 10.0 weight_target: 10.0 } }
  target_classes { name: "no-mask" class_weight: 4.0 coverage_foreground_weight: 0.05
    objectives { name: "cov" initial_weight: 1.0 weight_target: 1.0 }
    objectives { name: "bbox" initial_weight: 10.0 weight_target: 10.0 } }
  enable_autoweighting: true
  max_objective_weight: 0.9999
  min_objective_weight: 0.0001
}
training_config {
  batch_size_per_gpu: 4
  num_epochs: 2
  learning_rate { soft_start_annealing_schedule {
    min_learning_rate: 1e-5 max_learning_rate: 1e-3 soft_start: 0.1 annealing: 0.7 } }
  regularizer { type: L1 weight: 3e-9 }
  optimizer { adam { epsilon: 1e-8 beta1: 0.9 beta2: 0.999 } }
  checkpoint_interval: 1
}
bbox_rasterizer_config {
  target_class_config { key: "mask" value { cov_center_x: 0.5 cov_center_y: 0.5
    cov_radius_x: 0.4 cov_radius_y: 0.4 bbox_min_radius: 1.0 } }
  target_class_config { key: "no-mask" value { cov_center_x: 0.5 cov_center_y: 0.5
    cov_radius_x: 0.4 cov_radius_y: 0.4 bbox_min_radius: 1.0 } }
  deadzone_radius: 0.4
}
"""
MOBILENET = 'arch: "mobilenet_v2"'


def write_spec(folder: Path, arch_lines: str = MOBILENET, name: str = "spec.txt") -> Path:
    path = folder / name
    path.write_text(TINY_SPEC.replace("ARCH_LINES", arch_lines))
    return path


def test_reference_spec_becomes_settings() -> None:
    for name in (
        "detectnet_v2_train_resnet18_facemask.txt",
        "detectnet_v2_train_resnet18_facemask.yaml",
    ):
        spec = load_experiment_spec(FIXTURES / name, check_paths=False)
        s = from_experiment(spec.message, FIXTURES)  # type: ignore[arg-type]
        assert s.classes == ("mask", "no-mask")
        assert (s.model.arch, s.model.num_layers, s.model.input_width) == ("resnet", 18, 960)
        assert s.model.freeze_blocks == (0, 1)
        assert s.raster["mask"].cov_radius_x == 0.4 and s.deadzone_radius == 0.4
        assert s.cost["no-mask"].class_weight == 4.0 and s.enable_autoweighting
        assert s.optim.batch_size == 16 and s.optim.max_learning_rate == 5e-4
        assert s.clustering["mask"].coverage_threshold == 0.005
        assert s.evaluation.average_precision_mode == "INTEGRATE"
        assert s.target_of("mask_weared_incorrect") == "no-mask"


@pytest.mark.shared_data
def test_cli_train_evaluate_export_infer(kitti16: Path, tmp_path: Path) -> None:
    spec = write_spec(kitti16, name="cli_spec.txt")
    results = tmp_path / "results"
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "train",
            "-e",
            str(spec),
            "-r",
            str(results),
            "-k",
            "s3cret",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "s3cret" not in out.output
    records = [json.loads(x) for x in (results / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and "mAP" in records[-1]
    model = results / "model.pt"

    report = tmp_path / "eval.json"
    out = runner.invoke(
        app, ["evaluate", "-m", str(model), "--data", str(kitti16 / "kitti"), "--json", str(report)]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(report.read_text())
    assert [c["name"] for c in data["classes"]] == ["mask", "no-mask"]
    assert report.with_suffix(".pr.png").is_file()
    # The per-detection curves sit beside the report, which stays small.
    assert "precision" not in data["classes"][0] and data["curves_file"] == "eval.curves.json"
    curves = json.loads(report.with_suffix(".curves.json").read_text())
    assert set(curves["mask"]) == {"precision", "recall", "scores"}

    onnx = tmp_path / "model.onnx"
    out = runner.invoke(
        app,
        [
            "export",
            "-m",
            str(model),
            "-o",
            str(onnx),
            "--check-images",
            str(kitti16 / "kitti"),
            "--max-check-images",
            "3",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "3 real images" in out.output and "max abs" in out.output

    pred = tmp_path / "pred"
    out = runner.invoke(
        app, ["infer", "-m", str(onnx), "-i", str(kitti16 / "kitti" / "images"), "-o", str(pred)]
    )
    assert out.exit_code == 0, out.output
    labels = sorted((pred / "labels").glob("*.txt"))
    assert len(labels) == 16 and len(list((pred / "images").glob("*.jpg"))) == 16
    for path in labels:
        for line in path.read_text().splitlines():
            assert len(line.split()) == 16  # KITTI + score


@pytest.mark.shared_data
@pytest.mark.usefixtures("root_logging_restored")
def test_python_m_heron_training_runs_the_whole_job(kitti16: Path, tmp_path: Path) -> None:
    spec = write_spec(kitti16, 'arch: "resnet" num_layers: 10', name="job_spec.txt")
    results = tmp_path / "job"
    assert job_main(["-e", str(spec), "-r", str(results), "--device", "cpu"]) == 0
    report = json.loads((results / "report.json").read_text())
    assert report["epochs"] == 2 and set(report["ap"]) == {"mask", "no-mask"}
    assert report["onnx_max_abs_diff"] < 1e-4
    for name in (
        "model.pt",
        "model.onnx",
        "metrics.jsonl",
        "pr_curves.png",
        "experiment_spec.txt",
        "checkpoints/last.pt",
    ):
        assert (results / name).is_file(), name


@pytest.mark.parametrize(
    ("arch_lines", "message"),
    [
        ('arch: "vgg" num_layers: 16', "[model_config.arch] expected resnet or mobilenet_v2"),
        ('arch: "resnet" num_layers: 50', "[model_config.num_layers] expected one of (10, 18, 34)"),
        ('arch: "resnet" num_layers: 10 pretrained_model_file: "no.pth"', "no.pth: [model_config"),
        ('arch: "resnet" num_layrs: 18', "num_layrs"),
        ('arch: "resnet" num_layers: 10 freeze_blocks: 9', "block 9 does not exist"),
        ('arch: "resnet" num_layers: 10 bogus', "bad_spec.txt:"),
    ],
)
def test_bad_specs_fail_with_a_clear_message(
    kitti16: Path, tmp_path: Path, arch_lines: str, message: str
) -> None:
    spec = write_spec(kitti16, arch_lines, name="bad_spec.txt")
    out = CliRunner().invoke(
        app,
        ["train", "-e", str(spec), "-r", str(tmp_path / "r"), "--device", "cpu", "--no-progress"],
    )
    assert out.exit_code == 1
    assert message in out.output
    assert "Traceback" not in out.output


def test_committed_spec_reproduces_the_committed_model() -> None:
    """models/facemask: the train spec gives exactly model.pt's settings (stride 8, mosaic, EMA)."""
    from dataclasses import replace

    from heron.training import checkpoint as ckpt

    folder = Path(__file__).resolve().parents[2] / "models" / "facemask"
    saved = ckpt.load(folder / "model.pt", with_training_state=False).settings
    path = folder / "detectnet_v2_train_mobilenet_v2_facemask.txt"
    spec = from_experiment(load_experiment_spec(path, check_paths=False).message, folder)  # type: ignore[arg-type]
    # the bench named the classes directly; the spec maps the KITTI labels to them
    assert spec.target_of("no-mask") == "No-Mask"
    assert replace(spec, class_mapping={}) == replace(saved, class_mapping={})
    assert spec.model.output_stride == 8 and spec.optim.ema_decay == 0.999
    assert spec.augment.mosaic_probability == 0.5


def _committed_spec_with(tmp_path: Path, augment: str, training: str) -> Path:
    folder = Path(__file__).resolve().parents[2] / "models" / "facemask"
    text = (folder / "detectnet_v2_train_mobilenet_v2_facemask.txt").read_text()
    # the spec without its extensions, then with the ones under test
    text = "\n".join(
        line for line in text.splitlines() if "mosaic_" not in line and "ema_decay" not in line
    )
    text = text.replace("    zoom_min: 0.8\n", f"    zoom_min: 0.8\n{augment}\n", 1)
    text = text.replace("training_config {\n", f"training_config {{\n{training}\n", 1)
    path = tmp_path / "spec.txt"
    path.write_text(text)
    return path


def test_heron_extensions_mosaic_and_ema_reach_the_settings(tmp_path: Path) -> None:
    path = _committed_spec_with(
        tmp_path,
        "mosaic_probability: 0.5 mosaic_min_scale: 0.6 mosaic_off_last_epochs: 15",
        "ema_decay: 0.998",
    )
    s = from_experiment(load_experiment_spec(path, check_paths=False).message, tmp_path)  # type: ignore[arg-type]
    assert (s.augment.mosaic_probability, s.augment.mosaic_min_scale) == (0.5, 0.6)
    assert s.augment.mosaic_off_last_epochs == 15 and s.optim.ema_decay == 0.998
    plain = _committed_spec_with(tmp_path, "", "")
    s = from_experiment(load_experiment_spec(plain, check_paths=False).message, tmp_path)  # type: ignore[arg-type]
    assert s.augment.mosaic_probability == 0.0 and s.optim.ema_decay == 0.0  # TAO's behaviour


@pytest.mark.parametrize(
    ("augment", "training", "message"),
    [
        ("mosaic_probability: 1.5", "", "mosaic_probability] expected a probability in [0, 1]"),
        ("mosaic_min_scale: 0", "", "mosaic_min_scale] expected a scale in (0, 1]"),
        ("", "ema_decay: 1.0", "ema_decay] expected a decay in [0, 1)"),
        ("mosaic_probabilty: 0.5", "", "spatial_augmentation.mosaic_probabilty] unknown field"),
    ],
)
def test_bad_extension_values_name_the_field(
    tmp_path: Path, augment: str, training: str, message: str
) -> None:
    path = _committed_spec_with(tmp_path, augment, training)
    with pytest.raises((SettingsError, ConfigError), match=re.escape(message)):
        from_experiment(load_experiment_spec(path, check_paths=False).message, tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rank", "level"), [("0", logging.INFO), ("3", logging.ERROR)])
def test_ranks_other_than_0_log_errors_only(
    monkeypatch: pytest.MonkeyPatch, rank: str, level: int
) -> None:
    # every rank reads the same spec: its warnings once, not once per GPU
    from heron.training.job import configure_logging

    logger = logging.getLogger("heron")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setenv("RANK", rank)
    configure_logging(rich_logs=False)
    assert logger.level == level and len(logger.handlers) == 1


# The Job's request: what the demo (and any other part) asks of training through
# `heron.training`, the public entry point.
SHORT = TrainOptions(device="cpu", progress=False, workers=2, validate=False, max_steps_per_epoch=2)
VOC_NAMES = {"with_mask": "with_mask", "without_mask": "without_mask"}  # as TINY_SPEC reads them


def voc16(shared_data: Path, folder: Path) -> Path:
    """The first 16 face-mask annotations with their images, as a VOC folder of their own."""
    source = shared_data / "facemask-kaggle"
    (folder / "annotations").mkdir(parents=True)
    (folder / "images").symlink_to(source / "images")
    for xml in sorted((source / "annotations").glob("*.xml"))[:16]:
        (folder / "annotations" / xml.name).symlink_to(xml)
    return folder


@pytest.mark.shared_data
def test_a_job_on_voc_data_converts_holds_out_trains_scores_and_exports(
    shared_data: Path, tmp_path: Path
) -> None:
    from heron.training.checkpoint import load
    from heron.training.data.check import image_size

    voc = VocData(voc16(shared_data, tmp_path / "voc"), VOC_NAMES, hold_out_percent=25.0)
    spec = write_spec(tmp_path)  # its dataset_config names folders that do not exist: unread
    request = JobRequest(spec, tmp_path / "job", SHORT, voc=voc, input_size=(160, 96), epochs=2)
    said: list[str] = []
    result = run_job(request, say=said.append)

    assert said == [
        "converting 16 VOC images to KITTI at 160x96",
        "training at 160x96: 12 images, 4 held out",
    ]
    assert result is not None and result.train.epochs == 2
    assert result.validation is not None and set(result.validation.ap) == {"mask", "no-mask"}
    images = sorted((tmp_path / "job" / "kitti" / "images").glob("*.jpg"))
    assert len(images) == 16 and image_size(images[0]) == (160, 96)
    report = json.loads((tmp_path / "job" / "report.json").read_text())
    assert report["epochs"] == 2 and report["mAP"] == result.validation.mean_ap
    assert result.export.onnx == tmp_path / "job" / "model.onnx" and result.export.real_images
    trained = load(result.train.final_model, with_training_state=False).settings
    assert trained == request.settings()
    assert (trained.model.input_width, trained.optim.num_epochs) == (160, 2)

    said.clear()  # a later Job in the same folder finds the images converted
    assert run_job(replace(request, epochs=3), say=said.append) is not None
    assert said == ["training at 160x96: 12 images, 4 held out"]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("budget_s", "epochs", "message"),
    [(25.0, 2, "the first epoch took 10 s: 2 in all"), (15.0, 1, "no time left in the budget")],
)
def test_a_budgeted_job_times_one_epoch_then_trains_as_many_as_fit(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    budget_s: float,
    epochs: int,
    message: str,
) -> None:
    from heron.training import job

    clock = iter([0.0, 10.0])  # the first epoch takes 10 s, whatever this machine's speed
    monkeypatch.setattr(job, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    voc = VocData(voc16(shared_data, tmp_path / "voc"), VOC_NAMES, hold_out_percent=25.0)
    request = JobRequest(
        write_spec(tmp_path),
        tmp_path / "job",
        SHORT,
        voc=voc,
        input_size=(160, 96),
        budget_s=budget_s,
    )
    said: list[str] = []
    result = run_job(request, say=said.append)

    assert result is not None and result.train.epochs == epochs
    assert message in said[-1]
    assert json.loads((tmp_path / "job" / "report.json").read_text())["epochs"] == epochs


def test_a_job_of_no_epochs_exports_the_network_as_built(tmp_path: Path) -> None:
    from heron.training.checkpoint import load

    spec = write_spec(tmp_path, 'arch: "resnet" num_layers: 10')  # no data anywhere: none read
    result = run_job(JobRequest(spec, tmp_path / "r", epochs=0, input_size=(160, 96)))

    assert result is not None and result.validation is None
    assert (result.train.epochs, result.train.steps) == (0, 0)
    assert result.export.onnx.is_file() and not result.export.real_images
    saved = load(tmp_path / "r" / "model.pt", with_training_state=False)
    assert saved.epoch == 0 and saved.settings.model.input_width == 160
    assert json.loads((tmp_path / "r" / "report.json").read_text())["mAP"] is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda spec: JobRequest(spec, spec.parent, epochs=-1), "epochs: expected 0 or more"),
        (lambda spec: JobRequest(spec, spec.parent, epochs=2, budget_s=60), "got both"),
        (lambda spec: JobRequest(spec, spec.parent, budget_s=0), "budget_s: expected seconds"),
        (lambda spec: VocData(spec.parent, {}, hold_out_percent=100), "hold_out_percent"),
    ],
)
def test_a_request_that_cannot_be_run_is_refused_when_made(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make(tmp_path / "spec.txt")


def test_a_request_names_what_its_spec_cannot_take(tmp_path: Path) -> None:
    request = JobRequest(write_spec(tmp_path), tmp_path / "r", input_size=(100, 64))
    with pytest.raises(TrainingError, match="output_image_width"):
        request.settings()
    with pytest.raises(TrainingError, match=r"gone\.txt"):
        JobRequest(tmp_path / "gone.txt", tmp_path / "r").settings()
