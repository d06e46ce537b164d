"""`heron config ...` commands: `check` loads any supported config and prints it normalized;
`plan` prints the services a pipeline config runs, with their settings."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import BaseModel

from heron.core.cli_errors import fail, invalid_options
from heron.core.config.diagnostics import ConfigError, Diagnostic, Diagnostics, Severity
from heron.core.config.keyfile import malformed_header_message
from heron.core.config.kinds import FileKind, detect_kind
from heron.core.options import field_help, given
from heron.core.plan.options import PlanOptions

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Load and check pipeline, nvinfer and TAO spec files; plan a pipeline's services."""


_BRACKET_LINE = re.compile(rb"^[ \t]*(\[[^\r\n]*?)[ \t\r]*$", re.MULTILINE)
_WHOLE_HEADER = re.compile(r"\[[^\[\]]+\]")


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Config files to load and check.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Referenced files that do not exist are errors.")
    ] = False,
) -> None:
    """Load each file, print it normalized as YAML and list every warning and error.

    Understands deepstream-app configs, nvinfer configs, pipeline YAML and TAO spec files.
    Exits 1 when any file has an error.
    """
    failed = False
    for path in files:
        text, diagnostics = check_file(path, strict=strict)
        if text:
            typer.echo(f"# {path}")
            typer.echo(text.rstrip("\n"))
            typer.echo("---")
        for diagnostic in sorted(diagnostics, key=lambda d: (str(d.file), d.line)):
            typer.echo(str(diagnostic), err=True)
        failed |= any(d.severity is Severity.ERROR for d in diagnostics)
    raise typer.Exit(1 if failed else 0)


def check_file(path: Path, *, strict: bool) -> tuple[str, list[Diagnostic]]:
    """(normalized YAML or '', findings) for one file of any supported kind."""
    diags = Diagnostics()
    try:
        data = path.read_bytes()
    except OSError as e:
        diags.error(path, 0, f"cannot read the file: {e.strerror or e}")
        return "", diags.items
    kind = detect_kind(path, data)
    if kind is None:
        for number, line in _malformed_headers(data):
            diags.error(path, number, malformed_header_message(line))
        diags.error(
            path,
            0,
            "cannot tell what this file is: expected a deepstream-app config ([application], "
            "[sourceN], ...), an nvinfer config ([property]), a pipeline .yaml or a TAO spec",
        )
        return "", diags.items
    if kind is FileKind.TAO_SPEC:
        return _check_tao(path, diags)
    if kind is FileKind.TRACKER:
        return _check_tracker(path, diags)
    return _check_pipeline_kind(kind, path, diags, strict=strict)


def _malformed_headers(data: bytes) -> list[tuple[int, str]]:
    """(line, text) of each line that starts like a group header but is not one."""
    found: list[tuple[int, str]] = []
    for match in _BRACKET_LINE.finditer(data):
        text = match.group(1).decode("utf-8", "replace")
        if not _WHOLE_HEADER.fullmatch(text):
            found.append((data.count(b"\n", 0, match.start()) + 1, text))
    return found


def _check_pipeline_kind(
    kind: FileKind, path: Path, diags: Diagnostics, *, strict: bool
) -> tuple[str, list[Diagnostic]]:
    # Imported here so `heron --help` does not pay for pydantic model building.
    from heron.core.config.deepstream import load_deepstream_app
    from heron.core.config.nvinfer import load_nvinfer
    from heron.core.config.yaml_loader import load_pipeline_yaml, to_yaml

    model: BaseModel | None
    if kind is FileKind.NVINFER:
        model = load_nvinfer(path, diags, strict=strict)
    elif kind is FileKind.DEEPSTREAM_APP:
        model = load_deepstream_app(path, diags, strict=strict)
    else:
        model = load_pipeline_yaml(path, diags, strict=strict)
    return (to_yaml(model) if model is not None else ""), diags.items


def _check_tracker(path: Path, diags: Diagnostics) -> tuple[str, list[Diagnostic]]:
    from heron.core.config.tracker_config import read_ll_config

    try:
        params, _, found = read_ll_config(path)
    except ConfigError as e:
        return "", e.diagnostics
    data = params.model_dump(mode="json", by_alias=True)
    return yaml.safe_dump(data, sort_keys=False, width=100), found.items


def _check_tao(path: Path, diags: Diagnostics) -> tuple[str, list[Diagnostic]]:
    from heron.core.config import tao

    try:
        if tao.is_inference_spec(tao.top_level_names(path)):
            return "", tao.check_inference_spec(path)
        spec = tao.load_any_spec(path)
    except ConfigError as e:
        return "", e.diagnostics
    # spec_to_dict, not MessageToDict: it redacts secrets and sorts map entries.
    data = tao.spec_to_dict(spec.message)
    text = yaml.safe_dump({"kind": spec.kind, "spec": data}, sort_keys=False, width=100)
    return text, list(spec.diagnostics)


