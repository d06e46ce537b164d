"""`python -m heron.inference -c settings.yaml`: the inference service (see docs/inference.md)."""

import sys

from heron.inference.service import main

sys.exit(main())
