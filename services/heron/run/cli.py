"""`heron run` and `heron demo` (mounted at the top level of `heron` by heron.cli.main).

Only typer, the standard library and the options models load here (each option's default and
help are its model's, heron.core.options); the runner, the bus and the services' models load
inside the commands so `heron --help` stays fast.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from heron.core.cli_errors import invalid_options
from heron.core.options import field_help, given
from heron.run.options import RunOptions
from heron.run.supervisor import RestartPolicy

app = typer.Typer(no_args_is_help=True)


def _print(line: str) -> None:
    print(line, flush=True)


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(1)


def _run_dir(given: Path | None) -> Path:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given.resolve()
    return Path(tempfile.mkdtemp(prefix="heron-run-"))


@app.command()
def run(
    *,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="deepstream-app .txt or pipeline YAML.")
    ],
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            envvar="REDIS_URL",
            help="Redis to use; unset: start a private redis-server on a free loopback port.",
            show_default=False,
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            help="Where settings files and service logs go (default: a new temporary folder).",
        ),
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help=field_help(RunOptions, "pipeline"))] = None,
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
        str | None, typer.Option(help=field_help(RunOptions, "backend", "onnxruntime or triton."))
    ] = None,
    triton_url: Annotated[str | None, typer.Option(help=field_help(RunOptions, "triton_url"))] = (
        None
    ),
    triton_model: Annotated[
        str | None, typer.Option(help=field_help(RunOptions, "triton_model"))
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help=field_help(RunOptions, "intra_op_threads"))
    ] = None,
    encoder_preset: Annotated[
        str | None, typer.Option(help=field_help(RunOptions, "encoder_preset"))
    ] = None,
    grpc_listen: Annotated[
        str | None,
        typer.Option(
            "--grpc-listen", metavar="HOST:PORT", help=field_help(RunOptions, "grpc_listen")
        ),
    ] = None,
    detector_listen: Annotated[
        str | None,
        typer.Option(
            "--detector-listen",
            metavar="HOST:PORT",
            help=field_help(RunOptions, "detector_listen"),
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Stop after this many seconds (live sources never end).", show_default=False
        ),
    ] = None,
    max_fast_crashes: Annotated[
        int | None, typer.Option(help=field_help(RestartPolicy, "max_fast_crashes"))
    ] = None,
    max_unready_crashes: Annotated[
        int | None, typer.Option(help=field_help(RestartPolicy, "max_unready_crashes"))
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help=field_help(RunOptions, "in_process")),
    ] = False,
) -> None:
    """Run a pipeline's services as supervised processes, like deepstream-app -c."""
    from pydantic import ValidationError

    from heron.core.bus.errors import BusError
    from heron.core.config.diagnostics import ConfigError
    from heron.core.outputs import OutputKind, OutputPathError, check_output
    from heron.core.runtime.redact import redact_url
    from heron.run.runner import RunRequest, run_pipeline

    if run_dir is not None:  # settings files and logs are added to it: existing is fine
        try:
            check_output(run_dir, OutputKind.PARENT_FOLDER, option="--run-dir", inputs=(config,))
        except OutputPathError as e:
            raise _fail(str(e)) from None
    try:
        options = RunOptions.model_validate(
            given(
                pipeline=pipeline,
                streammux=streammux,
                backend=backend,  # checked by the model
                triton_url=triton_url,
                triton_model=triton_model,
                intra_op_threads=threads,
                encoder_preset=encoder_preset,
                grpc_listen=grpc_listen,
                detector_listen=detector_listen,
                in_process=in_process or None,
            )
        )
        policy = RestartPolicy.model_validate(
            given(max_fast_crashes=max_fast_crashes, max_unready_crashes=max_unready_crashes)
        )
    except ValidationError as e:
        raise invalid_options(e, {"intra_op_threads": "--threads"}) from None
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise _fail(f"--duration: expected a number of seconds above 0, got {duration:g}")
    if not config.is_file():
        raise _fail(f"{config}: no such file")
    if in_process and redis_url:
        raise _fail(
            "--in-process runs without Redis: its stages share queues in memory; drop --redis-url"
        )
    url = None if in_process else redis_url or os.environ.get("REDIS_URL") or None
    if url is not None:
        _check_redis(url)
    request = RunRequest(
        config=config,
        run_dir=_run_dir(run_dir),
        options=options,
        policy=policy,
        redis_url=url,
        max_duration_s=duration,
    )
    try:
        result = run_pipeline(request, out=_print)
    except ConfigError as e:
        raise _fail(str(e)) from None
    except BusError as e:  # Redis went away while the run started
        raise _fail(f"--redis-url {redact_url(url or '')}: {e}") from None
    except (ValueError, OSError, RuntimeError) as e:
        raise _fail(f"{config}: {e}") from None
    raise typer.Exit(result.exit_code)


def _check_redis(url: str) -> None:
    """The Redis of --redis-url (or REDIS_URL) answers, before anything starts: a wrong URL or
    a Redis that is not there is refused at once, naming the option, instead of after the
    bus's retries."""
    import redis
    from pydantic import ValidationError

    from heron.core.bus.connection import connect
    from heron.core.bus.settings import BusSettings
    from heron.core.runtime.redact import redact_url

    shown = redact_url(url)
    try:
        settings = BusSettings.model_validate({"url": url})
    except ValidationError as e:
        problem = e.errors()[0]["msg"].removeprefix("Value error, ").removeprefix("url: ")
        raise _fail(f"--redis-url {shown}: {problem}") from None
    client = connect(settings)
    try:
        client.ping()
    except redis.RedisError as e:
        raise _fail(
            f"--redis-url {shown}: Redis does not answer ({e}); start it there, or leave "
            "--redis-url and REDIS_URL unset to run a private redis-server"
        ) from None
    finally:
        client.close()


@app.command()
def demo(
    *,
    results_dir: Annotated[
        Path, typer.Option("--results-dir", "-r", help="Where the annotated MP4 and logs go.")
    ] = Path("results/demo"),
    video: Annotated[
        Path | None,
        typer.Option(
            help="Clip to run on (default: the face-mask clip in ../shared, else one "
            "made from public-domain photos).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="DetectNet_v2 ONNX to use instead of the committed model (or a short training).",
            show_default=False,
        ),
    ] = None,
    rtsp_port: Annotated[int, typer.Option(help="RTSP server port.")] = 8554,
    train_minutes: Annotated[
        float, typer.Option(help="Budget of the short training run when no model is committed.")
    ] = 3.0,
) -> None:
    """The face-mask pipeline on real faces: annotated MP4, RTSP on :8554/ds-test, perf lines."""
    from heron.run.demo import DemoError, run_demo

    try:
        code = run_demo(
            results_dir=results_dir.resolve(),
            video=video,
            model=model,
            rtsp_port=rtsp_port,
            train_minutes=train_minutes,
            out=_print,
        )
    except DemoError as e:
        raise _fail(str(e)) from None
    raise typer.Exit(code)
