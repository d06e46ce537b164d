"""`python -m heron.run run -c CONFIG` and `python -m heron.run demo`: `heron run|demo`."""

from heron.run.cli import app

app(prog_name="heron")
