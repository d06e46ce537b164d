"""One backend for the bus loop and the Detector API's calls: one `infer` at a time.

The service's loop and every gRPC worker thread run the same model. Triton's client is not
safe to call from several threads (its shared-memory input region holds one batch), nor are
torch's CUDA graphs, so every call goes through one lock. What it costs: calls queue instead
of overlapping. On the CPU that is close to nothing, since one ONNX Runtime call already uses
the cores it was given. With Triton, it is the overlap of one call's transfer with another's
compute, and Triton's dynamic batching across callers. Callers hold the lock for one backend
call only (the Detector API makes one per `batch-size` images; preprocessing and
postprocessing run outside it), so the bus loop waits at most one such call behind a large
request.

Every outcome is also reported to `on_health` (when set): a call that found the backend
unavailable says "failing", one that succeeded says "serving". That is how gRPC health
follows the backend between the watcher's polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from heron.inference.backends.base import Backend, FloatArray
from heron.inference.errors import BackendUnavailableError, InferenceError


class BackendBusyError(InferenceError):
    """The backend stayed busy with other calls until the caller's deadline."""


class SharedBackend:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self.on_health: Callable[[bool], None] | None = None

    def infer(self, batch: FloatArray, timeout_s: float | None = None) -> dict[str, FloatArray]:
        """`backend.infer(batch)` once no other call runs; `timeout_s`: the longest wait for
        that (BackendBusyError past it; None: no limit)."""
        if not self._lock.acquire(timeout=-1 if timeout_s is None else max(timeout_s, 0.0)):
            raise BackendBusyError(
                f"the model was busy with other calls for the {timeout_s:.3f} s the call had left"
            )
        try:
            outputs = self.backend.infer(batch)
        except BackendUnavailableError:
            self._report(False)
            raise
        finally:
            self._lock.release()
        self._report(True)
        return outputs

    def _report(self, serving: bool) -> None:
        if self.on_health is not None:
            self.on_health(serving)
