"""`python -m heron_operator`: the operator, configured by HERON_OPERATOR_* (docs/operator.md)."""

import sys

from heron_operator.run import main

sys.exit(main())
