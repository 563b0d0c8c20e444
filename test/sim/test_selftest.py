"""The simulator's built-in self-test (opsmig_sim/selftest.py) as unit tests: one test a
section, each on a fresh simulator, so a failure names its section and its checks.  Run by
`bash test/run-tests.sh simtest` (python3 -m unittest discover in test/sim)."""

from __future__ import annotations

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsmig_sim import selftest  # noqa: E402


# The self-test's checks today (`python3 test/opsmig_sim.py selftest` says 160): a section
# that silently lost most of its checks would still pass its own test.
MIN_CHECKS = 160


class SelfTestSections(unittest.TestCase):
    checks_passed = 0
    sections_run = 0

    @classmethod
    def tearDownClass(cls) -> None:
        # Only a run of every section (the suite's) knows the whole count.
        if cls.sections_run == len(selftest.SECTIONS) + 1 and cls.checks_passed < MIN_CHECKS:
            raise AssertionError(f"the self-test ran {cls.checks_passed} checks, "
                                 f"fewer than {MIN_CHECKS}: checks went missing")

    def run_checks(self, run) -> None:
        t = selftest.SelfTest(verbose=False)
        failures: list[str] = []
        check = t.check

        def named_check(name: str, cond: bool, detail: object = "") -> bool:
            if not cond:
                failures.append(f"{name}: {detail}")
            return check(name, cond, detail)

        t.check = named_check  # type: ignore[method-assign]
        run(t)
        self.assertEqual(failures, [])
        self.assertGreater(t.passed, 0)
        SelfTestSections.checks_passed += t.passed
        SelfTestSections.sections_run += 1

    def test_serve_process(self) -> None:
        self.run_checks(selftest.serve_process)


def _section_test(section):
    def test(self: SelfTestSections) -> None:
        self.run_checks(lambda t: selftest.run_section(t, section))
    test.__doc__ = section.__doc__
    return test


for _section in selftest.SECTIONS:
    setattr(SelfTestSections, f"test_{_section.__name__}", _section_test(_section))

if __name__ == "__main__":
    unittest.main()
