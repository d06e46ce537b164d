"""POSIX shared-memory segments without `multiprocessing.shared_memory`'s tracker pitfalls.

`multiprocessing.shared_memory.SharedMemory` (Python 3.11, 3.12) registers *every* instance
with the process's resource tracker, attached ones included (gh-82300). A reader process that
attaches to a writer's segment therefore unlinks it when it exits and prints "resource_tracker:
There appear to be N leaked shared_memory objects" -- the writer's frames vanish under it. The
usual work-around (unregister right after attaching) breaks when reader and writer share one
tracker (same process, or a forked child): the tracker's registry is a set, so the reader's
unregister removes the writer's entry and the writer's own unlink later makes the tracker
print a KeyError traceback. Python 3.13 added `track=False` for exactly this.

So this module opens segments itself, with the same system calls SharedMemory uses:
- the creator registers the segment with the resource tracker, so a writer that crashes
  still gets its segment unlinked (bounded memory), and unregisters when it unlinks;
- an attaching reader never touches the tracker: it cannot unlink what it did not create.
"""

from __future__ import annotations

import contextlib
import importlib
import mmap
import os
from multiprocessing import resource_tracker
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import SegmentNotFoundError
from heron.core.framestore.names import check_segment_name

_TRACKER_TYPE = "shared_memory"


class _PosixShm(Protocol):
    def shm_open(self, path: str, flags: int, mode: int = 0o777) -> int: ...

    def shm_unlink(self, path: str) -> None: ...


# The C module behind multiprocessing.shared_memory (POSIX only); it ships no type stubs.
_shm = cast(_PosixShm, importlib.import_module("_posixshmem"))


class Segment:
    """One mapped segment; read-only when attached read-only (views are then read-only too)."""

    def __init__(self, name: str, mapping: mmap.mmap, *, owner: bool, writable: bool) -> None:
        self.name = name
        self.size = len(mapping)
        self.owner = owner
        self.writable = writable
        self._mmap: mmap.mmap | None = mapping
        self._unlinked = False

    @classmethod
    def create(cls, name: str, size: int, mode: int = 0o600) -> Segment:
        """A new segment of `size` bytes; FileExistsError if the name is taken."""
        check_segment_name(name)
        if size < 1:
            raise ValueError(f"segment {name!r}: expected a size of at least 1 byte, got {size}")
        fd = _shm.shm_open(f"/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
        try:
            os.ftruncate(fd, size)
            mapping = mmap.mmap(fd, size)
        except OSError:
            os.close(fd)
            _shm.shm_unlink(f"/{name}")
            raise
        os.close(fd)
        # Unlinked by the tracker if this process dies without unlinking it.
        resource_tracker.register(f"/{name}", _TRACKER_TYPE)
        return cls(name, mapping, owner=True, writable=True)

    @classmethod
    def attach(cls, name: str, *, writable: bool = False) -> Segment:
        """Map an existing segment; never registered with the resource tracker."""
        check_segment_name(name)
        flags = os.O_RDWR if writable else os.O_RDONLY
        try:
            fd = _shm.shm_open(f"/{name}", flags, 0o600)
        except FileNotFoundError:
            raise SegmentNotFoundError(
                f"shared-memory segment {name!r} does not exist (its writer may have exited, "
                "or it runs on another host: use inline JPEG across hosts)"
            ) from None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise SegmentNotFoundError(f"shared-memory segment {name!r} is empty")
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            mapping = mmap.mmap(fd, size, access=access)
        finally:
            os.close(fd)
        return cls(name, mapping, owner=False, writable=writable)

    @staticmethod
    def exists(name: str) -> bool:
        """Whether a segment of that name exists now (its writer has not unlinked it)."""
        try:
            fd = _shm.shm_open(f"/{check_segment_name(name)}", os.O_RDONLY, 0o600)
        except FileNotFoundError:
            return False
        os.close(fd)
        return True

    @property
    def closed(self) -> bool:
        return self._mmap is None

    @property
    def mapping(self) -> mmap.mmap:
        if self._mmap is None:
            raise ValueError(f"segment {self.name!r} is closed")
        return self._mmap

    def array(self, dtype: np.dtype[Any], count: int, offset: int) -> npt.NDArray[Any]:
        """A flat zero-copy view. Made with np.frombuffer on purpose: its memoryview base holds
        a buffer export on the mmap, so the mapping cannot be closed under a live view
        (np.ndarray(buffer=...) releases the export at once and would dangle)."""
        return np.frombuffer(self.mapping, dtype=dtype, count=count, offset=offset)

    def close(self) -> None:
        """Unmap. If numpy views of the segment are still alive, the mapping stays until the
        last of them is garbage-collected (closing it under them would crash the process)."""
        if self._mmap is None:
            return
        mapping, self._mmap = self._mmap, None
        # Views still alive keep the mmap open; it is unmapped when the last one is freed.
        with contextlib.suppress(BufferError):
            mapping.close()

    def unlink(self) -> None:
        """Remove the name (creator only); mappings that exist stay valid until closed."""
        if not self.owner:
            raise PermissionError(
                f"segment {self.name!r} was attached, not created, by this process: only its "
                "creator unlinks it"
            )
        if self._unlinked:
            return  # a second unregister would make the tracker print a KeyError
        self._unlinked = True
        with contextlib.suppress(FileNotFoundError):  # already removed by hand
            _shm.shm_unlink(f"/{self.name}")
        resource_tracker.unregister(f"/{self.name}", _TRACKER_TYPE)
