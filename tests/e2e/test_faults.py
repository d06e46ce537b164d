"""`heron run` under faults: killed services and Redis, a sink that cannot write, a killed run.

Each fault is injected the hard way (SIGKILL, a filesystem turned read-only) while frames flow,
and the output file is counted afterwards: a run that says it succeeded has every frame once.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from heron.run.plan import has_main
from heron.run.runner import RunRequest, run_pipeline

from tests.e2e.conftest import Clip, count_frames, write_app
from tests.e2e.harness import Output, heron_run, port_closed
from tests.ingest.clips import make_clip, read_number

FLOWING = re.compile(r"^\*\*PERF:  [1-9]")
REDIS_STARTED = re.compile(r"started redis-server on 127\.0\.0\.1:(\d+)")

needs_overlay = pytest.mark.skipif(
    not has_main("heron.overlay"), reason="heron.overlay is not installed"
)


def kill_repeatedly(root: int, name: str, cycles: int, every_s: float) -> list[int]:
    """SIGKILL the process of `name` (module or program) under `root`, `cycles` times,
    waiting for its successor each time; returns the killed pids."""
    killed: list[int] = []
    for _ in range(cycles):
        time.sleep(every_s)
        victim = wait_for_process(root, name, exclude=killed)
        victim.kill()
        killed.append(victim.pid)
    wait_for_process(root, name, exclude=killed)  # it came back after the last kill too
    return killed


def wait_for_process(
    root: int, name: str, exclude: list[int], timeout: float = 30.0
) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            family = psutil.Process(root).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        found = [p for p in family if p.pid not in exclude and name in " ".join(_cmdline(p))]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {name} process under pid {root} within {timeout:g} s")


def _cmdline(proc: psutil.Process) -> list[str]:
    """A process's command line; [] for one that exited or is a zombie (one such child, a
    finished helper, must not hide the others from the search)."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """2,000 frames: the test model runs the real clip's 635 in about two seconds, less than
    two kills of Redis and its restarts take."""
    path = make_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=2000, fps=25)
    return Clip(path, 2000, False)


@pytest.fixture(scope="module")
def numbered_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """600 frames that carry their numbers: long enough to outlast two overlay restarts."""
    path = make_clip(tmp_path_factory.mktemp("numbered") / "numbered.mp4", frames=600, fps=25)
    return Clip(path, 600, False)


def numbers_in(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [read_number(f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def run_killing(config: Path, run_dir: Path, name: str, cycles: int, every_s: float) -> list[str]:
    """`heron run` on `config`, SIGKILLing `name` `cycles` times once frames flow; asserts the
    run still ended by itself with exit 0, and returns its output lines."""
    proc = heron_run(config, run_dir)
    out = Output(proc)
    try:
        out.wait_for(FLOWING, timeout=90)
        killed = kill_repeatedly(proc.pid, name, cycles=cycles, every_s=every_s)
        assert proc.wait(timeout=180) == 0, "\n".join(out.rest())
    finally:
        proc.kill()
    assert len(killed) == cycles
    return out.rest()


@needs_overlay
def test_a_killed_overlay_resumes_its_recording_with_every_frame_once(
    tmp_path: Path, model_dir: Path, clip: Clip
) -> None:
    """Three SIGKILLs of the overlay mid-run: each restart continues the MP4."""
    output = tmp_path / "out.mp4"
    config = write_app(tmp_path, model_dir, clip.path.as_uri(), output=output)
    lines = run_killing(config, tmp_path / "run", "heron.overlay", cycles=3, every_s=1.5)
    assert any("restarts: overlay 3" in line for line in lines), lines
    assert "frames lost: none" in lines, lines
    assert count_frames(output) == clip.frames
    assert not output.with_name("out.mp4.parts").exists()


# Ten kills of every service, the numbered clip read back: tests/e2e/test_fault_matrix.py.


def test_a_killed_redis_is_started_again_with_its_data_and_nothing_is_lost(
    tmp_path: Path, model_dir: Path, long_clip: Clip
) -> None:
    output = tmp_path / "out.mp4" if has_main("heron.overlay") else None
    config = write_app(tmp_path, model_dir, long_clip.path.as_uri(), output=output)
    lines = run_killing(config, tmp_path / "run", "redis-server", cycles=2, every_s=1.0)
    assert sum("redis-server died" in line for line in lines) == 2, lines
    frames = f"frames out of the last stage: source-0: {long_clip.frames}"
    assert frames in "\n".join(lines), lines
    assert "frames lost: none" in lines, lines
    if output is not None:
        assert count_frames(output) == long_clip.frames


def test_a_private_redis_that_will_not_come_back_ends_the_run_with_the_reason(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    lines: list[str] = []
    request = RunRequest(
        # A looping source: the 150-frame clip can pass in under the second the kill waits.
        config=write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True),
        run_dir=tmp_path / "run",
        max_redis_restarts=0,
        on_started=lambda _plan, _sup: kill_soon("redis-server", 1.0),
    )
    result = run_pipeline(request, out=lines.append)
    assert result.exit_code == 1
    assert result.reason.startswith("gave up on redis-server: it died (exit -9)"), lines
    assert "redis.log" in result.reason


def test_a_users_redis_that_stays_away_ends_the_run_with_the_reason(
    tmp_path: Path, model_dir: Path, short_clip: Clip, redis_server: object
) -> None:
    from tests.support.redis_server import RedisServer

    assert isinstance(redis_server, RedisServer)
    lines: list[str] = []
    request = RunRequest(
        config=write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True),
        run_dir=tmp_path / "run",
        redis_url=redis_server.url,
        redis_give_up_s=3.0,
        on_started=lambda _plan, _sup: threading.Timer(2.0, redis_server.stop).start(),
    )
    started = time.monotonic()
    result = run_pipeline(request, out=lines.append)
    assert result.exit_code == 1
    assert re.match(r"Redis at redis://127\.0\.0\.1:\d+/0 did not answer for \d+ s", result.reason)
    assert time.monotonic() - started < 60, "it waited for the services' own give-up"


def kill_soon(name: str, after_s: float) -> None:
    """SIGKILL this process's child called `name` after `after_s` seconds (in a thread)."""

    def kill() -> None:
        import os

        wait_for_process(os.getpid(), name, exclude=[]).kill()

    threading.Timer(after_s, kill).start()


