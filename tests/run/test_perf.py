"""deepstream-app's perf lines from frame counts."""

from __future__ import annotations

import re

import pytest
from heron.run.perf import HEADER_EVERY, PerfMeter, PerfPrinter, header_line, perf_line

LINE = re.compile(r"^\*\*PERF:  (\d+\.\d\d \(\d+\.\d\d\)\t)+$")


def test_rates_now_and_average() -> None:
    meter = PerfMeter(["source-0", "source-1"], started_at=0.0)
    for i in range(50):
        meter.add("source-0", 0.5 + i * 0.02)  # 50 frames in the first 2 s
    meter.add("source-1", 1.0, frames=10)
    assert meter.report(2.0) == [(25.0, 25.0), (5.0, 5.0)]
    meter.add("source-0", 3.0, frames=10)  # 10 in the next 2 s; none for source-1
    now, avg = meter.report(4.0)[0]
    assert (now, avg) == (5.0, 15.0)
    assert meter.report(4.0)[1] == (0.0, 2.5)


def test_a_stream_without_frames_reports_zero() -> None:
    meter = PerfMeter(["source-0"], started_at=0.0)
    assert meter.report(5.0) == [(0.0, 0.0)]


def test_a_stream_the_plan_did_not_name_is_added() -> None:
    meter = PerfMeter(["source-0"], started_at=0.0)
    meter.add("source-7", 1.0, frames=4)
    assert meter.streams == ["source-0", "source-7"]
    assert meter.report(2.0)[1] == (2.0, 2.0)


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ([(24.814, 24.6)], "**PERF:  24.81 (24.60)\t"),
        ([(0.0, 0.0), (30.0, 29.999)], "**PERF:  0.00 (0.00)\t30.00 (30.00)\t"),
    ],
)
def test_line_format_is_deepstream_apps(rates: list[tuple[float, float]], expected: str) -> None:
    assert perf_line(rates) == expected
    assert LINE.match(perf_line(rates))


def test_header_names_the_columns_every_twenty_reports() -> None:
    printer = PerfPrinter()
    lines = [line for _ in range(HEADER_EVERY + 1) for line in printer.lines([(1.0, 1.0)] * 2)]
    headers = [i for i, line in enumerate(lines) if line == header_line(2)]
    assert header_line(2) == "**PERF:  FPS 0 (Avg)\tFPS 1 (Avg)\t"
    assert headers == [0, HEADER_EVERY + 1]
    assert len(lines) == HEADER_EVERY + 1 + 2
