"""opsmig_sim: the suite's simulator of the Ops Manager live-migration link API.

Run it through test/opsmig_sim.py (`serve`, `ctl`, `selftest`); its --help prints the spec.
One job a module:
  spec       what the simulated API does (the docstring is the spec) and its constants
  model      the values passed around: Org, ApiRequest, Reply, Out, checked arguments
  digest     HTTP Digest: header parsing, the server's nonces and checks, a test client
  api        the Simulator: state, and its answer to one API request
  faults     `ctl fault`: which request a fault hits and what it answers
  ratelimit  the token bucket of `ctl ratelimit`
  control    the /_sim/ control API behind every `ctl` command
  server     the HTTP layer (loopback only, plain or TLS)
  serve      the `serve` command
  ctl        the `ctl` command (the control client)
  harness    an in-process simulator and captured `ctl` for tests
  selftest   the `selftest` command (run by test/sim/test_selftest.py)
  cli        the command line
"""
