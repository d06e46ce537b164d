"""Each streaming service's settings model, one module per service.

They live in the core, not in the services, because the plan (`heron.core.plan.model`) holds
them typed: the runner, the chart and the operator build the same objects the services load.
"""
