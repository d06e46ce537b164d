"""Malformed deepstream-app and nvinfer files: each finding names its file, line and cause."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from heron.core.config.deepstream import load_deepstream_app
from heron.core.config.diagnostics import Diagnostics, Severity

from tests.core.config.deepstream_helpers import (
    APP,
    NVINFER,
    copy_fixtures,
    edit,
    line_of,
    matching,
)

ERROR, WARNING = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    old: bytes
    new: bytes
    severity: Severity
    message: str
    at: bytes | None  # text on the line the finding must point at; None: any real line


SECONDARY = (
    b"[secondary-gie0]\nenable=1\ngie-unique-id=2\noperate-on-gie-id=7\n"
    b"config-file=config_infer_primary_facemask.txt\n\n[tracker]"
)

CASES = [
    # --- key-file syntax -------------------------------------------------------------------
    Case("missing-equals", APP, b"camera-width=640", b"camera-width 640", ERROR,
         "expected 'key=value'", b"camera-width 640"),
    Case("key-before-group", APP, b"[application]", b"orphan=1\n[application]", ERROR,
         "key before any [group]", b"orphan=1"),
    Case("malformed-group-header", APP, b"[osd]", b"[osd", ERROR,
         "line '[osd' is not a key-value pair, group or comment; a group header needs its "
         "closing ']'", b"[osd"),
    Case("text-after-group-header", APP, b"[osd]", b"[osd] x", ERROR,
         "nothing may follow the closing ']'", b"[osd] x"),
    Case("missing-key-name", APP, b"font=Serif", b"=Serif", ERROR,
         "missing key name", b"=Serif"),
    Case("non-utf8", APP, b"font=Serif", b"font=Seri\xff", ERROR,
         "not valid UTF-8", b"font=Seri"),
    Case("duplicate-key", APP, b"live-source=1", b"live-source=1\nlive-source=0", WARNING,
         "duplicate key 'live-source'", b"live-source=0"),
    Case("duplicate-group", APP, b"[tests]", b"[osd]\nfont=Mono\n[tests]", WARNING,
         "group [osd] appears again", b"[osd]\nfont=Mono"),
    # --- names ---------------------------------------------------------------------------------
    Case("unknown-group", APP, b"[tests]", b"[testz]", WARNING,
         "unknown group 'testz' (did you mean 'tests'?)", b"[testz]"),
    Case("misspelt-key", APP, b"text-size=15", b"text-sise=15", WARNING,
         "unknown key 'text-sise' (did you mean 'text-size'?)", b"text-sise"),
    Case("key-of-other-source-type", APP, b"camera-v4l2-dev-node=0",
         b"camera-v4l2-dev-node=0\nlatency=200", WARNING,
         "'latency' does not apply to a type=1 (camera_v4l2) source", b"latency=200"),
    Case("unsupported-group", APP, b"[tests]", b"[nvds-analytics]\nenable=0\n[tests]", WARNING,
         "not supported", b"[nvds-analytics]"),
    Case("misspelt-nvinfer-key", NVINFER, b"net-scale-factor=", b"net-scale-facter=", WARNING,
         "did you mean 'net-scale-factor'", b"net-scale-facter"),
    Case("deprecated-threshold", NVINFER, b"pre-cluster-threshold=0.2", b"threshold=0.2",
         WARNING, "'threshold' is deprecated", b"threshold=0.2"),
    # --- values --------------------------------------------------------------------------------
    Case("bad-int", APP, b"camera-width=640", b"camera-width=640px", ERROR,
         "valid integer, unable to parse string as an integer; found '640px'", b"640px"),
    Case("bad-bool", APP, b"live-source=1", b"live-source=maybe", ERROR,
         "valid boolean", b"live-source=maybe"),
    Case("colour-with-3-parts", APP, b"bbox-border-color0=0;1;0;1", b"bbox-border-color0=0;1;0",
         ERROR, "expected a colour of 4 numbers r;g;b;a between 0 and 1, found '0;1;0'",
         b"bbox-border-color0"),
    Case("colour-out-of-range", APP, b"text-bg-color=0.3;0.3;0.3;1",
         b"text-bg-color=0.3;0.3;1.5;1", ERROR, "less than or equal to 1; found '1.5'",
         b"text-bg-color"),
    Case("bad-list-item", APP, b"gie-unique-id=1\nnvbuf",
         b"gie-unique-id=1\noperate-on-class-ids=0;x;2\nnvbuf", ERROR,
         "found 'x'", b"operate-on-class-ids"),
    Case("unknown-source-type", APP, b"type=1", b"type=7", ERROR,
         "expected source type 1 (camera_v4l2), 2 (uri), 3 (multi_uri) or 4 (rtsp); found '7'",
         b"type=7"),
    Case("unknown-sink-type", APP, b"type=4", b"type=5", ERROR,
         "expected sink type 1 (fake), 2 (egl), 3 (file), 4 (rtsp) or 6 (msgbroker); found '5'",
         b"type=5"),
    Case("port-out-of-range", APP, b"rtsp-port=8554", b"rtsp-port=70000", ERROR,
         "less than or equal to 65535; found '70000'", b"rtsp-port"),
    Case("batch-size-zero", APP, b"batch-size=4", b"batch-size=0", ERROR,
         "greater than or equal to 1; found '0'", b"batch-size=0"),
    Case("network-mode-out-of-range", NVINFER, b"network-mode=1", b"network-mode=7", ERROR,
         "expected one of 0 (fp32), 1 (int8), 2 (fp16) or 3 (best); found '7'", b"network-mode=7"),
    Case("cluster-mode-out-of-range", NVINFER, b"cluster-mode=3", b"cluster-mode=5", ERROR,
         "or 4 (none); found '5'", b"cluster-mode=5"),
    Case("nms-iou-above-1", NVINFER, b"nms-iou-threshold=0.5", b"nms-iou-threshold=1.5", ERROR,
         "less than or equal to 1", b"nms-iou-threshold"),
    Case("infer-dims-too-short", NVINFER, b"batch-size=4", b"batch-size=4\ninfer-dims=3;544",
         ERROR, "at least 3 items", b"infer-dims"),
    Case("bad-class-attrs-group", NVINFER, b"# Mask\n", b"[class-attrs-x]\neps=1\n", ERROR,
         "expected [class-attrs-all] or [class-attrs-<class id>]", b"[class-attrs-x]"),
    # --- cross-field ---------------------------------------------------------------------------
    Case("class-attrs-beyond-classes", NVINFER, b"[class-attrs-1]", b"[class-attrs-5]", ERROR,
         "[class-attrs-5] names class 5 but num-detected-classes is 2", b"[class-attrs-5]"),
    # nvinfer runs with fewer labels than classes (the missing ones get no label): a warning.
    Case("fewer-labels-than-classes", NVINFER, b"num-detected-classes=2",
         b"num-detected-classes=3", WARNING,
         "the labels file has 2 labels ['Mask', 'No-Mask'] but num-detected-classes is 3: "
         "class 2 gets no label", b"labelfile-path"),
    Case("int8-without-calibration", NVINFER, b"int8-calib-file=", b"#int8-calib-file=", ERROR,
         "needs int8-calib-file to build", b"network-mode=1"),
    Case("no-property-group", NVINFER, b"[property]", b"[propertee]", ERROR,
         "no [property] group", None),
    Case("gie-without-config-file", APP, b"config-file=config_infer_primary_facemask.txt", b"",
         ERROR, "an enabled inference group needs config-file", b"[primary-gie]"),
    Case("tracker-without-library", APP,
         b"ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/libnvds_mot_klt.so", b"", ERROR,
         "an enabled tracker needs ll-lib-file", b"[tracker]"),
    Case("rtsp-ports-equal", APP, b"udp-port=5400", b"udp-port=8554", ERROR,
         "udp-port and rtsp-port are both 8554", b"udp-port"),
    Case("no-enabled-source", APP, b"enable=1\n#Type - 1=CameraV4L2", b"enable=0\n#Type", ERROR,
         "no source is enabled", b"[source0]"),
    Case("secondary-on-unknown-gie", APP, b"[tracker]", SECONDARY, ERROR,
         "operate-on-gie-id 7 names no enabled engine", b"operate-on-gie-id=7"),
    Case("colour-for-missing-class", APP, b"bbox-border-color1=1;0;0;1",
         b"bbox-border-color1=1;0;0;1\nbbox-border-color4=1;1;0;1", ERROR,
         "colour given for class 4 but the model has 2 classes", b"bbox-border-color4"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_input_is_reported_on_its_line(tmp_path: Path, case: Case) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    target = folder / case.file
    edit(target, case.old, case.new)

    diags = Diagnostics()
    load_deepstream_app(folder / APP, diags, headless=True)

    found = [d for d in matching(diags, case.severity, case.message) if d.file == target]
    assert found, "\n".join(str(d) for d in diags.items)
    if case.at is None:
        assert found[0].line >= 0
    else:
        assert found[0].line == line_of(target, case.at)


def test_there_are_at_least_twenty_malformed_cases() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_finding_is_collected_not_just_the_first(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    app = folder / APP
    edit(app, b"camera-width=640", b"camera-width=wide")
    edit(app, b"rtsp-port=8554", b"rtsp-port=0")
    edit(app, b"text-color=1;1;1;1;", b"text-color=1;1")
    edit(app, b"[tests]", b"[testz]")
    edit(folder / NVINFER, b"network-mode=1", b"network-mode=9")

    diags = Diagnostics()
    pipeline = load_deepstream_app(app, diags, headless=True)

    assert pipeline is None
    assert len(diags.errors) == 4
    assert {d.file.name for d in diags.errors} == {APP, NVINFER}
    assert sorted(d.line for d in diags.errors if d.file == app) == sorted(
        line_of(app, text) for text in (b"camera-width=wide", b"rtsp-port=0", b"text-color=1;1")
    )
    assert matching(diags, WARNING, "unknown group 'testz'")
