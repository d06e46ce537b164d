"""The control service's settings: what a bad value is refused with, and the process refusing
to start on a port it cannot have."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from heron.core.plan.settings.control import ControlSettings
from heron.core.runtime import EXIT_BAD_SETTINGS, EXIT_FATAL, SettingsError, load_settings


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"stage": "no stage!"}, "stage"),
        ({"grpc": {"listen": "everywhere"}}, "grpc.listen"),
        ({"grpc": {"tls": {"key_file": "k.pem"}}}, "grpc.tls.cert_file"),
        ({"subscribe": {"max_subscribers": 0}}, "subscribe.max_subscribers"),
        ({"subscribe": {"block_ms": 60_000}}, "subscribe.block_ms"),
        ({"health_interval_s": 0}, "health_interval_s"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, fields: dict[str, object], named: str) -> None:
    path = tmp_path / "control.json"
    path.write_text(json.dumps(fields))
    with pytest.raises(SettingsError) as e:
        load_settings(ControlSettings, ["--config", str(path)])
    assert named in str(e.value)


def _run(tmp_path: Path, settings: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "control.json"
    path.write_text(json.dumps(settings))
    return subprocess.run(
        [sys.executable, "-m", "heron.control", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_process_refuses_bad_settings_and_a_missing_certificate(tmp_path: Path) -> None:
    assert _run(tmp_path, {"stage": "no stage!"}).returncode == EXIT_BAD_SETTINGS
    missing = {
        "metrics": {"port": 0},
        "grpc": {"listen": "127.0.0.1:0", "tls": {"cert_file": "/absent.crt", "key_file": "/k"}},
    }
    done = _run(tmp_path, missing)
    assert done.returncode == EXIT_FATAL, done.stderr
    assert "tls.cert_file: cannot read /absent.crt" in done.stderr + done.stdout


def test_the_docs_settings_file_loads(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "grpc.md"
    [block] = re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    path = tmp_path / "control.yaml"
    path.write_text(block)
    settings = load_settings(ControlSettings, ["--config", str(path)])
    assert settings.grpc.tls is not None and settings.grpc.tls.client_ca_file is not None
    assert settings.grpc.token is not None and settings.stage == "tracker"
    assert settings.subscribe.max_behind == 100_000
