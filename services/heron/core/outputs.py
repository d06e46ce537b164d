"""Output paths of the `heron` commands: checked before any work, written whole or not at all.

Every command that writes keeps three promises:

- its outputs never are or lie inside its inputs, and a folder it fills whole never holds one,
  so no command deletes or overwrites what it reads (`check_output`, called before the work
  starts, which also refuses paths of the wrong kind or where nothing can be written);
- an output appears only complete: a file is written under a temporary name beside it and
  renamed into place (`atomic_file`); folders are built in a temporary folder beside the entries
  they become and renamed into place (`staged_folder`); an earlier output is removed only after
  the new one is complete;
- a failed command removes only what it created: its temporary names and the folders it made.

Temporary names start with `.heron-tmp-`: hidden, and never a Triton model version.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

TEMP_PREFIX = ".heron-tmp-"


class OutputKind(StrEnum):
    """What a command writes at an output path."""

    FILE = "file"
    # A folder whose whole content the command writes (convert's OUT/images): holding one of
    # the inputs would mean replacing or mixing with what the command reads.
    FOLDER = "folder"
    # A folder the command adds its files to (a results folder, a Triton repository, a model
    # folder beside its calibration.bin): whatever else is there stays, inputs included.
    PARENT_FOLDER = "parent folder"


class OutputPathError(ValueError):
    """An output path a command cannot or must not write; the message names the option and why."""


def check_output(
    path: Path,
    kind: OutputKind,
    *,
    option: str,
    inputs: Iterable[Path | None] = (),
    overwrite: bool = True,
) -> None:
    """Raise OutputPathError when `path` overlaps an input, is the wrong kind or is not writable.

    `overwrite` False refuses an existing file, or a FOLDER that is not empty. Meant to run
    before the work starts, so a wrong path costs nothing.
    """
    problem = (
        _overlap(path, kind, [p for p in inputs if p is not None])
        or _kind_problem(path, kind, overwrite)
        or _writability_problem(path, kind)
    )
    if problem:
        raise OutputPathError(f"{option} {path}: {problem}")


def _overlap(path: Path, kind: OutputKind, inputs: list[Path]) -> str | None:
    target = path.resolve()
    for given in inputs:
        source = given.resolve()
        if target == source:
            return f"is the input {given}"
        if source in target.parents:
            return f"lies inside the input folder {given}"
        if kind is OutputKind.FOLDER and target in source.parents:
            return f"contains the input {given}"
    return None


def _kind_problem(path: Path, kind: OutputKind, overwrite: bool) -> str | None:
    if not path.exists():
        return None
    if kind is OutputKind.FILE:
        if path.is_dir():
            return "is an existing directory, expected a file path"
        if not path.is_file():
            # Renaming over /dev/null or a FIFO would replace it, as root even in /dev.
            return "is not a regular file"
        return None if overwrite else "already exists; pass --overwrite to replace it"
    if not path.is_dir():
        return "is an existing file, expected a folder"
    if kind is OutputKind.FOLDER and not overwrite and any(path.iterdir()):
        return "is not empty; pass --overwrite to replace it"
    return None


def _writability_problem(path: Path, kind: OutputKind) -> str | None:
    folder = path.parent if kind is OutputKind.FILE else path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder that the missing ones would be created in
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK) or not _can_create_in(folder):
        return f"the folder {_shown(folder)} is not writable"
    return None


def _can_create_in(folder: Path) -> bool:
    # os.access says yes to root everywhere but read-only mounts, /proc and /sys included:
    # creating a file is the one answer that holds.
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _shown(folder: Path) -> str:
    text = str(folder)
    return text if text.endswith(os.sep) else text + os.sep


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name beside `path` that ends like it, so writers that pick the format
    from the suffix (matplotlib, OpenCV) still do."""
    return path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{path.name}")


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it replaces `path`.

    The writer creates the file itself (so it gets the usual permissions). On success the file
    is flushed to disk, then renamed over `path`; on any failure the temporary file and the
    folders made for it are removed and `path` is left as it was.
    """
    created = make_folders(path.parent)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_folders(created)
        raise
    _fsync(path.parent)


@contextmanager
def staged_folder(folder: Path, *, merge: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder inside `folder`; on success move its entries into `folder`.

    Each entry replaces the one of the same name: a file by rename; a folder whole, the old one
    removed only once the new one is in place. With `merge`, a folder that already exists
    receives the staged files one by one instead, and keeps its others (`heron infer` adds
    predictions; a Triton version folder keeps the plans of other GPUs). On any failure the
    staging folder and the folders made for it are removed; `folder` is left as it was.
    """
    created = make_folders(folder)
    staging = folder / f"{TEMP_PREFIX}{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        _move_entries(staging, folder, merge=merge, aside=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_folders(created)
        raise
    shutil.rmtree(staging, ignore_errors=True)  # now only the replaced folders, if any
    _fsync(folder)


def _move_entries(source: Path, target: Path, *, merge: bool, aside: Path) -> None:
    # Folders first: a file that names another (a config naming its plan) lands after it.
    for entry in sorted(source.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            if merge:
                _move_entries(entry, destination, merge=True, aside=aside)
            else:
                _swap_folder(entry, destination, aside)
        else:
            os.replace(entry, destination)


def _swap_folder(new: Path, old: Path, aside: Path) -> None:
    # os.replace cannot replace a non-empty folder: move the old one into the staging folder
    # (deleted with it after every entry is in place), then the new one where it was.
    parked = temporary_sibling(aside / old.name)
    os.replace(old, parked)
    try:
        os.replace(new, old)
    except BaseException:
        os.replace(parked, old)
        raise


def make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return the ones made, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    missing.reverse()
    made = []
    for path in missing:
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            path.mkdir()
            made.append(path)
    return made


def remove_folders(made: list[Path]) -> None:
    """Undo `make_folders`: remove the folders it made, innermost first, if they are empty."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (some file systems refuse folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