def test_a_sigkilled_run_leaves_nothing_running(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    try:
        port = int(out.wait_for(REDIS_STARTED).group(1))
        out.wait_for(FLOWING, timeout=90)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert any("redis-server" in " ".join(p.cmdline()) for p in family)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    deadline = time.monotonic() + 20
    while (alive := [p for p in family if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"survivors: {alive}"
    assert port_closed(port)


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie (a dead child whose killed parent can no longer reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@needs_overlay
def test_an_output_file_that_is_a_folder_is_refused_before_anything_starts(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    output = tmp_path / "out.mp4"
    output.mkdir()
    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), output=output)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    assert proc.wait(timeout=60) == 1
    text = "\n".join(out.rest())
    assert "[sink0] output-file" in text and "is an existing directory" in text, text
    assert "Traceback" not in text
    assert "started redis-server" not in text


needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("nsenter") is None,
    reason="needs unshare and nsenter (util-linux) to mount a filesystem for the test",
)


def on_tmpfs(folder: Path, options: str) -> tuple[str, ...]:
    """A prefix that runs the command in a mount namespace of its own, with a fresh tmpfs
    mounted on `folder` (`-o options`): a full or read-only disk without touching the
    machine's."""
    script = f'mount -t tmpfs -o {options} tmpfs "{folder}" && exec "$@"'
    return ("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh")


def mount_namespace_works(folder: Path) -> bool:
    probe = subprocess.run([*on_tmpfs(folder, "size=1m"), "true"], capture_output=True, check=False)
    return probe.returncode == 0


def run_on_tmpfs(tmp_path: Path, model_dir: Path, clip: Clip, options: str) -> tuple[int, str]:
    """`heron run` recording into a tmpfs mounted with `options`; its exit code and output."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not mount_namespace_works(disk):
        pytest.skip("mount namespaces are not permitted here")
    config = write_app(tmp_path, model_dir, clip.path.as_uri(), output=disk / "out.mp4")
    proc = heron_run(config, tmp_path / "run", prefix=on_tmpfs(disk, options))
    out = Output(proc)
    try:
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    return code, "\n".join(out.rest())


@needs_unshare
@needs_overlay
def test_a_recording_whose_disk_fills_up_fails_the_run_with_the_reason(
    tmp_path: Path, model_dir: Path, clip: Clip
) -> None:
    code, text = run_on_tmpfs(tmp_path, model_dir, clip, "size=256k")
    assert code == 1, text
    assert "gave up on overlay" in text and "a restart cannot mend" in text
    assert "No space left on device" in text  # the reason, on the terminal
    assert "every source ended" not in text


@needs_unshare
@needs_overlay
def test_a_read_only_output_folder_is_refused_before_anything_starts(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    code, text = run_on_tmpfs(tmp_path, model_dir, short_clip, "ro")
    assert code == 1, text
    assert "out.mp4" in text and "not writable" in text, text
    assert "Traceback" not in text and "started redis-server" not in text
