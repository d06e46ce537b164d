"""Structured logs: JSON lines with the standard keys, console format, secrets never written."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from heron.core.runtime.logs import configure_logging
from pydantic import SecretStr

from tests.support.root_logging import root_logging_kept

PASSWORD = "pa55-w0rd-xyz"
URL = f"redis://default:{PASSWORD}@10.1.2.3:6379/0"


@pytest.fixture
def root_restored() -> Iterator[None]:
    """configure_logging replaces the root handlers; put pytest's own back afterwards."""
    with root_logging_kept():
        yield


def capture(fmt: str = "json", level: str = "DEBUG") -> io.StringIO:
    out = io.StringIO()
    configure_logging("cam-ingest", level, fmt, secrets=[URL, PASSWORD], stream=out)  # type: ignore[arg-type]
    return out


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.usefixtures("root_restored")
def test_json_line_has_standard_keys_and_extra_fields() -> None:
    out = capture()
    logging.getLogger("heron.test").info(
        "batch done in %.1f ms", 12.34, extra={"stream": "cam-1", "frames": 4}
    )
    (entry,) = lines(out)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "heron.test"
    assert entry["service"] == "cam-ingest"
    assert entry["message"] == "batch done in 12.3 ms"
    assert (entry["stream"], entry["frames"]) == ("cam-1", 4)
    assert isinstance(entry["ts"], str) and entry["ts"].endswith("Z")


@pytest.mark.usefixtures("root_restored")
def test_json_shape_base_keys_first_and_never_replaced() -> None:
    """What log readers rely on (and python-json-logger would change: logs.JsonFormatter)."""
    out = capture()
    logging.getLogger("heron.test").info(
        "hello", extra={"service": "spoofed", "level": "x", "_private": 1, "stream": "cam-1"}
    )
    text = out.getvalue()
    entry = json.loads(text)
    assert list(entry)[:5] == ["ts", "level", "logger", "service", "message"]
    assert (entry["service"], entry["level"]) == ("cam-ingest", "INFO")
    assert (entry["_private"], entry["stream"]) == (1, "cam-1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["ts"]))


@pytest.mark.usefixtures("root_restored")
def test_level_filters_lower_records() -> None:
    out = capture(level="WARNING")
    log = logging.getLogger("heron.test")
    log.info("quiet")
    log.warning("loud")
    assert [e["message"] for e in lines(out)] == ["loud"]


@pytest.mark.usefixtures("root_restored")
@pytest.mark.parametrize(
    "emit",
    [
        pytest.param(lambda log: log.info("connecting to %s", URL), id="format-arg"),
        pytest.param(lambda log: log.info(f"connecting to {URL}"), id="message"),
        pytest.param(lambda log: log.info("x", extra={"url": URL}), id="extra-str"),
        pytest.param(lambda log: log.info("x", extra={"url": SecretStr(URL)}), id="extra-secret"),
        pytest.param(lambda log: log.info("x", extra={"cfg": {"urls": [URL]}}), id="extra-nested"),
        pytest.param(lambda log: log.info("password is %s", PASSWORD), id="bare-password"),
        pytest.param(lambda log: log.info("%s", SecretStr(PASSWORD)), id="secretstr-arg"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_passwords_never_reach_the_output(emit: object, fmt: str) -> None:
    out = capture(fmt)
    emit(logging.getLogger("heron.test"))  # type: ignore[operator]
    text = out.getvalue()
    assert text.strip()
    assert PASSWORD not in text


@pytest.mark.usefixtures("root_restored")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_traceback_is_logged_redacted(fmt: str) -> None:
    out = capture(fmt)
    try:
        raise ConnectionError(f"cannot reach {URL}")
    except ConnectionError:
        logging.getLogger("heron.test").exception("redis is away")
    text = out.getvalue()
    assert "ConnectionError" in text and "redis://default:***@10.1.2.3:6379/0" in text
    assert PASSWORD not in text
    if fmt == "json":
        (entry,) = lines(out)
        assert "Traceback" in str(entry["exc"])


@pytest.mark.usefixtures("root_restored")
def test_console_format_is_one_readable_line() -> None:
    out = capture("console")
    logging.getLogger("heron.test").warning("slow frame", extra={"stream": "cam-1"})
    line = out.getvalue().strip()
    assert "WARNING heron.test [cam-ingest] slow frame stream=cam-1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.usefixtures("root_restored")
def test_bad_format_arguments_do_not_raise_into_the_caller() -> None:
    out = capture()
    logging.getLogger("heron.test").info("two %s %s", "only-one")  # noqa: PLE1206 — on purpose
    (entry,) = lines(out)
    assert "unformattable" in str(entry["message"])


@pytest.mark.usefixtures("root_restored")
def test_reconfiguring_replaces_the_handler() -> None:
    first = capture()
    second = capture()
    logging.getLogger("heron.test").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1
