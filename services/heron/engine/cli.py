"""`heron calibrate`, `heron build-engine` and `heron publish-onnx` (mounted at the top level, as
TAO's commands are).

Only typer, rich and the options models load here; onnx, onnxruntime and TensorRT load inside
the commands. Each option's default is its model's (heron.core.options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from heron.core.cli_errors import check_outputs, fail, invalid_options
from heron.core.options import field_help, given
from heron.core.outputs import OutputKind, atomic_file
from heron.core.progress import Reporter
from heron.engine.options import BuildOptions, CalibrationOptions, GateOptions

app = typer.Typer(no_args_is_help=True)


def _console() -> Console:
    return Console(highlight=False)


@app.command()
def calibrate(
    *,
    model: Annotated[Path, typer.Option("--model", "-m", help="FP32 ONNX (heron export).")],
    images: Annotated[Path, typer.Option(help=field_help(CalibrationOptions, "images"))],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    batches: Annotated[
        int | None, typer.Option(min=1, help=field_help(CalibrationOptions, "batches"))
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help=field_help(CalibrationOptions, "batch_size"))
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help=field_help(CalibrationOptions, "method", "auto, entropy, percentile, minmax.")
        ),
    ] = None,
    percentile: Annotated[
        float | None, typer.Option(help=field_help(CalibrationOptions, "percentile"))
    ] = None,
    select_data: Annotated[
        Path | None, typer.Option(help=field_help(CalibrationOptions, "select_data"))
    ] = None,
    search_budget: Annotated[
        float | None, typer.Option(help=field_help(CalibrationOptions, "search_budget_s"))
    ] = None,
    keep_fp: Annotated[str | None, typer.Option(help=field_help(CalibrationOptions, "keep_fp"))] = (
        None
    ),
    keep_fp_max: Annotated[
        int | None, typer.Option(min=0, help=field_help(CalibrationOptions, "keep_fp_max"))
    ] = None,
    cache_calibrator: Annotated[
        str | None,
        typer.Option(
            help=field_help(
                CalibrationOptions,
                "cache_calibrator",
                "EntropyCalibration2 (what nvinfer reads), MinMaxCalibration, LegacyCalibration.",
            )
        ),
    ] = None,
    sensitivity_images: Annotated[
        int | None,
        typer.Option(min=1, help=field_help(CalibrationOptions, "sensitivity_images")),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            help="KITTI folder of held-out gate images: compare INT8 AP with FP32 (never the "
            "calibration or select images)."
        ),
    ] = None,
    max_ap_drop: Annotated[
        float | None,
        typer.Option(
            min=0,
            help=field_help(
                GateOptions,
                "max_ap_drop",
                "Applied whenever --eval-data is given (a large value only reports).",
            ),
        ),
    ] = None,
    json_report: Annotated[Path | None, typer.Option("--json", help="Write a JSON report.")] = None,
) -> None:
    """INT8 calibration: calibration.bin (TensorRT/DeepStream), Q/DQ ONNX for TensorRT and a
    U8S8 ONNX for ONNX Runtime on CPU; with --eval-data, per-class AP against FP32."""
    from pydantic import ValidationError

    from heron.engine.accuracy import check_gate
    from heron.engine.calibrate import OUTPUT_FILES
    from heron.engine.errors import EngineError
    from heron.engine.pipeline import calibrate_and_compare

    if max_ap_drop is not None and eval_data is None:
        raise fail("--max-ap-drop needs --eval-data (a KITTI validation folder)")
    # OUTPUT may hold other files, the model among them (DeepStream keeps calibration.bin
    # beside model.onnx): only the files calibration writes must not be inputs.
    outputs = [(output, OutputKind.PARENT_FOLDER, "--output")]
    outputs += [(output / name, OutputKind.FILE, "--output") for name in OUTPUT_FILES]
    if json_report is not None:
        outputs.append((json_report, OutputKind.FILE, "--json"))
    check_outputs(*outputs, inputs=(model, images, eval_data, select_data))
    try:
        options = CalibrationOptions.model_validate(
            given(
                images=images,
                batches=batches,
                batch_size=batch_size,
                method=method,
                percentile=percentile,
                select_data=select_data,
                search_budget_s=search_budget,
                keep_fp=keep_fp,
                keep_fp_max=keep_fp_max,
                sensitivity_images=sensitivity_images,
                cache_calibrator=cache_calibrator,
            )
        )
    except ValidationError as e:
        raise invalid_options(e) from None
    console = _console()
    try:
        with Reporter(console, unit="batches") as progress:
            progress.stage("calibrating")
            outcome = calibrate_and_compare(
                model,
                output,
                options,
                eval_data,
                progress.update,
                on_stage=progress.stage,
                on_candidate=lambda done, total, text: progress.update(
                    done, total, text=text, force=True
                ),
            )
    except EngineError as e:
        raise fail(str(e)) from None
    c = outcome.calibration
    console.print(
        f"calibrated {c.tensors} tensors on {c.images} images ({c.batches} batches, "
        f"{c.recipe.label}) in {c.seconds:.1f} s (histograms {c.histogram_seconds:.1f} s)\n  "
        f"{c.cache}\n  {c.qdq_model}\n  {c.cpu_model}",
        markup=False,
    )
    if c.search is not None:
        scored = ", ".join(f"{s.recipe.label} {s.worst_drop:.2f}" for s in c.search.candidates)
        console.print(
            f"method chosen on the select images: {c.recipe.label} (worse form's mAP drop: "
            f"{scored})",
            markup=False,
        )
    elif options.method.value == "auto":
        console.print(
            f"method: {c.recipe.label}, auto's fallback (no --select-data to choose on)",
            markup=False,
        )
    for image_set in outcome.image_sets:
        f = image_set.fingerprint()
        console.print(
            f"{f['role']} images: {f['count']} ({f['source']}; names sha256 "
            f"{f['names_sha256'][:12]})",
            markup=False,
        )
    kept = ", ".join(c.kept_float) or "none"
    console.print(f"TensorRT Q/DQ layers kept in float: {kept}", markup=False)
    for report in outcome.reports:
        console.print(f"{report.label}:\n{report.table()}", markup=False)
    if json_report is not None:
        with atomic_file(json_report) as tmp:
            tmp.write_text(json.dumps(outcome.summary(), indent=2) + "\n")
    if outcome.reports:  # the gate is on whenever there is something to score on
        limit = GateOptions.model_validate(given(max_ap_drop=max_ap_drop)).max_ap_drop
        try:
            check_gate(outcome.reports, limit, outcome.next_steps(limit))
        except EngineError as e:
            raise fail(str(e)) from None
        console.print(f"accuracy gate passed: INT8 loses at most {limit:g} mAP points")


@app.command("build-engine")
def build_engine(
    *,
    onnx: Annotated[Path, typer.Option(help=field_help(BuildOptions, "onnx"))],
    output: Annotated[Path, typer.Option("--output", "-o", help="Triton model repository.")],
    precision: Annotated[
        str | None, typer.Option(help=field_help(BuildOptions, "precision"))
    ] = None,
    calib_cache: Annotated[
        Path | None, typer.Option(help=field_help(BuildOptions, "calib_cache"))
    ] = None,
    builder: Annotated[str | None, typer.Option(help=field_help(BuildOptions, "builder"))] = None,
    targets: Annotated[str | None, typer.Option(help=field_help(BuildOptions, "targets"))] = None,
    min_batch: Annotated[
        int | None, typer.Option(min=1, help=field_help(BuildOptions, "min_batch"))
    ] = None,
    opt_batch: Annotated[
        int | None, typer.Option(min=1, help=field_help(BuildOptions, "opt_batch"))
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(min=1, help=field_help(BuildOptions, "max_batch"))
    ] = None,
    model_name: Annotated[str, typer.Option(help="Model name in the repository.")] = "detector",
    version: Annotated[int | None, typer.Option(min=1, help="Default: the next version.")] = None,
    timing_cache: Annotated[
        Path | None, typer.Option(help=field_help(BuildOptions, "timing_cache"))
    ] = None,
) -> None:
    """Build a TensorRT engine and publish it with config.pbtxt into a Triton repository."""
    from pydantic import ValidationError

    from heron.engine.errors import EngineError
    from heron.engine.pipeline import build_and_publish
    from heron.engine.plan_meta import read_metadata

    # A repository grows: other models and versions stay, and it may hold the inputs.
    check_outputs((output, OutputKind.PARENT_FOLDER, "--output"), inputs=(onnx, calib_cache))
    names = None if targets is None else [t.strip() for t in targets.split(",") if t.strip()]
    try:
        options = BuildOptions.model_validate(
            given(
                onnx=onnx,
                precision=precision,
                builder=builder,
                calib_cache=calib_cache,
                targets=names,
                min_batch=min_batch,
                opt_batch=opt_batch,
                max_batch=max_batch,
                timing_cache=timing_cache,
            )
        )
    except ValidationError as e:
        raise invalid_options(e, {"calib_cache": "--calib-cache", "onnx": "--onnx"}) from None
    try:
        published = build_and_publish(options, output, model_name, version)
    except EngineError as e:
        raise fail(str(e)) from None
    meta = read_metadata(published["plan"])
    _console().print(
        f"built {meta.precision} {meta.flavour} {meta.trt_version} plan "
        f"({meta.plan_bytes / 1e6:.1f} MB, {meta.build_seconds:.2f} s) → {published['plan']}"
    )


@app.command("publish-onnx")
def publish_onnx(
    *,
    onnx: Annotated[
        Path, typer.Option(help="The ONNX to publish (FP32, or the INT8 U8S8 model of calibrate).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Triton model repository.")],
    model_name: Annotated[
        str, typer.Option(help="Model name in the repository.")
    ] = "detector_onnx",
    version: Annotated[int | None, typer.Option(min=1, help="Default: the next version.")] = None,
    max_batch: Annotated[
        int, typer.Option(min=1, help="max_batch_size of the config (the ONNX's batch axis).")
    ] = BuildOptions.model_fields["max_batch"].default,
) -> None:
    """Publish an ONNX model, as it is, for ONNX Runtime: `<output>/<name>/<version>/model.onnx`
    with its config.pbtxt (Triton's onnxruntime backend on CPU nodes; Heron's inference on CPU)."""
    from heron.engine.errors import EngineError
    from heron.engine.pipeline import publish_for_onnx_runtime

    check_outputs((output, OutputKind.PARENT_FOLDER, "--output"), inputs=(onnx,))
    if not onnx.is_file():
        raise fail(f"--onnx: {onnx} is not a file")
    try:
        published = publish_for_onnx_runtime(onnx, output, model_name, version, max_batch)
    except EngineError as e:
        raise fail(str(e)) from None
    _console().print(f"published {onnx.name} for ONNX Runtime → {published}")
