"""The ll-config-file (DeepStream NvMOT YAML) and the ll-lib-file → tracker mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.config.models import Tracker as TrackerGroup
from heron.core.config.tracker_config import read_ll_config
from heron.tracker import TrackerKind, kind_from_library, tracker_spec

DEEPSTREAM_IOU = """\
%YAML:1.0
BaseConfig:
  minDetectorConfidence: 0.2
TargetManagement:
  maxTargetsPerStream: 99
  minIouDiff4NewTarget: 0.4
  probationAge: 2
  maxShadowTrackingAge: 12
  earlyTerminationAge: 1
DataAssociator:
  dataAssociatorType: 0
  associationMatcherType: 0
  checkClassMatch: 0
  minMatchingScore4Iou: 0.25
  matchingScoreWeight4Iou: 0.6
"""


def write(tmp_path: Path, text: str, name: str = "tracker.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_deepstream_keys_are_read(tmp_path: Path) -> None:
    # DeepStream's files start with a "%YAML:1.0" directive that PyYAML accepts.
    params, _, diags = read_ll_config(write(tmp_path, DEEPSTREAM_IOU))
    assert params.base.min_detector_confidence == 0.2
    t = params.targets
    assert (t.max_targets_per_stream, t.min_iou_diff_4_new_target) == (99, 0.4)
    assert (t.probation_age, t.max_shadow_tracking_age, t.early_termination_age) == (2, 12, 1)
    assert params.associator.check_class_match is False
    assert params.associator.min_matching_score_4_iou == 0.25
    # matchingScoreWeight4Iou is DeepStream's, unused here: a warning naming it and its line.
    assert [str(d) for d in diags.warnings] == [
        f"{tmp_path / 'tracker.yml'}:15: warning: [DataAssociator.matchingScoreWeight4Iou] "
        "DeepStream key not implemented by Heron (ignored)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "TargetManagement:\n  probationAge: -1\n",
            r"tracker.yml:2: error: \[TargetManagement.probationAge\] Input should be greater "
            r"than or equal to 0, got -1",
        ),
        (
            "BaseConfig:\n  minDetectorConfidence: 1.5\n",
            r"tracker.yml:2: error: \[BaseConfig.minDetectorConfidence\] Input should be less "
            r"than or equal to 1, got 1.5",
        ),
        (
            "TargetManagement:\n  maxShadowTrackingAge: lots\n",
            r":2: error: \[TargetManagement.maxShadowTrackingAge\] Input should be a valid "
            r"integer.*got 'lots'",
        ),
        (
            "TargetManagement:\n  probationAg: 3\n",
            r":2: error: \[TargetManagement.probationAg\] unknown key \(did you mean "
            r"'probationAge'\?\)",
        ),
        (
            "TargetManagment:\n  probationAge: 3\n",
            r":1: error: \[TargetManagment\] unknown "
            r"section \(did you mean 'TargetManagement'\?\)",
        ),
        (
            "Heron:\n  tracker: sort\n",
            r":2: error: \[Heron.tracker\] Input should be 'iou', "
            r"'klt', 'correlation' or 'bytetrack', got 'sort'",
        ),
        ("Heron:\n  colour: red\n", r":2: error: \[Heron.colour\] unknown key; expected one of"),
        (
            "TargetManagement: [1, 2]\n",
            r":1: error: \[TargetManagement\] expected a mapping of "
            r"keys, got list",
        ),
        ("- a\n- b\n", r":1: error: expected a mapping of sections, got list"),
        ("BaseConfig:\n  a: [\n", r"error: not valid YAML"),
    ],
)
def test_bad_values_name_file_line_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_ll_config(write(tmp_path, text))


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent.yml: error: cannot read the tracker config"):
        read_ll_config(tmp_path / "absent.yml")


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    params, _, diags = read_ll_config(write(tmp_path, ""))
    assert params.targets.probation_age == 3 and not diags.items


@pytest.mark.parametrize(
    ("library", "kind"),
    [
        ("/opt/nvidia/deepstream/deepstream/lib/libnvds_mot_iou.so", TrackerKind.IOU),
        ("libnvds_mot_klt.so", TrackerKind.KLT),
        ("/x/libnvds_nvdcf.so", TrackerKind.CORRELATION),
        ("libheron_bytetrack.so", TrackerKind.BYTETRACK),
        ("libnvds_nvmultiobjecttracker.so", None),
    ],
)
def test_libraries_name_trackers(library: str, kind: TrackerKind | None) -> None:
    assert kind_from_library(Path(library), Path("app.txt")) == kind


def test_an_unknown_library_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"\[tracker.ll-lib-file\] unknown tracker library "
        r"'libmytracker.so'; expected one of \['libheron_bytetrack.so'",
    ):
        kind_from_library(Path("/lib/libmytracker.so"), Path("app.txt"))


@pytest.mark.parametrize(
    ("yaml_text", "kind"),
    [
        ("VisualTracker:\n  visualTrackerType: 1\n", TrackerKind.CORRELATION),  # NvDCF
        ("StateEstimator:\n  stateEstimatorType: 2\n", TrackerKind.BYTETRACK),  # NvSORT
        ("TargetManagement:\n  probationAge: 1\n", TrackerKind.IOU),
        ("StateEstimator:\n  stateEstimatorType: 2\nHeron:\n  tracker: klt\n", TrackerKind.KLT),
    ],
)
def test_the_unified_library_is_decided_by_its_config(
    tmp_path: Path, yaml_text: str, kind: TrackerKind
) -> None:
    group = TrackerGroup(
        enable=True,
        ll_lib_file=Path("libnvds_nvmultiobjecttracker.so"),
        ll_config_file=write(tmp_path, yaml_text),
        tracker_width=320,
        tracker_height=192,
    )
    spec = tracker_spec(group, tmp_path / "app.txt")
    assert (spec.kind, spec.width, spec.height) == (kind, 320, 192)


def test_heron_section_picks_bytetrack_for_any_library(tmp_path: Path) -> None:
    group = TrackerGroup(
        enable=True,
        ll_lib_file=Path("libnvds_mot_iou.so"),
        ll_config_file=write(tmp_path, "Heron:\n  tracker: bytetrack\n"),
    )
    assert tracker_spec(group, tmp_path / "app.txt").kind is TrackerKind.BYTETRACK


def test_the_pipeline_yaml_form_selects_the_tracker(tmp_path: Path) -> None:
    from heron.core.config.pipeline_file import load_pipeline
    from heron.tracker.pipeline import tracker_setup

    write(tmp_path, "Heron:\n  correlationFilter: csrt\n", "dcf.yml")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "sources:\n  0: {type: uri, enable: true, uri: 'file:///nonexistent/clip.mp4'}\n"
        "sinks:\n  0: {type: fake, enable: true}\n"
        "streammux: {width: 640, height: 360, enable_padding: true}\n"
        "tracker:\n  enable: true\n  ll_lib_file: /x/libnvds_nvdcf.so\n"
        "  ll_config_file: dcf.yml\n  tracker_width: 480\n  tracker_height: 272\n"
        "  enable_batch_process: false\n  tracking_id_reset_mode: 2\n"
    )
    setup = tracker_setup(load_pipeline(pipeline)[0], pipeline)
    assert setup.spec.kind is TrackerKind.CORRELATION
    assert setup.spec.params.heron.correlation_filter == "csrt"
    assert (setup.spec.width, setup.spec.height) == (480, 272)
    assert (setup.batch_process, setup.reset_mode) == (False, 2)
