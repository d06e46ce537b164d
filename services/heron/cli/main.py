"""The `heron` command: one entry point, one sub-command group per area.

Each area owns its commands in its own module (`heron.<area>.cli`); this file only
mounts them. Heavy libraries (torch, onnxruntime) are imported inside commands, so
`heron --help` and `heron config check` start fast on any image.
"""

from __future__ import annotations

import typer

from heron.core.config import cli as config_cli

app = typer.Typer(
    name="heron",
    help="Heron: the TAO + DeepStream workflow as Kubernetes-native services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config_cli.app, name="config", help="Load and check pipeline/model/spec files.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
