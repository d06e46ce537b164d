"""`heron data ...` commands: convert raw data sets to KITTI, check and split them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from heron.core.cli_errors import fail, invalid_options
from heron.core.config.diagnostics import ConfigError, Severity
from heron.core.outputs import OutputKind, OutputPathError, check_output
from heron.evaluation.errors import DataFormatError
from heron.training.data.check import CheckReport, check_kitti
from heron.training.data.convert import KITTI_FOLDERS, ConvertReport, convert_samples
from heron.training.data.formats import FORMATS, SourceFormat
from heron.training.data.sample import parse_class_map

if TYPE_CHECKING:
    from heron.training.data.split import SplitSettings

app = typer.Typer(no_args_is_help=True)


class PartitionMode(StrEnum):
    RANDOM = "random"
    SEQUENCE = "sequence"


def _console() -> Console:
    return Console(highlight=False)


def parse_size(text: str) -> tuple[int, int]:
    """'960x544' -> (960, 544)."""
    width, sep, height = text.lower().partition("x")
    if sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0:
        return int(width), int(height)
    raise typer.BadParameter(
        f"expected WIDTHxHEIGHT such as 960x544, got {text!r}", param_hint="'--size'"
    )


@app.command()
def convert(
    *,
    format: Annotated[SourceFormat, typer.Option("--format", "-f", help="Source data set format.")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Source data set folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="KITTI folder to write.")],
    size: Annotated[str, typer.Option(help="Output image size WIDTHxHEIGHT.")] = "960x544",
    class_map: Annotated[
        str | None,
        typer.Option(
            help="SOURCE=TARGET,... Classes left out are dropped and counted. "
            "Default: the format's own (voc: with_mask=mask,without_mask=no-mask,"
            "mask_weared_incorrect=no-mask; lower case, as the committed spec reads them)."
        ),
    ] = None,
    min_size: Annotated[
        float,
        typer.Option(min=0, help="Drop boxes narrower or shorter than this (output pixels)."),
    ] = 4.0,
    images: Annotated[
        Path | None, typer.Option(help="Image folder, when not where the format puts it.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding/encoding images.")] = 2,
    overwrite: Annotated[
        bool, typer.Option(help="Replace OUTPUT/images and OUTPUT/labels if they hold files.")
    ] = False,
) -> None:
    """Convert a raw data set to KITTI: resize images, scale/clamp boxes, map classes."""
    out_size = parse_size(size)
    info = FORMATS[format]
    try:
        mapping = parse_class_map(class_map) if class_map else dict(info.default_class_map)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--class-map") from None
    if not input.is_dir():
        raise fail(f"{input} is not a folder")
    try:
        _check_convert_output(output, (input, images), overwrite=overwrite)
    except OutputPathError as e:
        raise fail(str(e)) from None
    console = _console()
    try:
        samples = list(info.read(input, images))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"converting {len(samples)} images", total=len(samples))
            report = convert_samples(
                samples,
                output,
                class_map=mapping,
                size=out_size,
                min_size=min_size,
                workers=workers,
                overwrite=overwrite,
                on_image=lambda: progress.advance(task),
            )
    except (DataFormatError, FileExistsError, OutputPathError) as e:
        raise fail(str(e)) from None
    print_convert_report(report, console)


def _check_convert_output(
    output: Path, inputs: tuple[Path | None, ...], *, overwrite: bool
) -> None:
    """OUTPUT may hold other things (a split folder); OUTPUT/images and OUTPUT/labels are
    replaced whole, so they must hold no input and, without --overwrite, nothing at all."""
    check_output(output, OutputKind.PARENT_FOLDER, option="--output", inputs=inputs)
    for sub in KITTI_FOLDERS:
        check_output(
            output / sub, OutputKind.FOLDER, option="--output", inputs=inputs, overwrite=overwrite
        )


def print_convert_report(report: ConvertReport, console: Console) -> None:
    counts = report.boxes
    size = f"{report.size[0]}x{report.size[1]}"
    console.print(f"{report.output}: {report.images} images at {size}", soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("source class", no_wrap=True)
    table.add_column("KITTI", no_wrap=True)
    # Short headers keep the table within 80 columns; the legend below spells them out.
    for column in ("boxes", "written", "clamped", "small", "unmapped"):
        table.add_column(column, justify="right", min_width=len(column))
    for source in sorted(counts.seen):
        table.add_row(
            source,
            report.class_map.get(source, "-"),
            *(str(c[source]) for c in (counts.seen, counts.written, counts.clamped)),
            *(str(c[source]) for c in (counts.too_small, counts.unmapped)),
        )
    totals = (counts.seen, counts.written, counts.clamped, counts.too_small, counts.unmapped)
    table.add_row("total", "", *(str(c.total()) for c in totals), style="bold")
    console.print(table)
    per_target = ", ".join(f"{k}: {v}" for k, v in sorted(report.written_per_target().items()))
    console.print(f"written per class: {per_target or 'none'}")
    console.print(f"images without any box (negative samples): {report.negative_images}")
    console.print(
        "clamped: written after clamping to the image; small: dropped, narrower or shorter "
        "than --min-size; unmapped: dropped, class not in --class-map"
    )


@app.command()
def check(
    kitti_dir: Annotated[Path, typer.Argument(help="KITTI folder (images/, labels/).")],
    classes: Annotated[
        str | None, typer.Option(help="Known classes, comma-separated (default: any).")
    ] = None,
    image_dir: Annotated[str, typer.Option(help="Image folder name.")] = "images",
    label_dir: Annotated[str, typer.Option(help="Label folder name.")] = "labels",
) -> None:
    """Check a KITTI folder; every problem names file:line. Exit 1 when any is an error."""
    known = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    report = check_kitti(kitti_dir, known, image_dir, label_dir)
    print_check_report(report, _console())
    if not report.ok:
        raise typer.Exit(1)


def print_check_report(report: CheckReport, console: Console) -> None:
    for diagnostic in report.diagnostics.items:
        console.print(
            str(diagnostic),
            markup=False,
            soft_wrap=True,  # one finding per line, so editors and grep can jump to file:line
            style="red" if diagnostic.severity is Severity.ERROR else "yellow",
        )
    console.print(f"{report.root}: {report.images} images, {report.labels} label files")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("class")
    table.add_column("objects", justify="right")
    for name, count in sorted(report.objects.items()):
        table.add_row(name, str(count))
    console.print(table)
    errors, warnings = len(report.diagnostics.errors), len(report.diagnostics.warnings)
    verdict = "[green]ok[/green]" if report.ok else "[red]FAILED[/red]"
    console.print(f"{verdict}: {errors} errors, {warnings} warnings")


@app.command()
def split(
    *,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for fold-<i>.txt.")],
    kitti_dir: Annotated[
        Path | None, typer.Argument(help="KITTI folder (or give -d SPEC instead).")
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option("--dataset-export-spec", "-d", help="TAO dataset_convert spec file."),
    ] = None,
    val_split: Annotated[float, typer.Option(help="Percent of images in fold 0.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Shuffle seed (random mode).")] = 42,
    partition_mode: Annotated[
        PartitionMode, typer.Option(help="TAO's partition modes.")
    ] = PartitionMode.RANDOM,
    num_partitions: Annotated[
        int | None, typer.Option(help="Folds (random: 2; sequence: default 1).")
    ] = None,
    sequence_map: Annotated[
        str, typer.Option(help="Sequence -> frames JSON, relative to the KITTI folder.")
    ] = "kitti_seq_to_map.json",
) -> None:
    """Partition a KITTI folder into folds like TAO's dataset_convert (no TFRecords)."""
    # pydantic models cost ~0.1 s to build: only `split` pays for them.
    from pydantic import ValidationError

    from heron.training.data.split import (
        SplitSettings,
        split_dataset,
        split_inputs,
        write_partitions,
    )

    if (kitti_dir is None) == (spec is None):
        raise typer.BadParameter("give either KITTI_DIR or -d SPEC, not both or neither")
    try:
        if spec is not None:
            settings = _settings_from_spec(spec, seed)
        elif kitti_dir is not None:
            random_mode = partition_mode is PartitionMode.RANDOM
            settings = SplitSettings(
                root=kitti_dir,
                partition_mode=partition_mode.value,
                num_partitions=(2 if random_mode else 1)
                if num_partitions is None
                else num_partitions,
                val_split=val_split,
                seed=seed,
                sequence_map=sequence_map,
            )
        # The folds are files added to OUTPUT: it may hold other files, never be read from.
        inputs = (*split_inputs(settings), spec)
        check_output(output, OutputKind.PARENT_FOLDER, option="--output", inputs=inputs)
        summary = write_partitions(split_dataset(settings), output)
    except ValidationError as e:
        raise invalid_options(e, {"root": "KITTI_DIR"}) from None
    except (DataFormatError, ConfigError, OutputPathError) as e:
        raise fail(str(e)) from None
    _print_split(summary, output)


