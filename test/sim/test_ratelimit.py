"""Unit tests of the simulator's token bucket (opsmig_sim/ratelimit.py), run by
`bash test/run-tests.sh simtest`.

The rate-limit tests of the extension (sql/ratelimit.sql, test/checks/ratelimit.sh) count
requests and 429s against this bucket: a bucket that miscounts its tokens, its
RateLimit-Remaining or its Retry-After would let them prove the wrong thing.  The clock is
faked, so every figure below is exact (FACTS.md, "Rate limits: the token bucket").
"""

from __future__ import annotations

import json
import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsmig_sim import ratelimit  # noqa: E402
from opsmig_sim.model import ApiRequest, Out  # noqa: E402

PATH = "/api/public/v1.0/orgs"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenBucket(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        patcher = mock.patch.object(ratelimit.time, "monotonic", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.bucket = ratelimit.TokenBucketMode()

    def admit(self, envelope: bool = False):
        req = ApiRequest("GET", PATH, PATH, "", None, b"", "127.0.0.1", "127.0.0.1")
        reply = self.bucket.admit(req, Out(pretty=False, envelope=envelope))
        return req, reply

    def test_off_admits_everything_without_headers(self) -> None:
        for _ in range(100):
            req, reply = self.admit()
            self.assertIsNone(reply)
            self.assertEqual(req.extra_headers, [])

    def test_capacity_then_429_with_remaining_counting_down(self) -> None:
        self.bucket.configure({"capacity": 3, "refill": 1, "per": 2})
        remaining = []
        for _ in range(3):
            req, reply = self.admit()
            self.assertIsNone(reply)
            self.assertEqual(dict(req.extra_headers)["RateLimit-Limit"], "3")
            remaining.append(dict(req.extra_headers)["RateLimit-Remaining"])
        self.assertEqual(remaining, ["2", "1", "0"])
        req, reply = self.admit()
        self.assertIsNotNone(reply)
        self.assertEqual(reply.code, 429)
        headers = dict(reply.headers)
        self.assertEqual(headers["RateLimit-Remaining"], "0")
        self.assertEqual(headers["Retry-After"], "2")    # one token takes 2 s
        body = json.loads(reply.body)
        self.assertEqual(body["errorCode"], "RATE_LIMITED_TOKEN_BUCKET")
        self.assertEqual(body["parameters"], ["api/public/v1.0/orgs", 2, 3, 1, 2])
        self.assertIn("Request capacity: 3. Refill rate: 1 per 2 seconds.", body["detail"])
        self.assertEqual(req.extra_headers, [], "a refused request carries no token")

    def test_refill_is_continuous_and_capped(self) -> None:
        self.bucket.configure({"capacity": 2, "refill": 4, "per": 1})
        self.admit()
        self.admit()
        self.assertEqual(self.admit()[1].code, 429)
        self.clock.now += 0.25                     # one token back, exactly
        self.assertIsNone(self.admit()[1])
        self.assertEqual(self.admit()[1].code, 429)
        self.clock.now += 3600                     # never more than capacity
        self.assertIsNone(self.admit()[1])
        self.assertIsNone(self.admit()[1])
        self.assertEqual(self.admit()[1].code, 429)

    def test_retry_after_is_whole_seconds_at_least_one(self) -> None:
        self.bucket.configure({"capacity": 1, "refill": 1, "per": 7.5})
        self.admit()
        self.assertEqual(dict(self.admit()[1].headers)["Retry-After"], "8")
        self.clock.now += 7.0
        self.assertEqual(dict(self.admit()[1].headers)["Retry-After"], "1")
        self.bucket.configure({"capacity": 1, "refill": 100, "per": 1})
        self.admit()
        self.assertEqual(dict(self.admit()[1].headers)["Retry-After"], "1")

    def test_quiet_and_legacy(self) -> None:
        self.bucket.configure({"capacity": 1, "refill": 1, "per": 60, "headers": False,
                               "legacy": True})
        req, reply = self.admit()
        self.assertIsNone(reply)
        self.assertEqual(req.extra_headers, [])
        reply = self.admit()[1]
        self.assertEqual(reply.code, 429)
        self.assertEqual(reply.headers, [])
        body = json.loads(reply.body)
        self.assertEqual(body["errorCode"], "RATE_LIMITED")
        self.assertEqual(body["parameters"], [])

    def test_off_again(self) -> None:
        self.bucket.configure({"capacity": 1, "refill": 1, "per": 60})
        self.admit()
        self.assertEqual(self.admit()[1].code, 429)
        self.bucket.configure({"off": True})
        self.assertIsNone(self.admit()[1])


if __name__ == "__main__":
    unittest.main()
