"""heron_operator.job_report: what a Job's container leaves as its termination message."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from heron_operator.job_report import MESSAGE_LIMIT, JobReport, main


def run(tmp_path: Path, *args: str) -> tuple[int, JobReport]:
    log = tmp_path / "termination-log"
    code = main([*args[:1], "--termination-log", str(log), *args[1:]])
    return code, JobReport.from_message(log.read_text())


def test_a_build_reports_the_plan_the_cli_printed(tmp_path: Path) -> None:
    line = (
        "built fp16 tensorrt_rtx 1.7.1.116 plan (0.4 MB, 0.12 s) → /models/repo/m/7/model_sm86.plan"
    )
    code, report = run(tmp_path, "build", "--", sys.executable, "-c", f"print({line!r})")
    assert code == 0 and report.ok is True and report.exit_code == 0
    assert report.plan == "/models/repo/m/7/model_sm86.plan"


def test_a_failed_command_reports_its_status_and_last_lines(tmp_path: Path) -> None:
    script = "import sys; print('step 1'); sys.exit('error: the ONNX parser failed: node 3')"
    code, report = run(tmp_path, "build", "--", sys.executable, "-c", script)
    assert code == 1 and report.ok is False and report.plan is None
    assert report.message.splitlines()[-1] == "error: the ONNX parser failed: node 3"
    code, report = run(tmp_path, "build", "--", str(tmp_path / "no-such-command"))
    assert code == 127 and "cannot run" in report.message


def test_the_gate_reports_the_worst_drop_as_a_fraction(tmp_path: Path) -> None:
    report_file = tmp_path / "gate.json"
    accuracy = [{"label": "TensorRT Q/DQ (S8S8)", "mAP_drop": 2.5},
                {"label": "ONNX Runtime CPU (U8S8)", "mAP_drop": 0.4}]  # fmt: skip
    report_file.write_text(json.dumps({"accuracy": accuracy}))
    code, report = run(tmp_path, "gate", "--report", str(report_file), "--",
                       sys.executable, "-c", "raise SystemExit(1)")  # fmt: skip
    assert code == 1 and report.passed is False and report.ap_drop == 0.025
    assert "TensorRT Q/DQ (S8S8): 2.50 points" in report.message
    code, report = run(
        tmp_path, "gate", "--report", str(report_file), "--", sys.executable, "-c", ""
    )
    assert code == 0 and report.passed is True


def test_the_message_fits_the_kubelets_limit_and_logs_are_read_as_text() -> None:
    long = JobReport(ok=False, exit_code=1, message="x" * 10_000 + "the end")
    text = long.to_message()
    assert len(text.encode()) <= MESSAGE_LIMIT
    assert JobReport.from_message(text).message.endswith("the end")  # the tail is kept
    fallback = JobReport.from_message("Traceback (most recent call last):\n  ...\nOSError: x\n")
    assert fallback.ok is None and fallback.message.endswith("OSError: x")
