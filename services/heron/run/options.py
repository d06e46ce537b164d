"""What `heron run` decides beyond the pipeline config: one model, whose fields are the
command's options (their defaults and help come from here, heron.core.options)."""

from __future__ import annotations

from pydantic import Field

from heron.core.plan.options import PlanOptions


class RunOptions(PlanOptions):
    """What `heron run` decides beyond the pipeline config: the plan's options (PlanOptions),
    and those of a local run, which no other runner of the plan has."""

    in_process: bool = Field(
        False,
        description="Run every service as a thread of this process, on in-memory queues "
        "instead of Redis (as deepstream-app runs one process): least overhead on a laptop or a "
        "small box; nothing is restarted, a failing stage ends the run.",
    )
