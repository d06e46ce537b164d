"""`python -m heron.control -c settings.yaml`: the control service (see docs/grpc.md)."""

import sys

from heron.control.service import main

sys.exit(main())
