"""`python -m heron.engine --config engine.yaml`: one engine build request (see docs/engine.md)."""

import sys

from heron.engine.service import main

sys.exit(main())
