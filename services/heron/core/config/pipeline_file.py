"""One way to read a pipeline config: a deepstream-app key file or a pipeline YAML.

Every service and `heron run` load their pipeline through `load_pipeline`, so a config reads
the same everywhere and its warnings are the same list wherever they are shown.
"""

from __future__ import annotations

import os.path
from pathlib import Path

from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.diagnostics import ConfigError, Diagnostic, Diagnostics
from heron.core.config.kinds import not_a_pipeline
from heron.core.config.models import Pipeline
from heron.core.config.yaml_loader import read_pipeline_yaml

YAML_SUFFIXES = (".yaml", ".yml")


def load_pipeline(path: Path) -> tuple[Pipeline, Diagnostics]:
    """The pipeline in `path` (YAML by suffix, else deepstream-app) and the load's findings.

    Raises ConfigError listing every error as file:line (a missing or unreadable file too,
    and a config of another kind: an nvinfer config, a TAO spec).
    """
    try:
        reason = not_a_pipeline(path, path.read_bytes())
    except OSError:
        reason = None  # the loader names the file and why it cannot be read
    if reason is not None:
        diags = Diagnostics()
        diags.error(Path(os.path.abspath(path)), 0, reason)
        raise ConfigError(diags.items)
    if path.suffix.lower() in YAML_SUFFIXES:
        return read_pipeline_yaml(path)
    return read_deepstream_app(path)


def warning_line(finding: Diagnostic) -> str:
    """`warning: app.txt:14: [group.key] message`: how a terminal shows one finding."""
    where = f"{finding.file}:{finding.line}" if finding.line else str(finding.file)
    what = f"[{finding.field}] " if finding.field else ""
    return f"{finding.severity.value}: {where}: {what}{finding.message}"
