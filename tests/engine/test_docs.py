"""The examples of docs/engine.md parse: the Job settings and the config.pbtxt."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from heron.engine import triton_repo
from heron.engine.service import EngineSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_job_settings_example_is_valid() -> None:
    (example,) = _blocks("yaml")
    settings = EngineSettings.model_validate(yaml.safe_load(example))
    assert settings.precision == "int8" and settings.calibration is not None
    assert settings.calibration.method == "auto" and settings.batch.max == 16
    assert settings.calibration.select_data is not None and settings.eval_data is not None


def test_config_example_parses_with_the_triton_proto() -> None:
    (config,) = [b for b in _blocks("") if b.startswith('name: "detector"')]
    parsed = triton_repo.parse_config(config, str(DOC))
    assert parsed.platform == "tensorrt_plan"
    assert dict(parsed.cc_model_filenames) == {
        "8.6": "model_sm86_sm89.plan",
        "8.9": "model_sm86_sm89.plan",
    }