class PlanFormat(StrEnum):
    JSON = "json"
    YAML = "yaml"
    HELM = "helm"  # the chart's values: heron.core.plan.deploy


@app.command()
def plan(
    configs: Annotated[
        list[Path],
        typer.Argument(
            metavar="CONFIG...",
            help="deepstream-app .txt or pipeline YAML; several only with --format helm.",
        ),
    ],
    *,
    output_format: Annotated[
        PlanFormat,
        typer.Option(
            "--format",
            help="How the plan is printed; helm: the values the Helm chart deploys "
            "(docs/deploy.md), one pipeline per config.",
        ),
    ] = PlanFormat.JSON,
    pipeline: Annotated[
        str | None, typer.Option(help=field_help(PlanOptions, "pipeline"), show_default=False)
    ] = None,
    streammux: Annotated[
        bool | None,
        typer.Option(
            "--streammux/--no-streammux",
            help="Force the muxer on/off. Default: off (lossless) when every source is a file "
            "without file-loop, on otherwise.",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help=field_help(PlanOptions, "backend", "onnxruntime or triton.")),
    ] = None,
    triton_url: Annotated[
        str | None, typer.Option(help=field_help(PlanOptions, "triton_url"))
    ] = None,
    triton_model: Annotated[
        str | None, typer.Option(help=field_help(PlanOptions, "triton_model"))
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help=field_help(PlanOptions, "intra_op_threads"))
    ] = None,
    encoder_preset: Annotated[
        str | None, typer.Option(help=field_help(PlanOptions, "encoder_preset"))
    ] = None,
) -> None:
    """Print the plan `heron run` would start for CONFIG: topology, streams, and each service
    with its settings (docs/run.md, "The plan").

    Nothing is written or started. The config's warnings go to stderr (and into the plan);
    a config that cannot run is refused with exit 1, naming file and line. `--format helm`
    prints the chart's values instead: each config with the text files it names, and its plan
    made for a pod; a model named by a relative path is refused (docs/deploy.md).
    """
    # Imported here so `heron --help` does not pay for the services' settings models.
    from pydantic import ValidationError

    from heron.core.plan.planner import plan_pipeline

    try:
        options = PlanOptions.model_validate(
            given(
                pipeline=pipeline,
                streammux=streammux,
                backend=backend,  # checked by the model
                triton_url=triton_url,
                triton_model=triton_model,
                intra_op_threads=threads,
                encoder_preset=encoder_preset,
            )
        )
    except ValidationError as e:
        raise invalid_options(e, {"intra_op_threads": "--threads"}) from None
    if output_format is PlanFormat.HELM:
        _print_helm_values(configs, options, pipeline)
        return
    if len(configs) != 1:
        raise fail(f"--format {output_format.value} prints one plan: give one config")
    config = configs[0]
    try:
        planned = plan_pipeline(config, options)
    except ConfigError as e:
        for diagnostic in e.diagnostics:
            typer.echo(str(diagnostic), err=True)
        raise typer.Exit(1) from None
    except (ValueError, OSError) as e:  # a source, an output file, the backend's options
        raise fail(f"{config}: {e}") from None
    for warning in planned.warnings:
        typer.echo(str(warning), err=True)
    if output_format is PlanFormat.YAML:
        data = planned.model_dump(mode="json")
        typer.echo(yaml.safe_dump(data, sort_keys=False, width=100).rstrip("\n"))
    else:
        typer.echo(planned.model_dump_json(indent=2))


def _print_helm_values(configs: list[Path], options: PlanOptions, name: str | None) -> None:
    """`--format helm`: the chart's `pipelines`, one entry per config (docs/deploy.md)."""
    from heron.core.plan.deploy import dump_values, helm_values

    try:
        values, made = helm_values(configs, options, name=name)
    except ConfigError as e:
        for diagnostic in e.diagnostics:
            typer.echo(str(diagnostic), err=True)
        raise typer.Exit(1) from None
    except (ValueError, OSError) as e:  # names, clashes, a source, the backend's options
        raise fail(str(e)) from None
    for one in made:
        for warning in one.plan.warnings:
            typer.echo(str(warning), err=True)
    typer.echo(dump_values(values), nl=False)


def main() -> None:  # pragma: no cover - `python -m heron.core.config.cli`
    app(sys.argv[1:])
