"""Triton Inference Server over gRPC, with system shared memory inputs when co-located.

The client is built on first use, waits for server and model readiness, and is rebuilt after
any transport failure: a Triton restart costs the calls made while it is down (raised as
BackendUnavailableError for the service to retry), nothing else. Shared-memory regions do not
survive a restart, so they are registered again on the new server.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import numpy as np

from heron.core.backoff import Backoff
from heron.core.plan.settings.inference import TritonSettings
from heron.inference.backends.base import (
    FloatArray,
    ModelInfo,
    check_batch,
    concat_outputs,
    split_batches,
)
from heron.inference.errors import BackendError, BackendUnavailableError, ModelMismatchError

log = logging.getLogger(__name__)

# gRPC status codes that mean "the server is not there right now", not "the request is wrong".
TRANSIENT = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED"}
PROBE_TIMEOUT_S = 1.0
RECONNECT_WAIT_S = 1.0  # longest wait for readiness when reconnecting inside infer()
# Between readiness probes while connecting (heron.core.backoff): soon after a failed probe,
# then less often while a server or model takes its time to load.
READY_PROBE_INITIAL_S = 0.05
READY_PROBE_MAX_S = 1.0
DEFAULT_REGION_IMAGES = 16  # images the input region holds when the model sets no max batch
_regions = itertools.count()


class TritonBackend:
    """One model on one Triton server; thread-compatible, not thread-safe (one per thread)."""

    def __init__(self, settings: TritonSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._info: ModelInfo | None = None
        self._region: _InputRegion | None = None
        self._probe: Any = None
        # The version requests go to: the settings' or, when they leave it empty, the one
        # Triton serves at the first connection, kept after that so that loading another
        # version (SetModelVersions) never moves this backend's traffic to it.
        self.version = settings.model_version

    # --- connection ---------------------------------------------------------------------

    def connect(self, timeout_s: float | None = None) -> ModelInfo:
        """Wait until the server and the model are ready (or BackendUnavailableError)."""
        import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

        s = self.settings
        deadline = time.monotonic() + (s.ready_timeout_s if timeout_s is None else timeout_s)
        backoff = Backoff(READY_PROBE_INITIAL_S, READY_PROBE_MAX_S)
        last = "no answer yet"
        while True:
            if self._client is None:
                self._client = grpcclient.InferenceServerClient(s.url)
            try:
                if self._client.is_server_ready() and self._client.is_model_ready(
                    s.model_name, self.version
                ):
                    break
                last = f"server or model {s.model_name!r} not ready"
            except Exception as e:  # tritonclient wraps every transport error the same way
                last = _describe(e)
            left = deadline - time.monotonic()
            if left <= 0:
                self.reset()
                raise BackendUnavailableError(f"Triton at {s.url}: {last}")
            time.sleep(min(backoff.next(), left))
        if self._info is None:
            self._info = self._read_info()
            self.version = self._info.version
        if s.shared_memory:
            self._region = _InputRegion.for_model(self._client, self._info)
        return self._info

    def _read_info(self) -> ModelInfo:
        s = self.settings
        meta = self._client.get_model_metadata(s.model_name, s.model_version, as_json=True)
        config = self._client.get_model_config(s.model_name, s.model_version, as_json=True)
        inputs = meta.get("inputs", [])
        if len(inputs) != 1:
            names = [i.get("name") for i in inputs]
            raise ModelMismatchError(
                f"Triton model {s.model_name!r}: expected 1 input, got {names}"
            )
        shape = [int(d) for d in inputs[0]["shape"]]
        max_batch = int(config.get("config", {}).get("max_batch_size", 0))
        dims = shape[1:] if len(shape) == 4 else shape
        if max_batch == 0 and len(shape) == 4 and shape[0] > 0:
            max_batch = shape[0]  # no batching in Triton: the model's own (fixed) batch
        if len(dims) != 3 or min(dims) < 1 or inputs[0].get("datatype") != "FP32":
            raise ModelMismatchError(
                f"Triton model {s.model_name!r}: input {inputs[0].get('name')!r} must be FP32 "
                f"NCHW with fixed C, H, W, got {inputs[0].get('datatype')} {shape}"
            )
        versions = meta.get("versions") or [s.model_version or "?"]
        return ModelInfo(
            name=s.model_name,
            version=s.model_version or str(versions[-1]),
            input_name=inputs[0]["name"],
            input_shape=(dims[0], dims[1], dims[2]),
            output_names=tuple(o["name"] for o in meta.get("outputs", [])),
            max_batch_size=max_batch,
        )

    def model_info(self) -> ModelInfo:
        return self._info if self._info is not None else self.connect()

    def ready(self) -> bool:
        """Server and model ready right now, asked by a client of its own: readiness probes
        run on the HTTP server's thread, never on the inference thread's client."""
        import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

        s = self.settings
        try:
            if self._probe is None:
                self._probe = grpcclient.InferenceServerClient(s.url)
            return bool(
                self._probe.is_server_ready(client_timeout=PROBE_TIMEOUT_S)
                and self._probe.is_model_ready(
                    s.model_name, self.version, client_timeout=PROBE_TIMEOUT_S
                )
            )
        except Exception:  # unreachable or any other failure is "not ready"
            return False

    # --- inference ----------------------------------------------------------------------

    def infer(self, batch: FloatArray) -> dict[str, FloatArray]:
        info = self.model_info()
        batch = check_batch(batch, info)
        return concat_outputs(
            [self._infer_one(c) for c in split_batches(batch, info.max_batch_size)]
        )

    def _infer_one(self, batch: FloatArray) -> dict[str, FloatArray]:
        retried = False
        while True:
            if self._client is None:
                # Short: the service retries with backoff, and its loop must keep ticking.
                self.connect(timeout_s=min(self.settings.ready_timeout_s, RECONNECT_WAIT_S))
            try:
                return self._request(batch)
            except BackendError:
                raise
            except Exception as e:  # classified below; tritonclient has one exception type
                if _status(e) in TRANSIENT:
                    self.reset()
                    raise BackendUnavailableError(
                        f"Triton at {self.settings.url}: {_describe(e)}"
                    ) from e
                if not retried and self._region is not None and "shared memory" in str(e):
                    # The server forgot the region (restarted between calls): register again.
                    log.warning("Triton lost the input region; registering it again")
                    self._region.register(self._client)
                    retried = True
                    continue
                if not self._model_ready():
                    self.reset()
                    raise BackendUnavailableError(
                        f"Triton model {self.settings.model_name!r} is not ready: {_describe(e)}"
                    ) from e
                raise BackendError(f"Triton refused the request: {_describe(e)}") from e

    def _request(self, batch: FloatArray) -> dict[str, FloatArray]:
        import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

        info = self._info
        if info is None:
            raise BackendUnavailableError("Triton: not connected")
        tensor = grpcclient.InferInput(info.input_name, list(batch.shape), "FP32")
        if self._region is not None and batch.nbytes > self._region.byte_size:
            # Only a model without max_batch_size can send more than the region was sized for.
            self._region.release(self._client)
            self._region = _InputRegion(batch.nbytes)
            self._region.register(self._client)
        if self._region is not None:
            self._region.write(batch, tensor)
        else:
            tensor.set_data_from_numpy(batch)
        outputs = [grpcclient.InferRequestedOutput(n) for n in info.output_names]
        result = self._client.infer(
            self.settings.model_name,
            [tensor],
            model_version=self.version,
            outputs=outputs,
            client_timeout=self.settings.request_timeout_s,
        )
        return {n: np.asarray(result.as_numpy(n), np.float32) for n in info.output_names}

    def _model_ready(self) -> bool:
        try:
            return bool(self._client.is_model_ready(self.settings.model_name, self.version))
        except Exception:  # unreachable counts as not ready
            return False

    # --- life cycle ---------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the client (and the server-side registration); the next call reconnects."""
        if self._region is not None:
            self._region.release(self._client)
            self._region = None
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a channel to a dead server may fail; nothing to keep
                log.debug("closing the Triton client failed", exc_info=True)
        self._client = None

    def close(self) -> None:
        self.reset()
        if self._probe is not None:
            self._probe.close()
            self._probe = None


