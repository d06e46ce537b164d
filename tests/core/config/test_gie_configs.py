"""One rule for both loaders: a GIE's nvinfer file is parsed only when the GIE is enabled.

deepstream-app skips a [primary-gie] / [secondary-gieN] with enable=0 (or without enable), so
a broken or missing config-file behind a disabled GIE is never read and reports nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from heron.core.config.deepstream import gie_enabled, read_deepstream_app
from heron.core.config.yaml_loader import read_pipeline_yaml

from tests.core.config.deepstream_helpers import NVINFER, copy_fixtures

SOURCE_SINK_INI = (
    "[source0]\nenable=1\ntype=1\ncamera-width=640\ncamera-height=480\ncamera-fps-n=30\n"
    "[sink0]\nenable=1\ntype=1\n"
)
SOURCE_SINK_YAML = (
    "sources:\n  0:\n    type: camera_v4l2\n    enable: true\n"
    "    camera_width: 640\n    camera_height: 480\n    camera_fps_n: 30\n"
    "sinks:\n  0:\n    type: fake\n    enable: true\n"
)


@pytest.mark.parametrize(
    ("enable", "expected"),
    [
        ("1", True),
        ("0", False),
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("", False),
        ("maybe", False),  # malformed: validation reports it on its line
        (None, False),
    ],
)
def test_enable_is_read_as_the_models_read_it(enable: Any, expected: bool) -> None:
    gie = {} if enable is None else {"enable": enable}

    assert gie_enabled(gie) is expected


@pytest.mark.parametrize("enable", ["0", "1"])
def test_deepstream_app_parses_the_nvinfer_file_only_when_enabled(
    tmp_path: Path, enable: str
) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    path = folder / "app.txt"
    path.write_text(f"{SOURCE_SINK_INI}[primary-gie]\nenable={enable}\nconfig-file={NVINFER}\n")

    pipeline, _ = read_deepstream_app(path)

    assert pipeline.primary_gie is not None
    assert (pipeline.primary_gie.nvinfer is not None) is (enable == "1")


@pytest.mark.parametrize("enable", ["false", "true"])
def test_yaml_parses_the_nvinfer_file_only_when_enabled(tmp_path: Path, enable: str) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    path = folder / "p.yaml"
    path.write_text(
        f"{SOURCE_SINK_YAML}primary_gie:\n  enable: {enable}\n  config_file: {NVINFER}\n"
    )

    pipeline, _ = read_pipeline_yaml(path)

    assert pipeline.primary_gie is not None
    assert (pipeline.primary_gie.nvinfer is not None) is (enable == "true")


def test_a_broken_nvinfer_file_behind_a_disabled_gie_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "broken.txt").write_text("[property]\nnetwork-mode=seven\n")
    ini, yml = tmp_path / "app.txt", tmp_path / "p.yaml"
    ini.write_text(f"{SOURCE_SINK_INI}[primary-gie]\nenable=0\nconfig-file=broken.txt\n")
    yml.write_text(f"{SOURCE_SINK_YAML}primary_gie:\n  enable: false\n  config_file: broken.txt\n")

    for _, diags in (read_deepstream_app(ini), read_pipeline_yaml(yml)):
        assert diags.errors == []
        assert all("broken.txt" not in str(d.file) for d in diags.items)


def test_a_disabled_secondary_gie_is_skipped_by_both_loaders(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    ini, yml = folder / "app.txt", folder / "p.yaml"
    gie = f"enable=0\nconfig-file={NVINFER}\noperate-on-gie-id=1\n"
    ini.write_text(f"{SOURCE_SINK_INI}[secondary-gie0]\n{gie}")
    yml.write_text(
        f"{SOURCE_SINK_YAML}secondary_gies:\n  0:\n    enable: false\n"
        f"    config_file: {NVINFER}\n    operate_on_gie_id: 1\n"
    )

    for pipeline, _ in (read_deepstream_app(ini), read_pipeline_yaml(yml)):
        assert pipeline.secondary_gies[0].nvinfer is None
