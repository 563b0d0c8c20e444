"""The command line: `opsmig_sim.py {serve|ctl|selftest} [ARGS]`. Its --help prints the spec
(spec.py's docstring)."""

from __future__ import annotations

import os
import sys

from . import spec


def main(argv: list[str]) -> int:
    usage = "usage: opsmig_sim.py {serve|ctl|selftest} [ARGS]  (see the module docstring)"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage)
        print(spec.__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    # Import only what the command needs: the sql files run `ctl` hundreds of times.
    if cmd == "serve":
        from .serve import cmd_serve
        return cmd_serve(rest)
    if cmd == "ctl":
        from .ctl import run_ctl
        return run_ctl(rest, os.environ.get("SIM_URL"))
    if cmd == "selftest":
        from .selftest import cmd_selftest
        return cmd_selftest(rest)
    print(usage, file=sys.stderr)
    return 2
