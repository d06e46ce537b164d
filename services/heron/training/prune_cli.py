"""`heron prune`: TAO-style structured pruning of a DetectNet_v2 checkpoint.

Only typer and rich are imported here; torch and torch-pruning load inside the command so
`heron --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from heron.core.cli_errors import fail
from heron.core.outputs import OutputKind, OutputPathError, check_output
from heron.training.cli_options import Key

if TYPE_CHECKING:
    from heron.training.prune.pruner import PruneReport

app = typer.Typer(no_args_is_help=True)


def _console() -> Console:
    return Console(highlight=False)


@app.command()
def prune(
    *,
    model: Annotated[
        Path, typer.Option("--model", "--pretrained_model", "-m", "-pm", help="Checkpoint (.pt).")
    ],
    output: Annotated[
        Path, typer.Option("--output_file", "--output", "-o", help="Pruned checkpoint to write.")
    ],
    pth: Annotated[
        float,
        typer.Option("--pth", "-pth", help="Threshold on the normalised filter norm, in [0, 1]."),
    ] = 0.1,
    normalizer: Annotated[
        str,
        typer.Option("--normalizer", "-n", help="max: divide by the layer's largest norm; L2."),
    ] = "max",
    equalization: Annotated[
        str,
        typer.Option(
            "--equalization",
            "--equalization_criterion",
            "-eq",
            help="Joining layers' scores: union, intersection, arithmetic_mean, geometric_mean.",
        ),
    ] = "union",
    granularity: Annotated[
        int,
        typer.Option(
            "--granularity", "--pruning_granularity", "-pg", help="Kept counts round up to this."
        ),
    ] = 8,
    min_filters: Annotated[
        int,
        typer.Option("--min-filters", "--min_num_filters", "-nf", help="Filters kept at least."),
    ] = 16,
    key: Key = None,
) -> None:
    """Remove filters whose normalised norm is under PTH; residual-joined layers together."""
    del key  # accepted, never used or printed
    try:
        check_output(output, OutputKind.FILE, option="--output_file", inputs=(model,))
    except OutputPathError as e:
        raise fail(str(e)) from None
    from heron.training.checkpoint import CheckpointError
    from heron.training.prune.layout import PrunedModelError
    from heron.training.prune.pruner import PruneError, PruneOptions, prune_checkpoint

    console = _console()
    try:
        options = PruneOptions(
            threshold=pth,
            normalizer=normalizer,  # type: ignore[arg-type]  # checked by PruneOptions
            equalization=equalization,  # type: ignore[arg-type]
            granularity=granularity,
            min_filters=min_filters,
        )
        report = prune_checkpoint(model, output, options)  # written atomically (ckpt.save)
    except (PruneError, CheckpointError, PrunedModelError) as e:
        raise fail(str(e)) from None
    console.print(report_table(report, model.name))
    console.print(f"{len(report.channels)} convolutions narrowed; pruned model: {output}")


def report_table(report: PruneReport, title: str) -> Table:
    width, height = report.input_size
    table = Table("", "parameters", "GMACs", "GFLOPs", title=f"{title} at {width}×{height}")
    for name, cost in (("before", report.before), ("after", report.after)):
        table.add_row(
            name, f"{cost.parameters:,}", f"{cost.macs / 1e9:.3f}", f"{cost.flops / 1e9:.3f}"
        )
    table.add_row(
        "kept",
        f"{_share(report.after.parameters, report.before.parameters)}",
        f"{_share(report.after.macs, report.before.macs)}",
        f"{_share(report.after.flops, report.before.flops)}",
    )
    return table


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "-"
