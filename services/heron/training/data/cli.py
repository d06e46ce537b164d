"""`heron data ...` commands: convert raw data sets to KITTI, check and split them."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
