"""Malformed TAO specs: each is refused with an error naming file:line, the field and what is
wrong. Every case edits a reference fixture, so the rest of the file stays valid and the error
is the one the edit caused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError, Severity
from heron.core.config.tao import load_any_spec, load_dataset_convert_spec, load_experiment_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tao"
TRAIN = "detectnet_v2_train_resnet18_facemask.txt"
TRAIN_YAML = "detectnet_v2_train_resnet18_facemask.yaml"
CONVERT = "detectnet_v2_dataset_convert_facemask.txt"


@dataclass(frozen=True)
class Case:
    fixture: str
    old: str  # replaced once by `new`
    new: str
    at: str | None  # the error's line: the first line containing this text; None = line 0
    message: str  # a regex the error's message must match
    field: str = ""
    below: int = 0  # the error is this many lines below `at`


CASES = {
    "unknown field names the closest": Case(
        TRAIN,
        "num_layers: 18",
        "num_layer: 18",
        "num_layer:",
        r"^unknown field 'num_layer' in model_config; did you mean 'num_layers'\?$",
        "model_config.num_layer",
    ),
    "field of another TAO network": Case(
        TRAIN,
        "num_layers: 18",
        'pruned_model_path: "p.hdf5"',
        "pruned_model_path",
        r"unknown field 'pruned_model_path'.*pretrained_model_file pointing at it and load_graph",
    ),
    "misspelt section": Case(
        TRAIN,
        "training_config {",
        "trainig_config {",
        "trainig_config",
        r"^unknown field 'trainig_config' at the top level; did you mean 'training_config'\?$",
    ),
    "bad enum value": Case(
        TRAIN,
        "clustering_algorithm: DBSCAN",
        "clustering_algorithm: DBSCANN",
        "DBSCANN",
        r"^'DBSCANN' is not one of DBSCAN, NMS, HYBRID \(did you mean 'DBSCAN'\?\)$",
        'postprocessing_config.target_class_config["mask"].clustering_config.clustering_algorithm',
    ),
    "string for an integer": Case(
        TRAIN,
        "batch_size_per_gpu: 16",
        'batch_size_per_gpu: "16"',
        "batch_size_per_gpu",
        r'^expected an integer, got "16"$',
        "training_config.batch_size_per_gpu",
    ),
    "fraction for an integer": Case(
        TRAIN,
        "num_layers: 18",
        "num_layers: 18.5",
        "num_layers",
        r"^expected an integer, got 18.5$",
    ),
    "negative unsigned": Case(
        TRAIN,
        "output_image_width: 960",
        "output_image_width: -960",
        "output_image_width",
        r"out of range: -960",
    ),
    "not a boolean": Case(
        TRAIN,
        "use_batch_norm: true",
        "use_batch_norm: yes",
        "use_batch_norm",
        r'Expected "true" or "false"',
    ),
    "unterminated brace": Case(
        TRAIN,
        "    weight: 3e-09\n  }\n",
        "    weight: 3e-09\n",
        "regularizer {",
        r"^block 'regularizer' opened here is never closed: expected '}'",
        "training_config.regularizer",
    ),
    "stray closing brace": Case(
        TRAIN,
        "  deadzone_radius: 0.4\n}\n",
        "  deadzone_radius: 0.4\n}\n}\n",
        "  deadzone_radius: 0.4",
        r"^unexpected '}': there is no open block to close here$",
        below=2,
    ),
    "missing colon": Case(
        TRAIN, "random_seed: 42", "random_seed 42", "random_seed", r'Expected ":"'
    ),
    "field given twice": Case(
        TRAIN,
        "num_layers: 18",
        "num_layers: 18\n  num_layers: 34",
        "num_layers: 34",
        r'should not have multiple "num_layers" fields',
    ),
    "both validation choices": Case(
        TRAIN,
        "  validation_fold: 0\n",
        '  validation_fold: 0\n  validation_data_source { tfrecords_path: "v/*" }\n',
        "validation_data_source",
        r"^validation_data_source and validation_fold exclude each other",
    ),
    "negative learning rate": Case(
        TRAIN,
        "min_learning_rate: 5e-06",
        "min_learning_rate: -5e-06",
        "min_learning_rate",
        r"^min_learning_rate must be > 0, got -5e-06$",
        "training_config.learning_rate.soft_start_annealing_schedule.min_learning_rate",
    ),
    "min learning rate above max": Case(
        TRAIN,
        "min_learning_rate: 5e-06",
        "min_learning_rate: 5e-03",
        "min_learning_rate",
        r"^min_learning_rate \(0.005\) exceeds max_learning_rate \(0.0005\)$",
    ),
    "soft_start outside [0, 1]": Case(
        TRAIN,
        "soft_start: 0.1",
        "soft_start: 1.5",
        "soft_start:",
        r"^soft_start must be in \[0, 1\], got 1.5$",
    ),
    "missing learning rate schedule": Case(
        TRAIN,
        "  learning_rate {\n    soft_start_annealing_schedule {\n      min_learning_rate: 5e-06\n"
        "      max_learning_rate: 5e-04\n      soft_start: 0.1\n      annealing: 0.7\n    }\n  }\n",
        "",
        "training_config {",
        r"^learning_rate needs soft_start_annealing_schedule",
        "training_config.learning_rate",
    ),
    "batch size zero": Case(
        TRAIN,
        "batch_size_per_gpu: 16",
        "batch_size_per_gpu: 0",
        "batch_size_per_gpu",
        r"^batch_size_per_gpu must be > 0, got 0$",
    ),
    "input width not a multiple of 16": Case(
        TRAIN,
        "output_image_width: 960",
        "output_image_width: 950",
        "output_image_width",
        r"^output_image_width must be a multiple of 16 \(the output stride\), got 950$",
    ),
    "channels neither 1 nor 3": Case(
        TRAIN,
        "output_image_channel: 3",
        "output_image_channel: 2",
        "output_image_channel",
        r"^output_image_channel must be 1 or 3, got 2$",
    ),
    "zero coverage radius": Case(
        TRAIN,
        "cov_radius_x: 0.4",
        "cov_radius_x: 0.0",
        "cov_radius_x",
        r"^cov_radius_x must be in \(0, 1\], got 0$",
        'bbox_rasterizer_config.target_class_config["mask"].cov_radius_x',
    ),
    "cost class not a mapped target": Case(
        TRAIN,
        'name: "no-mask"',
        'name: "nomask"',
        '"nomask"',
        r"^class 'nomask' is not a target of dataset_config.target_class_mapping "
        r"\(targets: mask, no-mask\)$",
    ),
    "target class without rasterizer config": Case(
        TRAIN,
        '    key: "no-mask"\n    value {\n      cov_center_x',
        '    key: "nomask"\n    value {\n      cov_center_x',
        "bbox_rasterizer_config {",
        r"^target class 'no-mask' has no rasterizer config$",
        below=1,
    ),
    "no validation data": Case(
        TRAIN,
        "  validation_fold: 0\n",
        "",
        "dataset_config {",
        r"^validation data is not set: give validation_fold",
        "dataset_config",
    ),
    "overlap above 1": Case(
        TRAIN,
        '    key: "mask"\n    value: 0.5',
        '    key: "mask"\n    value: 1.5',
        "value: 1.5",
        r"^overlap \(IoU\) for 'mask' must be in \(0, 1\], got 1.5$",
        'evaluation_config.minimum_detection_ground_truth_overlap["mask"]',
    ),
    "load_graph without a model": Case(
        TRAIN,
        '  pretrained_model_file: "models/pretrained/resnet18.hdf5"\n',
        "  load_graph: true\n",
        "load_graph",
        r"^load_graph: true needs pretrained_model_file",
    ),
    "resnet depth TAO does not have": Case(
        TRAIN,
        "num_layers: 18",
        "num_layers: 20",
        "num_layers",
        r"^num_layers for resnet must be one of 10, 18, 34, 50, 101, got 20$",
    ),
    "random partitioning into 3": Case(
        CONVERT,
        "num_partitions: 2",
        "num_partitions: 3",
        "num_partitions",
        r"^random partitioning makes 2 partitions \(train, val\), got 3$",
    ),
    "kitti extension without its dot": Case(
        CONVERT,
        'image_extension: ".jpg"',
        'image_extension: "jpg"',
        "image_extension",
        r"^image_extension needs its dot: '.jpg'$",
    ),
    "yaml bad indentation": Case(
        TRAIN_YAML,
        "    output_image_height: 544",
        "     output_image_height: 544",
        "output_image_height",
        r"^YAML syntax error: mapping values are not allowed here$",
    ),
    "yaml tab indentation": Case(
        TRAIN_YAML,
        "  num_layers: 18",
        "\tnum_layers: 18",
        "num_layers",
        r"^YAML syntax error: .*found character '\\t' that cannot start any token$",
    ),
    "yaml unknown field": Case(
        TRAIN_YAML,
        "  num_layers: 18",
        "  num_layer: 18",
        "num_layer:",
        r"^unknown field 'num_layer' in model_config; did you mean 'num_layers'\?$",
    ),
    "yaml bad enum": Case(
        TRAIN_YAML,
        "backend_floatx: FLOAT32",
        "backend_floatx: FLOAT64",
        "FLOAT64",
        r"^backend_floatx: 'FLOAT64' is not one of FLOAT32, FLOAT16, INVALID",
    ),
    "yaml wrong type": Case(
        TRAIN_YAML,
        "batch_size_per_gpu: 16",
        "batch_size_per_gpu: sixteen",
        "sixteen",
        r"^batch_size_per_gpu: expected a non-negative integer, got str 'sixteen'$",
    ),
    "yaml map entry without key/value": Case(
        TRAIN_YAML,
        "{key: with_mask, value: mask}",
        "{key: with_mask, valu: mask}",
        "valu:",
        r"^target_class_mapping: a list entry of a map needs exactly `key:` and `value:`$",
    ),
    "yaml negative learning rate": Case(
        TRAIN_YAML,
        "min_learning_rate: 5e-06",
        "min_learning_rate: -5e-06",
        "min_learning_rate",
        r"^min_learning_rate must be > 0, got -5e-06$",
    ),
    "yaml scalar where a section goes": Case(
        TRAIN_YAML,
        "  preprocessing:\n",
        "  preprocessing: 960\n  preprocessin:\n",
        "preprocessing: 960",
        r"^expected a mapping of Preprocessing fields, got int$",
        "augmentation_config.preprocessing",
    ),
}


def _expected_line(text: str, case: Case) -> int:
    if case.at is None:
        return 0
    return text.count("\n", 0, text.index(case.at)) + 1 + case.below


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_malformed_spec_is_refused_with_file_line_and_reason(tmp_path: Path, case: Case) -> None:
    original = (FIXTURES / case.fixture).read_text()
    assert case.old in original, "the case no longer matches its fixture"
    text = original.replace(case.old, case.new, 1)
    path = tmp_path / f"spec{Path(case.fixture).suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_any_spec(path, check_paths=False)
    errors = [d for d in caught.value.diagnostics if d.severity is Severity.ERROR]
    line = _expected_line(text, case)
    matching = [d for d in errors if re.search(case.message, d.message)]
    assert matching, f"no error matches {case.message!r}: {[str(d) for d in errors]}"
    found = matching[0]
    assert (found.file, found.line) == (path, line), str(found)
    assert str(found).startswith(f"{path}:{line}: error: " if line else f"{path}: error: ")
    if case.field:
        assert found.field == case.field
    assert str(found) in str(caught.value)  # the exception's text lists it too


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            "model_confg { }\n",
            ".txt",
            r"not a TAO DetectNet_v2 spec: .*; found model_confg "
            r"\(did you mean 'model_config'\?\)$",
        ),
        ("", ".yaml", r"not a TAO DetectNet_v2 spec: .*found no sections \(an empty file, or one"),
        (b"\xff\xfe\x00model", ".txt", r"^not UTF-8 text \(byte 0\)"),
        (None, ".txt", r"^spec file not found$"),
    ],
    ids=["neither kind", "empty", "binary", "missing file"],
)
def test_files_that_are_no_spec_at_all(
    tmp_path: Path, content: str | bytes | None, suffix: str, message: str
) -> None:
    path = tmp_path / f"spec{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_any_spec(path)
    (error,) = caught.value.diagnostics
    assert error.file == path
    assert re.search(message, error.message), error.message


def test_every_unknown_field_is_reported_at_once(tmp_path: Path) -> None:
    text = (FIXTURES / TRAIN).read_text()
    text = text.replace("num_layers: 18", "num_layer: 18").replace("zoom_min:", "zoom_mn:")
    path = tmp_path / "spec.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_any_spec(path, check_paths=False)
    assert [d.field for d in caught.value.diagnostics] == [
        "augmentation_config.spatial_augmentation.zoom_mn",
        "model_config.num_layer",
    ]


def test_semantic_findings_are_all_reported_together(tmp_path: Path) -> None:
    text = (FIXTURES / TRAIN).read_text()
    text = text.replace("batch_size_per_gpu: 16", "batch_size_per_gpu: 0")
    text = text.replace("output_image_height: 544", "output_image_height: 540")
    path = tmp_path / "spec.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_any_spec(path, check_paths=False)
    assert sorted(d.field for d in caught.value.diagnostics) == [
        "augmentation_config.preprocessing.output_image_height",
        "training_config.batch_size_per_gpu",
    ]


@pytest.mark.parametrize("section", ["bbox_rasterizer_config", "cost_function_config"])
def test_a_missing_section_is_an_error_about_the_whole_file(tmp_path: Path, section: str) -> None:
    text = (FIXTURES / TRAIN).read_text()
    start = text.index(f"\n{section} {{")
    end = text.find("\n}\n", start) + 3
    path = tmp_path / "spec.txt"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(ConfigError) as caught:
        load_any_spec(path, check_paths=False)
    first = caught.value.diagnostics[0]
    assert (first.line, first.field) == (0, section)
    assert (
        str(first)
        == f"{path}: error: [{section}] section {section} is required to train DetectNet_v2"
    )


def test_loading_the_other_kind_of_spec_says_so() -> None:
    with pytest.raises(
        ConfigError, match=r":1: error: this is a dataset-convert spec, not an experiment"
    ):
        load_experiment_spec(FIXTURES / CONVERT)
    with pytest.raises(
        ConfigError, match=r"this is an experiment spec, not a dataset-convert spec"
    ):
        load_dataset_convert_spec(FIXTURES / TRAIN_YAML)


def test_a_capitalised_dataset_class_is_a_warning_about_tao_not_heron(tmp_path: Path) -> None:
    # Heron matches labels to keys whatever their case; TAO lower-cases labels, not keys.
    text = (FIXTURES / TRAIN).read_text().replace('key: "with_mask"', 'key: "With_Mask"', 1)
    path = tmp_path / "spec.txt"
    path.write_text(text)
    loaded = load_any_spec(path, check_paths=False)
    (warning,) = [d for d in loaded.diagnostics if "capitals" in d.message]
    assert warning.severity is Severity.WARNING
    key_line = text.splitlines().index('    key: "With_Mask"') + 1
    assert warning.line in (key_line, key_line + 1)  # the entry's key or value line
    assert "under TAO it matches no label" in warning.message
    assert "Heron matches labels to keys whatever their case" in warning.message
