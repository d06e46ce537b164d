"""Errors of the engine service: each names the file (and line or node) and what was wrong."""

from __future__ import annotations


class EngineError(Exception):
    """Base: a build request cannot go on; the message says why and what to do."""


class ModelFileError(EngineError):
    """An ONNX file is missing, unreadable, or not the detector shape the engine expects."""


class CalibCacheError(EngineError):
    """A TensorRT calibration cache does not parse (heron.core.int8's message: file:line: why)."""


class CalibrationError(EngineError):
    """Calibration cannot run: no images, too few for the batches asked, a bad image."""


class AccuracyGateError(EngineError):
    """INT8 lost more mAP than allowed; the message carries the per-class table."""


class BuilderUnavailableError(EngineError):
    """The TensorRT flavour asked for is not installed on this node."""


class ParseError(EngineError):
    """TensorRT's ONNX parser rejected the model (node, operator and message per error)."""


class BuildError(EngineError):
    """TensorRT parsed the model but could not build an engine."""


class PlanMismatchError(EngineError):
    """A plan was built for another GPU or TensorRT than this node has: rebuild it."""
