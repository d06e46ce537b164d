"""`python -m heron.overlay -c settings.yaml`: the overlay service (see docs/overlay.md)."""

import sys

from heron.overlay.service import main

sys.exit(main())
