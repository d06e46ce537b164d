"""ServiceSettings: environment, settings file, precedence and errors that name field and source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from heron.core.runtime import HelpShown, ServiceSettings, SettingsError, load_settings
from pydantic import BaseModel, ConfigDict, Field

PASSWORD = "hunter2-very-secret"


class WorkerSettings(ServiceSettings):
    """A service's own settings on top of the base, as every service declares them."""

    service_name: str = "worker"
    batch_size: int = Field(8, ge=1)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No HERON_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("HERON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set() -> None:
    s = load_settings(WorkerSettings)
    assert (s.service_name, s.metrics.port, s.log.level, s.log.format) == (
        "worker",
        9400,
        "INFO",
        "json",
    )
    assert s.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"


def test_environment_sets_nested_and_subclass_fields(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HERON_METRICS__PORT", "9555")
    clean_env.setenv("HERON_LOG__LEVEL", "debug")
    clean_env.setenv("HERON_BATCH_SIZE", "32")
    clean_env.setenv("HERON_SHUTDOWN_GRACE_S", "2.5")
    s = load_settings(WorkerSettings)
    assert (s.metrics.port, s.log.level, s.batch_size, s.shutdown_grace_s) == (
        9555,
        "DEBUG",
        32,
        2.5,
    )


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
@pytest.mark.parametrize("how", ["argument", "argument=", "environment"])
def test_file_is_read_and_environment_overrides_it(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, suffix: str, how: str
) -> None:
    data = {
        "service_name": "from-file",
        "metrics": {"host": "127.0.0.1", "port": 9101},
        "log": {"level": "WARNING", "format": "console"},
        "batch_size": 4,
    }
    path = write(tmp_path / f"settings{suffix}", json.dumps(data))  # JSON is valid YAML too
    clean_env.setenv("HERON_METRICS__PORT", "9200")
    clean_env.setenv("HERON_BATCH_SIZE", "16")
    argv: list[str] = []
    if how == "argument":
        argv = ["--config", str(path)]
    elif how == "argument=":
        argv = [f"--config={path}"]
    else:
        clean_env.setenv("HERON_CONFIG_FILE", str(path))
    s = load_settings(WorkerSettings, argv)
    # From the file where the environment is silent; from the environment where it speaks.
    assert (s.service_name, s.metrics.host, s.log.format) == ("from-file", "127.0.0.1", "console")
    assert (s.metrics.port, s.batch_size) == (9200, 16)


def test_config_argument_wins_over_config_file_variable(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HERON_CONFIG_FILE", str(write(tmp_path / "a.yaml", "batch_size: 2\n")))
    b = write(tmp_path / "b.yaml", "batch_size: 3\n")
    assert load_settings(WorkerSettings, ["-c", str(b)]).batch_size == 3


def test_keyword_arguments_override_everything(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HERON_BATCH_SIZE", "16")
    path = write(tmp_path / "s.yaml", "batch_size: 4\n")
    assert load_settings(WorkerSettings, ["--config", str(path)], batch_size=64).batch_size == 64


def test_empty_file_sets_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.yaml", "# nothing here yet\n")
    assert load_settings(WorkerSettings, ["--config", str(path)]).batch_size == 8


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HERON_METRICS__PORT": "abc"}, ["metrics.port", "HERON_METRICS__PORT", "'abc'"]),
        ({"HERON_METRICS__PORT": "70000"}, ["metrics.port", "less than or equal to 65535"]),
        ({"HERON_LOG__FORMAT": "xml"}, ["log.format", "HERON_LOG__FORMAT", "'json' or 'console'"]),
        ({"HERON_LOG__LEVEL": "LOUD"}, ["log.level", "HERON_LOG__LEVEL"]),
        ({"HERON_SHUTDOWN_GRACE_S": "-1"}, ["shutdown_grace_s", "greater than 0"]),
        ({"HERON_BATCH_SIZE": "0"}, ["batch_size", "HERON_BATCH_SIZE", "greater than or equal"]),
        ({"HERON_SERVICE_NAME": "Bad_Name"}, ["service_name", "HERON_SERVICE_NAME"]),
        ({"HERON_REDIS_URL": "localhost:6379"}, ["redis_url", "HERON_REDIS_URL", "scheme"]),
        ({"HERON_METRICS": "{not json"}, ["metrics", "HERON_METRICS"]),
    ],
)
def test_bad_environment_value_names_field_and_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: list[str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as e:
        load_settings(WorkerSettings)
    for text in expected:
        assert text in str(e.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics:\n  host: x\n  port: nope\n", ["metrics.port", "s.yaml:3", "'nope'"]),
        ("metrics:\n  prot: 9000\n", ["metrics.prot", "s.yaml:2", "did you mean 'port'"]),
        ("batchsize: 3\n", ["batchsize", "s.yaml:1", "did you mean 'batch_size'"]),
        ("log: loud\n", ["log", "s.yaml:1", "LogSettings"]),
        ("metrics: [1, 2]\n", ["metrics", "s.yaml:1"]),
        ("log:\n  level: [INFO\n", ["s.yaml:", "not valid YAML"]),
        ("- just\n- a list\n", ["s.yaml:1", "expected a mapping", "got list"]),
        ("42\n", ["expected a mapping", "got int"]),
        ("1: one\n", ["expected setting names as text", "1"]),
    ],
)
def test_bad_file_names_file_line_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(SettingsError) as e:
        load_settings(WorkerSettings, ["--config", str(path)])
    for part in expected:
        assert part in str(e.value)


class Camera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = "file:///clip.mp4"
    fps: int = 25


class JobSettings(ServiceSettings):
    """Nested settings of every shape a Job has: optional, in a list, in a dict."""

    service_name: str = "job"
    calibration: Camera | None = None
    cameras: list[Camera] = Field(default_factory=list)
    named: dict[str, Camera] = Field(default_factory=dict)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calibration:\n  fsp: 3\n", ["calibration.fsp", "s.yaml:2", "did you mean 'fps'"]),
        ("cameras:\n  - uri: a\n  - urii: b\n", ["cameras.1.urii", "did you mean 'uri'"]),
        ("named:\n  door:\n    fpss: 2\n", ["named.door.fpss", "s.yaml:3", "did you mean 'fps'"]),
        ("calibraton: {}\n", ["calibraton", "did you mean 'calibration'"]),
        ("calibration:\n  zzzz: 1\n", ["calibration.zzzz", "unknown setting, got 1"]),
    ],
)
def test_a_typo_in_a_nested_setting_gets_a_suggestion(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path / "s.yaml", text)
    with pytest.raises(SettingsError) as e:
        load_settings(JobSettings, ["--config", str(path)])
    for part in expected:
        assert part in str(e.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("s.json", '{"batch_size": 2,}', ["s.json:1", "not valid JSON"]),
        ("s.toml", "batch_size = 2", ["s.toml", "expected a settings file ending in"]),
        ("missing.yaml", None, ["missing.yaml", "cannot read"]),
    ],
)
def test_unreadable_file_is_named(
    tmp_path: Path, name: str, text: str | None, expected: list[str]
) -> None:
    path = tmp_path / name
    if text is not None:
        write(path, text)
    with pytest.raises(SettingsError) as e:
        load_settings(WorkerSettings, ["--config", str(path)])
    for part in expected:
        assert part in str(e.value)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config"], "Option '--config' requires an argument"),
        (["--verbose"], "No such option: --verbose"),
        (["settings.yaml"], r"unexpected extra argument\(s\) \(settings.yaml\)"),
    ],
)
def test_bad_arguments_are_errors(argv: list[str], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_settings(WorkerSettings, argv)


def test_help_names_the_option_and_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HelpShown):
        load_settings(WorkerSettings, ["--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "-c, --config" in printed and "HERON_CONFIG_FILE" in printed


def test_missing_required_field_says_how_to_set_it() -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(ServiceSettings)  # the base has no default service name
    assert "service_name: required" in str(e.value)
    assert "HERON_SERVICE_NAME" in str(e.value)


@pytest.mark.parametrize("source", ["environment", "file"])
def test_bad_redis_url_error_never_shows_the_password(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, source: str
) -> None:
    url = f"http://admin:{PASSWORD}@redis.example:6379/0"
    argv: list[str] = []
    if source == "environment":
        clean_env.setenv("HERON_REDIS_URL", url)
    else:
        argv = ["--config", str(write(tmp_path / "s.yaml", f"redis_url: {url}\n"))]
    with pytest.raises(SettingsError) as e:
        load_settings(WorkerSettings, argv)
    assert "redis_url" in str(e.value)
    assert PASSWORD not in str(e.value)
    assert "admin" not in str(e.value)  # the whole value is masked, user name included


def test_redacted_settings_keep_host_and_mask_password(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HERON_REDIS_URL", f"redis://default:{PASSWORD}@10.0.0.5:6380/2")
    s = load_settings(WorkerSettings)
    dumped = s.redacted()
    assert dumped["redis_url"] == "redis://default:***@10.0.0.5:6380/2"
    assert dumped["metrics"] == {"host": "0.0.0.0", "port": 9400}
    assert PASSWORD not in repr(s) and PASSWORD not in json.dumps(dumped)


def test_settings_are_frozen() -> None:
    s = load_settings(WorkerSettings)
    with pytest.raises(ValueError, match="frozen"):
        s.batch_size = 3  # type: ignore[misc]
