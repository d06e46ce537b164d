"""Property: whatever a config file holds, each loader either returns its model or raises the
project's own ConfigError, whose findings name the file and say what is wrong; no other
exception escapes (the corpus in tests/data/bad has the cases people hit; this has the rest).

Texts are drawn both as raw bytes and shaped like each format (real group and key names with
odd values: huge numbers, inf, nan, lists, URIs, non-ASCII), so examples get past the syntax.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from heron.core.config import tao
from heron.core.config.cli import check_file
from heron.core.config.deepstream import GIE_KEYS, SINGLE_GROUPS, SINK_MODELS, SOURCE_MODELS
from heron.core.config.diagnostics import ConfigError, Severity
from heron.core.config.keymap import ds_keys
from heron.core.config.nvinfer import CLASS_ATTR_KEYS, PROPERTY_KEYS, read_nvinfer
from heron.core.config.pipeline_file import load_pipeline
from heron.core.config.tracker_config import read_ll_config
from heron.core.config.tracker_params import SECTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# database=None: nothing is written into the checkout (.hypothesis/).
SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

APP_KEYS = sorted(
    {k for _, model in SINGLE_GROUPS.values() for k in ds_keys(model)}
    | {k for model in SOURCE_MODELS.values() for k in ds_keys(model)}
    | {k for model in SINK_MODELS.values() for k in ds_keys(model)}
    | set(GIE_KEYS)
)
APP_GROUPS = [*SINGLE_GROUPS, "primary-gie", "source0", "source1", "sink0", "secondary-gie0"]
NVINFER_GROUPS = ["property", "class-attrs-all", "class-attrs-0", "class-attrs-7"]
NVINFER_KEYS = sorted(set(PROPERTY_KEYS) | set(CLASS_ATTR_KEYS))

VALUES = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "nan",
            "inf",
            "0",
            "1",
            "-1",
            "true",
            "2147483648",
            "0;1;0;1",
            "3;544;960;0",
            ";;",
            "file://clip.mp4",
            "file:",
            "gopher://x/y",
            "rtsp://",
            "rtsp://cam/s",
            "http://h/c.mp4",
            "/dev/video0",
            "%zz",
            "ünïcödé",
            "model.onnx",
            "missing.txt",
            "libnvds_mot_iou.so",
        ]
    ),
    st.text(max_size=20),
)
LINE_BREAK = st.sampled_from(["\n", "\r\n"])


@contextmanager
def written(data: bytes, name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="heron-prop-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def loads_or_refuses(load: Callable[[Path], Any], data: bytes, name: str) -> None:
    """`load` returns, or raises ConfigError with at least one error naming the file."""
    with written(data, name) as path:
        try:
            load(path)
        except ConfigError as e:
            errors = [d for d in e.diagnostics if d.severity is Severity.ERROR]
            assert errors, "a ConfigError carries at least one error"
            assert all(d.message.strip() for d in errors)
            assert all(d.file.name in (path.name, *_referenced(e)) for d in errors), e


def _referenced(e: ConfigError) -> set[str]:
    # A finding may be about a file the config names (its nvinfer or tracker config).
    return {d.file.name for d in e.diagnostics}


@st.composite
def keyfiles(draw: st.DrawFn, groups: list[str], keys: list[str]) -> bytes:
    """A GLib key file: real (and a few odd) group names, real keys with odd values, and now
    and then a line that is no key file syntax at all."""
    lines: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        group = draw(st.one_of(st.sampled_from(groups), st.text(max_size=8)))
        lines.append(draw(st.sampled_from([f"[{group}]", f"[{group}", f" [{group}] "])))
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            key = draw(st.one_of(st.sampled_from(keys), st.text(max_size=8)))
            lines.append(f"{key}={draw(VALUES)}")
        if draw(st.booleans()):
            lines.append(draw(st.text(max_size=15)))
    text = draw(LINE_BREAK).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    return text.encode(encoding, errors="replace")


def _yaml_tree(keys: list[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), VALUES, st.integers(), st.floats())
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(keys), st.integers(0, 3), st.text(max_size=6)),
                children,
                max_size=4,
            ),
        ),
        max_leaves=12,
    )


PIPELINE_KEYS = [
    "sources",
    "sinks",
    "streammux",
    "primary_gie",
    "secondary_gies",
    "tracker",
    "osd",
    "type",
    "enable",
    "uri",
    "width",
    "config_file",
    "nvinfer",
    "property",
]


@st.composite
def pipeline_yaml(draw: st.DrawFn) -> bytes:
    tree = draw(_yaml_tree(PIPELINE_KEYS))
    return yaml.safe_dump(tree, allow_unicode=True).encode()


TAO_WORDS = [
    "random_seed",
    "dataset_config",
    "model_config",
    "training_config",
    "data_sources",
    "arch",
    "num_layers",
    "target_class_mapping",
    "key",
    "value",
    "batch_size_per_gpu",
    "num_epochs",
    "{",
    "}",
    ":",
    '"resnet"',
    '"',
    "#",
    "1e400",
    "-1",
    "18",
    "DBSCAN",
    "true",
    "\n",
]


@st.composite
def tao_text(draw: st.DrawFn) -> bytes:
    words = draw(st.lists(st.one_of(st.sampled_from(TAO_WORDS), st.text(max_size=6)), max_size=40))
    return " ".join(words).encode()


@SETTINGS
@given(st.one_of(keyfiles(APP_GROUPS, APP_KEYS), st.binary(max_size=200)))
def test_deepstream_app_configs_load_or_are_refused(data: bytes) -> None:
    loads_or_refuses(load_pipeline, data, "app.txt")


@SETTINGS
@given(st.one_of(keyfiles(NVINFER_GROUPS, NVINFER_KEYS), st.binary(max_size=200)))
def test_nvinfer_configs_load_or_are_refused(data: bytes) -> None:
    loads_or_refuses(read_nvinfer, data, "config_infer.txt")


@SETTINGS
@given(st.one_of(pipeline_yaml(), st.binary(max_size=200), st.text(max_size=80).map(str.encode)))
def test_pipeline_yaml_loads_or_is_refused(data: bytes) -> None:
    loads_or_refuses(load_pipeline, data, "pipeline.yaml")


@SETTINGS
@given(st.one_of(tao_text(), st.binary(max_size=200)))
def test_tao_text_specs_load_or_are_refused(data: bytes) -> None:
    loads_or_refuses(lambda p: tao.load_any_spec(p, check_paths=False), data, "spec.txt")


@SETTINGS
@given(st.one_of(pipeline_yaml(), _yaml_tree(TAO_WORDS[:12]).map(yaml.safe_dump).map(str.encode)))
def test_tao_yaml_specs_load_or_are_refused(data: bytes) -> None:
    loads_or_refuses(lambda p: tao.load_any_spec(p, check_paths=False), data, "spec.yaml")


@SETTINGS
@given(
    st.one_of(
        _yaml_tree([*SECTIONS, "minDetectorConfidence", "probationAge", "tracker"]).map(
            lambda tree: yaml.safe_dump(tree).encode()
        ),
        st.binary(max_size=200),
    )
)
def test_tracker_configs_load_or_are_refused(data: bytes) -> None:
    loads_or_refuses(read_ll_config, data, "tracker.yml")


@SETTINGS
@given(
    st.sampled_from(["app.txt", "config_infer.txt", "pipeline.yaml", "spec.txt", "spec.yaml"]),
    st.one_of(
        keyfiles([*APP_GROUPS, *NVINFER_GROUPS], [*APP_KEYS, *NVINFER_KEYS]),
        pipeline_yaml(),
        tao_text(),
        st.binary(max_size=200),
    ),
)
def test_config_check_reports_every_file_as_findings(name: str, data: bytes) -> None:
    """`heron config check`'s router: findings for anything, never an exception."""
    with written(data, name) as path:
        text, findings = check_file(path, strict=False)
        assert isinstance(text, str)
        assert all(f.message.strip() for f in findings)