class _InputRegion:
    """A system shared-memory region that holds one input batch, registered with Triton."""

    def __init__(self, byte_size: int) -> None:
        import tritonclient.utils.shared_memory as shm  # type: ignore[import-untyped,unused-ignore]

        n = next(_regions)
        self.name = f"heron-input-{os.getpid()}-{n}"
        self.key = f"/heron_input_{os.getpid()}_{n}"
        self.byte_size = byte_size
        self.handle = shm.create_shared_memory_region(self.name, self.key, byte_size)
        self.registered = False

    @classmethod
    def for_model(cls, client: Any, info: ModelInfo) -> _InputRegion:
        images = info.max_batch_size or DEFAULT_REGION_IMAGES
        c, h, w = info.input_shape
        region = cls(images * c * h * w * 4)
        region.register(client)
        return region

    def register(self, client: Any) -> None:
        try:
            client.unregister_system_shared_memory(self.name)
        except Exception:  # not registered (a fresh server): that is what we want
            log.debug("region %s was not registered", self.name)
        client.register_system_shared_memory(self.name, self.key, self.byte_size)
        self.registered = True

    def write(self, batch: FloatArray, tensor: Any) -> None:
        import tritonclient.utils.shared_memory as shm  # type: ignore[import-untyped,unused-ignore]

        shm.set_shared_memory_region(self.handle, [batch])
        tensor.set_shared_memory(self.name, batch.nbytes)

    def release(self, client: Any) -> None:
        import tritonclient.utils.shared_memory as shm  # type: ignore[import-untyped,unused-ignore]

        if client is not None and self.registered:
            try:
                client.unregister_system_shared_memory(self.name)
            except Exception:  # the server may be gone; its registrations went with it
                log.debug("unregistering %s failed", self.name, exc_info=True)
        shm.destroy_shared_memory_region(self.handle)


def _status(e: Exception) -> str:
    status = getattr(e, "status", None)
    return str(status()) if callable(status) else ""


def _describe(e: Exception) -> str:
    message = getattr(e, "message", None)
    text = message() if callable(message) else str(e)
    return f"{_status(e) or type(e).__name__}: {text}"
