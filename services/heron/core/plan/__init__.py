"""The typed pipeline plan: a deepstream-app config or pipeline YAML → the services to run and
the settings each one gets (docs/run.md, "The plan").

One plan, three runners: `heron run` starts it as processes, the Helm chart and the operator
render it into Kubernetes objects. Modules: `options` (what shapes a plan beyond the config),
`model` (the plan itself), `planner` (`plan_pipeline`), `sources` (the config's streams),
`settings` (each streaming service's settings model), `frame_rate` (a file's frame rate).
Nothing is re-exported here: a service that imports its settings model should not load the
planner with it.
"""
