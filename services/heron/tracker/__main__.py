"""`python -m heron.tracker -c settings.yaml`: the tracker service (see docs/tracker.md)."""

import sys

from heron.tracker.service import main

sys.exit(main())
