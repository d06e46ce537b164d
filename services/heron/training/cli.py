"""`heron train | evaluate | infer | export` commands (TAO-compatible flags).

Only typer and rich are imported here; torch, onnxruntime and OpenCV load inside the commands
so `heron --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from heron.core.cli_errors import check_outputs, fail
from heron.core.outputs import OutputKind, atomic_file
from heron.training.cli_options import (
    Compile,
    CudnnBenchmark,
    Device,
    Key,
    ResultsDir,
    ShowProgress,
    SpecFile,
    job_settings,
)

app = typer.Typer(no_args_is_help=True)


def _console() -> Console:
    return Console(highlight=False)


@app.command()
def train(
    *,
    experiment_spec: SpecFile,
    results_dir: ResultsDir,
    key: Key = None,
    device: Device = None,
    compile: Compile = None,
    progress: ShowProgress = None,
    cudnn_benchmark: CudnnBenchmark = None,
) -> None:
    """Train DetectNet_v2 from a TAO spec; resumes from RESULTS_DIR/checkpoints/last.pt."""
    del key  # accepted, never used or printed
    # The Job's model checks the options and holds their defaults (TrainOptions').
    settings = job_settings(
        spec=experiment_spec, results=results_dir, device=device, compile=compile,
        progress=progress, cudnn_benchmark=cudnn_benchmark,
    )  # fmt: skip
    # An existing results folder is how training resumes (RESULTS_DIR/checkpoints/last.pt).
    check_outputs(
        (results_dir, OutputKind.PARENT_FOLDER, "--results_dir"), inputs=(experiment_spec,)
    )
    from heron.training.job import TrainingError, run_training

    try:
        result = run_training(
            experiment_spec, results_dir, settings.train_options(), rich_logs=True
        )
    except TrainingError as e:
        raise fail(str(e)) from None
    _console().print(
        f"trained {result.epochs} epochs ({result.steps} steps) in {result.wall_s:.0f} s, "
        f"{result.images_per_s:.0f} images/s; final model {result.final_model}"
    )


@app.command()
def evaluate(
    *,
    model: Annotated[Path, typer.Option("--model", "-m", help="Checkpoint (.pt) or ONNX.")],
    data: Annotated[Path, typer.Option(help="KITTI folder (images/, labels/).")],
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the report here; the precision/recall curves go beside it "
            "(REPORT.curves.json).",
        ),
    ] = None,
    pr_curve: Annotated[
        Path | None, typer.Option(help="PR curve PNG (default: beside --json or the model).")
    ] = None,
    key: Key = None,
) -> None:
    """Per-class AP and mAP (TAO semantics) of MODEL on a KITTI folder."""
    del key
    png = pr_curve or (json_out or model).with_suffix(".pr.png")
    curves = json_out.with_suffix(".curves.json") if json_out else None
    checked = []
    if json_out and curves:
        checked = [(json_out, OutputKind.FILE, "--json"), (curves, OutputKind.FILE, "--json")]
    check_outputs(*checked, (png, OutputKind.FILE, "--pr-curve"), inputs=(model, data))
    from heron.training.job import TrainingError, evaluate_model

    try:
        result = evaluate_model(model, data)
    except TrainingError as e:
        raise fail(str(e)) from None
    table = Table("class", "AP", "ground truth", "detections", title=f"{model.name} on {data}")
    for c in result.report.classes:
        table.add_row(
            c.name, f"{c.average_precision:.4f}", str(c.num_ground_truth), str(c.num_detections)
        )
    table.add_row("mAP", f"{result.mean_ap:.4f}", "", "")
    _console().print(table)
    from heron.training.validation import write_pr_curves

    with atomic_file(png) as tmp:
        write_pr_curves(result, tmp)
    _console().print(f"PR curves: {png}")
    if json_out and curves:
        # The curves go beside the report: they grow with the detections, the report does not.
        with atomic_file(curves) as tmp:
            tmp.write_text(result.report.curves_json())
        with atomic_file(json_out) as tmp:
            tmp.write_text(result.report.summary_json(curves_file=curves.name))
        _console().print(f"report: {json_out}\nprecision/recall per detection: {curves}")


@app.command()
def infer(
    *,
    model: Annotated[Path, typer.Option("--model", "-m", help="Checkpoint (.pt) or ONNX.")],
    images: Annotated[Path, typer.Option("--images", "-i", help="An image or a folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Keep (write and draw) only detections scoring at least this. Default: the "
            "spec's post-processing thresholds, which a spec tuned for AP sets low.",
            show_default=False,
        ),
    ] = None,
    key: Key = None,
) -> None:
    """KITTI prediction files (OUT/labels) and annotated JPEGs (OUT/images)."""
    del key
    check_outputs(
        (output, OutputKind.PARENT_FOLDER, "--output"),
        *((output / sub, OutputKind.FOLDER, "--output") for sub in ("labels", "images")),
        inputs=(model, images),
    )
    from heron.training.infer import infer_images
    from heron.training.job import TrainingError

    try:
        count, boxes = infer_images(model, images, output, batch_size, threshold)
    except TrainingError as e:
        raise fail(str(e)) from None
    kept = f" scoring at least {threshold:g}" if threshold is not None else ""
    _console().print(f"{count} images, {boxes} detections{kept} → {output}/labels, {output}/images")


@app.command()
def export(
    *,
    model: Annotated[Path, typer.Option("--model", "-m", help="Checkpoint (.pt).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output_file", "-o", help="ONNX file to write (.pt2: a torch.export program)."
        ),
    ],
    check_images: Annotated[
        Path | None, typer.Option(help="Image or folder for the PyTorch/ONNX parity check.")
    ] = None,
    max_check_images: Annotated[int, typer.Option(min=1)] = 8,
    key: Key = None,
) -> None:
    """ONNX export (input_1 → output_cov/Sigmoid, output_bbox/BiasAdd; dynamic batch).

    An output ending in .pt2 writes a torch.export program for the PyTorch CUDA backend.
    """
    del key
    check_outputs((output, OutputKind.FILE, "--output_file"), inputs=(model, check_images))
    from heron.training.job import TrainingError, export_model

    try:
        report = export_model(model, output, check_images, max_check_images)
    except TrainingError as e:
        raise fail(str(e)) from None
    what = "real images" if report.real_images else "random inputs"
    runtime = "torch.export" if output.suffix.lower() == ".pt2" else "ONNX Runtime"
    _console().print(
        f"wrote {report.onnx}; {runtime} vs PyTorch on {report.images} {what}: max abs "
        f"difference {report.max_abs_diff:.3g} (cov {report.max_abs_diff_cov:.3g}, "
        f"bbox {report.max_abs_diff_bbox:.3g})"
    )
    if report.cpu_form is not None:
        _console().print(
            f"QAT model: {report.onnx} is the TensorRT Q/DQ (INT8) model; {report.cpu_form} "
            "the same INT8 grid for ONNX Runtime on a CPU (uint8 activations)"
        )
