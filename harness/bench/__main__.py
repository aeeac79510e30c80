"""`python -m harness.bench`: see harness/bench/side_by_side.py."""

import sys

from harness.bench.side_by_side import main

sys.exit(main())
