"""`python -m heron.ingest -c PIPELINE [--settings FILE]`: run the ingest service.

`-c` names the pipeline config (deepstream-app txt or YAML) whose enabled sources are opened;
`--settings` the service settings file (YAML/JSON; the runtime's `--config`). A pipeline that
cannot be opened is reported before anything starts, with exit code 2.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_BAD_PIPELINE = 2


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m heron.ingest", description="Decode the pipeline's sources onto the bus."
    )
    parser.add_argument(
        "-c",
        "--pipeline-config",
        type=Path,
        help="deepstream-app txt or pipeline YAML (default: HERON_PIPELINE_CONFIG)",
    )
    parser.add_argument("--settings", help="service settings file, YAML or JSON")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    from heron.core.config.diagnostics import ConfigError
    from heron.core.plan.settings.ingest import IngestSettings
    from heron.core.plan.sources import SourceConfigError
    from heron.core.runtime import run_service
    from heron.ingest.service import IngestService, PipelineConfigMissingError, plan

    args = _arguments(sys.argv[1:] if argv is None else argv)
    if args.pipeline_config is not None:
        try:
            plan(args.pipeline_config)
        except (ConfigError, SourceConfigError, PipelineConfigMissingError, OSError) as e:
            print(f"{args.pipeline_config}: {e}", file=sys.stderr)
            return EXIT_BAD_PIPELINE
    service = functools.partial(IngestService, pipeline=args.pipeline_config)
    forwarded = ["--config", args.settings] if args.settings else []
    return run_service(service, IngestSettings, forwarded)


if __name__ == "__main__":
    sys.exit(main())
