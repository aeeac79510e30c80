import sys

from harness.sim.seeds import main

sys.exit(main())
