"""`python -m heron.ingest [-c PIPELINE] [--settings FILE]`: run the ingest service.

`-c` names the pipeline config (deepstream-app txt or YAML) whose enabled sources are opened;
`--settings` the service settings file (YAML/JSON; the runtime's `--config`). typer parses them,
as every Heron command line; the settings themselves are the runtime's (pydantic-settings). A
pipeline that cannot be opened is reported before anything starts, naming `--pipeline-config`,
with exit code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

PROG = "python -m heron.ingest"

# It runs in pods: plain one-line errors and help, no rich panels.
app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
def ingest(
    pipeline_config: Annotated[
        Path | None,
        typer.Option(
            "--pipeline-config",
            "-c",
            help="deepstream-app txt or pipeline YAML (default: the settings' pipeline_config, "
            "HERON_PIPELINE_CONFIG).",
            show_default=False,
        ),
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            help="Service settings file, YAML or JSON (the other services' --config; default: "
            "HERON_CONFIG_FILE).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Decode the pipeline's sources onto the bus."""
    from heron.core.config.diagnostics import ConfigError
    from heron.core.plan.settings.ingest import IngestSettings
    from heron.core.plan.sources import SourceConfigError
    from heron.core.runtime import run_service
    from heron.ingest.service import IngestService, PipelineConfigMissingError, plan

    if pipeline_config is not None:
        try:
            plan(pipeline_config)
        except (ConfigError, SourceConfigError, PipelineConfigMissingError, OSError) as e:
            said = str(e) if str(pipeline_config) in str(e) else f"{pipeline_config}: {e}"
            raise typer.BadParameter(said, param_hint=["--pipeline-config"]) from None
    service = functools.partial(IngestService, pipeline=pipeline_config)
    forwarded = ["--config", str(settings)] if settings is not None else []
    raise typer.Exit(run_service(service, IngestSettings, forwarded))


def main(argv: Sequence[str] | None = None) -> int:
    """The service's exit status (heron.core.runtime.shutdown's codes; 2: a bad command line)."""
    try:
        app(args=list(sys.argv[1:] if argv is None else argv), prog_name=PROG)
    except SystemExit as e:  # typer's standalone mode ends every run with one
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
