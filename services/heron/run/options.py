"""What `heron run` decides beyond the pipeline config: one model, whose fields are the
command's options (their defaults and help come from here, heron.core.options)."""

from __future__ import annotations

from heron.core.plan.options import PlanOptions


class RunOptions(PlanOptions):
    """What `heron run` decides beyond the pipeline config: the plan's options (PlanOptions),
    and those of a local run, which no other runner of the plan has."""
