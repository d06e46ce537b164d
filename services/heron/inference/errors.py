"""Errors of the inference service; the type says whether to retry or to dead-letter."""

from __future__ import annotations


class InferenceError(Exception):
    """Base of the inference service's errors."""


class BackendUnavailableError(InferenceError):
    """The backend cannot serve right now (Triton down, restarting, model not ready): retry."""


class BackendError(InferenceError):
    """The backend refused the request for a reason retrying will not fix (shape, dtype)."""


class ModelMismatchError(InferenceError, ValueError):
    """The model does not fit the nvinfer config (input dims, output names, classes)."""


class BadFrameError(InferenceError, ValueError):
    """A frame whose pixels cannot be had or used: dead-lettered with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason  # a short label: bad_frame, frame_overwritten, ...
        super().__init__(f"{reason}: {detail}")
