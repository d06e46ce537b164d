"""`python -m heron.training`: the Kubernetes training Job (`heron.training.job_cli`; the same
command is `heron train-job`). `python -m heron.training --help` lists its options and the
HERON_TRAIN_* variables that stand in for them."""

import sys

from heron.training.job_cli import main

sys.exit(main())