def _settings_from_spec(spec: Path, seed: int) -> SplitSettings:
    # The spec loader lives in heron.core (issue 2); imported here so `heron --help` stays fast.
    from heron.core.config.tao import load_dataset_convert_spec
    from heron.training.data.split import settings_from_kitti_config
    from heron.v1.tao.dataset_export_config_pb2 import DatasetExportConfig

    loaded = load_dataset_convert_spec(spec)
    for warning in loaded.diagnostics:
        _console().print(str(warning), style="yellow", markup=False, soft_wrap=True)
    message = loaded.message
    if not isinstance(message, DatasetExportConfig):  # the loader's type is the base Message
        raise TypeError(f"expected DatasetExportConfig, got {type(message).__name__}")
    if message.WhichOneof("convert_config_type") != "kitti_config":
        raise DataFormatError(spec, 0, "only kitti_config specs can be split", "kitti_config")
    return settings_from_kitti_config(message.kitti_config, spec.parent, seed)


def _print_split(summary: dict[str, Any], output: Path) -> None:
    console = _console()
    console.print(f"{summary['root']} -> {output} ({summary['mode']}, seed {summary['seed']})")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("fold")
    table.add_column("images", justify="right")
    table.add_column("objects per class")
    for fold in summary["folds"]:
        objects = ", ".join(f"{k}: {v}" for k, v in fold["objects"].items())
        role = " (validation)" if fold["fold"] == summary["validation_fold"] else ""
        table.add_row(f"{fold['fold']}{role}", str(fold["images"]), objects)
    console.print(table)
    unassigned = summary["unassigned"]
    if unassigned:
        console.print(
            f"[yellow]{len(unassigned)} images are in no sequence, so in no fold[/yellow]"
        )
