"""heron.core.outputs: output paths refused before work starts, files and folders written whole,
failures undone without touching what was there before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from heron.core.outputs import (
    TEMP_PREFIX,
    OutputKind,
    OutputPathError,
    atomic_file,
    check_output,
    staged_folder,
)

FILE, FOLDER, PARENT = OutputKind.FILE, OutputKind.FOLDER, OutputKind.PARENT_FOLDER


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An input folder with one image in images/."""
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "a.jpg").write_text("pixels")
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("relative", "kind", "given", "reason"),
    [
        ("data", PARENT, "data", "is the input {data}"),
        ("data/images/a.jpg", FILE, "data/images/a.jpg", "is the input {data}/images/a.jpg"),
        ("data/kitti", PARENT, "data", "lies inside the input folder {data}"),
        ("data/images/out.json", FILE, "data", "lies inside the input folder {data}"),
        (".", FOLDER, "data/images/a.jpg", "contains the input {data}/images/a.jpg"),
    ],
    ids=["is", "is a file", "inside", "file inside", "contains"],
)
def test_outputs_overlapping_an_input_are_refused(
    data: Path, relative: str, kind: OutputKind, given: str, reason: str
) -> None:
    path = data.parent / relative
    with pytest.raises(OutputPathError) as error:
        check_output(path, kind, option="--output", inputs=[data.parent / given, None])
    assert str(error.value) == f"--output {path}: " + reason.format(data=data)


def test_a_parent_folder_may_hold_inputs(data: Path) -> None:
    # e.g. calibrate -o models/facemask with models/facemask/model.onnx: files are only added
    check_output(data.parent, PARENT, option="-o", inputs=[data / "images" / "a.jpg"])


def test_a_symlinked_output_is_seen_through(data: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(data)
    with pytest.raises(OutputPathError, match="is the input"):
        check_output(tmp_path / "link", PARENT, option="-o", inputs=[data])


@pytest.mark.parametrize(
    ("make", "kind", "overwrite", "reason"),
    [
        ("dir", FILE, True, "is an existing directory, expected a file path"),
        ("file", FOLDER, True, "is an existing file, expected a folder"),
        ("file", PARENT, True, "is an existing file, expected a folder"),
        ("file", FILE, False, "already exists; pass --overwrite to replace it"),
        ("full dir", FOLDER, False, "is not empty; pass --overwrite to replace it"),
    ],
)
def test_outputs_of_the_wrong_kind_are_refused(
    tmp_path: Path, make: str, kind: OutputKind, overwrite: bool, reason: str
) -> None:
    path = tmp_path / "out"
    if make == "file":
        path.write_text("x")
    else:
        path.mkdir()
        if make == "full dir":
            (path / "old.txt").write_text("x")
    with pytest.raises(OutputPathError) as error:
        check_output(path, kind, option="-o", overwrite=overwrite)
    assert str(error.value) == f"-o {path}: {reason}"


@pytest.mark.parametrize(
    ("make", "kind"),
    [(None, FILE), (None, FOLDER), ("file", FILE), ("empty dir", FOLDER), ("full dir", PARENT)],
)
def test_acceptable_outputs_pass(tmp_path: Path, make: str | None, kind: OutputKind) -> None:
    path = tmp_path / "new" / "deeper" / "out"
    if make == "file":
        path.parent.mkdir(parents=True)
        path.write_text("old")
    elif make is not None:
        path.mkdir(parents=True)
        if make == "full dir":
            (path / "checkpoints").mkdir()  # train -r resumes into its own results
    check_output(path, kind, option="-o", overwrite=make != "empty dir")
    assert not (tmp_path / "new").exists() or make is not None  # checking creates nothing


def test_a_device_is_not_an_output_file() -> None:
    # os.replace over /dev/null would replace the device node itself (tests run as root).
    with pytest.raises(OutputPathError, match="is not a regular file"):
        check_output(Path("/dev/null"), FILE, option="--json")


@pytest.mark.parametrize("kind", [FILE, FOLDER, PARENT])
def test_a_path_under_a_regular_file_is_refused(tmp_path: Path, kind: OutputKind) -> None:
    (tmp_path / "somefile").write_text("x")
    path = tmp_path / "somefile" / "sub" / "out.onnx"
    with pytest.raises(OutputPathError) as error:
        check_output(path, kind, option="-o")
    assert str(error.value) == f"-o {path}: {tmp_path / 'somefile'} is a file, not a folder"


@pytest.mark.parametrize("kind", [FILE, FOLDER, PARENT])
def test_a_read_only_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: OutputKind
) -> None:
    # Root ignores permission bits, so the read-only folder is simulated where it is asked.
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != read_only and real_access(p, mode))
    path = read_only / "new" / "out.onnx"
    with pytest.raises(OutputPathError) as error:
        check_output(path, kind, option="--output")
    assert str(error.value) == f"--output {path}: the folder {read_only}/ is not writable"


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_a_folder_root_cannot_write_in_is_refused(folder: str) -> None:
    # Without the monkeypatch: os.access says yes to root there, creating a file fails.
    if not os.path.ismount(folder):
        pytest.skip(f"{folder} is not mounted here")
    with pytest.raises(OutputPathError, match=f"the folder {folder}/ is not writable"):
        check_output(Path(folder) / "model.onnx", FILE, option="--output")


