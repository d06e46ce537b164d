"""The `heron` command: one entry point, one sub-command group per area.

Each area owns its commands in its own module (`heron.<area>.cli`); this file only
mounts them. Heavy libraries (torch, onnxruntime) are imported inside commands, so
`heron --help` and `heron config check` start fast on any image.
"""

from __future__ import annotations

import typer

from heron.cli import client as client_cli
from heron.core.config import cli as config_cli
from heron.engine import cli as engine_cli
from heron.run import cli as run_cli
from heron.training import cli as training_cli
from heron.training import job_cli, prune_cli
from heron.training.data import cli as data_cli

app = typer.Typer(
    name="heron",
    help="Heron: the TAO + DeepStream workflow as Kubernetes-native services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config_cli.app, name="config", help="Load and check pipeline/model/spec files.")
app.add_typer(data_cli.app, name="data", help="Convert, check and split data sets (KITTI).")
app.add_typer(
    client_cli.streams_app,
    name="streams",
    help="Add, list and remove a running pipeline's sources.",
)
app.add_typer(
    client_cli.models_app,
    name="models",
    help="Which version of the model each stream runs: get it, set it (canary, rollout).",
)
# The workflow's verbs sit at the top level, as TAO's commands do: train / evaluate / infer /
# export / prune, then calibrate / build-engine; train-job is the training Job (`python -m
# heron.training`: train → prune → retrain → evaluate → export → calibrate); run / demo start the
# streaming pipeline; watch / status / detect / model talk to it over gRPC.
for area in (training_cli, prune_cli, job_cli, engine_cli, run_cli, client_cli):
    app.registered_commands.extend(area.app.registered_commands)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
