#!/usr/bin/env python3
"""opsmig_sim: the simulator of the Ops Manager live-migration link API that the suite runs.

The code is the package test/sim/opsmig_sim/; this file stays the entry point, because the
sql files run `\\! python3 test/opsmig_sim.py ctl ...` and the scripts start `serve` here.
`python3 test/opsmig_sim.py --help` prints the spec."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim"))
from opsmig_sim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