def test_a_relative_output_names_its_folder_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(OutputPathError) as error:
        check_output(Path("results/x.onnx"), FILE, option="--output")
    assert str(error.value) == "--output results/x.onnx: the folder results/ is not writable"


def test_atomic_file_replaces_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("old")
    with atomic_file(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("-model.onnx")  # suffix kept
        tmp.write_text("new")
        assert path.read_text() == "old"  # not yet
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_file_gives_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "plan"
    with atomic_file(path) as tmp:
        tmp.write_text("x")
    (tmp_path / "plain").write_text("x")
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_a_failed_atomic_file_leaves_the_old_file_and_removes_what_it_made(
    tmp_path: Path,
) -> None:
    (tmp_path / "kept.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "kept.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert _tree(tmp_path) == {"kept.json": "old"}
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "new" / "a" / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert _tree(tmp_path) == {"kept.json": "old"}  # the folders it made are gone too


def _earlier_conversion(out: Path) -> None:
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True)
        (out / sub / f"old.{sub}").write_text("old")
    (out / "split").mkdir()
    (out / "split" / "fold-0.txt").write_text("mine")


def test_staged_folder_replaces_folders_whole_and_keeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "kitti"
    _earlier_conversion(out)
    with staged_folder(out) as staging:
        assert staging.parent == out and staging.name.startswith(TEMP_PREFIX)
        for sub in ("images", "labels"):
            (staging / sub).mkdir()
            (staging / sub / f"new.{sub}").write_text("new")
        (staging / "report.json").write_text("{}")
        assert (out / "images" / "old.images").is_file()  # nothing moves before the end
    assert _tree(out) == {
        "images": "/",
        "images/new.images": "new",
        "labels": "/",
        "labels/new.labels": "new",
        "report.json": "{}",
        "split": "/",
        "split/fold-0.txt": "mine",
    }


def test_staged_folder_merge_adds_files_to_existing_folders(tmp_path: Path) -> None:
    out = tmp_path / "pred"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "other.txt").write_text("other")
    (out / "labels" / "a.txt").write_text("old")
    with staged_folder(out, merge=True) as staging:
        (staging / "labels").mkdir()
        (staging / "labels" / "a.txt").write_text("new")
        (staging / "images").mkdir()
        (staging / "images" / "a.jpg").write_text("jpg")
    assert _tree(out) == {
        "images": "/",
        "images/a.jpg": "jpg",
        "labels": "/",
        "labels/a.txt": "new",
        "labels/other.txt": "other",
    }


def test_a_failed_staged_folder_leaves_everything_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "kitti"
    _earlier_conversion(out)
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match="unreadable"), staged_folder(out) as staging:
        (staging / "images").mkdir()
        (staging / "images" / "new.jpg").write_text("half")
        raise ValueError("image b.jpg is unreadable")
    assert _tree(tmp_path) == before
    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "made" / "out") as staging:
        (staging / "images").mkdir()
        raise KeyboardInterrupt
    assert _tree(tmp_path) == before  # the folders it created are removed as well
