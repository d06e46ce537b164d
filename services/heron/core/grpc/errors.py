"""The errors a servicer method raises; the kit's interceptor turns each into its status code.

    raise InvalidArgumentError("min_confidence", "expected 0..1, got -0.5")
    # -> INVALID_ARGUMENT "min_confidence: expected 0..1, got -0.5"

Any other exception becomes INTERNAL "internal error; see the server's log": it is logged with
its traceback on the server and never sent, since a traceback tells a client nothing it can
act on and may tell an attacker a lot.
"""

from __future__ import annotations


class InvalidArgumentError(ValueError):
    """A request field is malformed: INVALID_ARGUMENT "field: problem"."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFoundError(LookupError):
    """An id the request names does not exist: NOT_FOUND."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class UnavailableError(RuntimeError):
    """A dependency (Redis, Triton) does not answer now; the client may retry: UNAVAILABLE."""
