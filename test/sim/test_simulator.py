"""Unit tests of the simulator's strict side (test/sim/opsmig_sim), run by
`bash test/run-tests.sh simtest` (python3 -m unittest discover in test/sim).

The simulator is the suite's model of the real API: when it is wrong, the regression tests
prove the wrong thing.  These tests pin it to ../shared/api/FACTS.md (relative to the
repository root): the behaviours the pages allow more than one way (`ctl quirks`), the real
401 body, statuses passed through, the attempt log that retry tests read, the redirect fault
and the port that never accepts.  test_selftest.py runs the built-in self-test.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsmig_sim import spec  # noqa: E402
from opsmig_sim.api import Simulator  # noqa: E402
from opsmig_sim.digest import DigestClient  # noqa: E402
from opsmig_sim.harness import ctl_captured, start_server, stop_server  # noqa: E402

P = spec.API_PREFIX
ORG = [None] + [spec.org_id_for(i) for i in range(1, 7)]


class StrictSimulator(unittest.TestCase):
    """Each test gets a fresh simulator on a free loopback port."""

    def setUp(self) -> None:
        self.sim = Simulator(orgs=6, weak_key=("weakkey", "weak-PRIVATE"))
        self.server, self.url, self.port = start_server(self.sim)
        self.cl = DigestClient("127.0.0.1", self.port, spec.DEFAULT_PUBLIC_KEY,
                                   spec.DEFAULT_PRIVATE_KEY)

    def tearDown(self) -> None:
        self.cl.close()
        stop_server(self.server)
        for sock in self.sim.blackhole:
            sock.close()

    def ctl(self, *argv: str) -> str:
        rc, out, err = ctl_captured(self.url, *argv)
        self.assertEqual(rc, 0, err)
        return out

    def status_uri(self, i: int) -> str:
        return f"{P}/orgs/{ORG[i]}/liveExport/migrationLink/status"

    def link_uri(self, i: int) -> str:
        return f"{P}/orgs/{ORG[i]}/liveExport/migrationLink"

    def test_real_401_body_has_no_error_code(self) -> None:
        s, h, b = self.cl.raw("GET", self.status_uri(1))
        self.assertEqual(s, 401)
        self.assertEqual(json.loads(b), {"reason": "Unauthorized", "error": 401,
                                         "detail": "You are not authorized for this resource."})
        self.assertEqual(h.get("Content-Type"), "application/json;charset=ISO-8859-1")
        # A wrong key gets the same body after the digest answer.
        bad = DigestClient("127.0.0.1", self.port, spec.DEFAULT_PUBLIC_KEY, "wrong")
        try:
            s, _, b = bad.request("GET", self.status_uri(1))
        finally:
            bad.close()
        self.assertEqual((s, json.loads(b)), (401, spec.UNAUTHORIZED_BODY))
        # And a `fault http --code 401` without overrides.
        self.ctl("fault", "http", "--code", "401")
        s, _, b = self.cl.request("GET", self.status_uri(1))
        self.assertEqual((s, json.loads(b)), (401, spec.UNAUTHORIZED_BODY))

    def test_already_linked_409_or_400(self) -> None:
        s, _, b = self.cl.request("POST", self.link_uri(1), b'{"linkToken":"t"}')
        self.assertEqual((s, json.loads(b)["errorCode"]), (409, "ORG_MIGRATION_LINK_ALREADY_EXISTS"))
        self.assertEqual(self.ctl("quirks", "--already-linked", "400"),
                         "quirks already_linked=400 create_code=201 create_fields=false "
                         "non_owner=401\n")
        s, _, b = self.cl.request("POST", self.link_uri(1), b'{"linkToken":"t"}')
        doc = json.loads(b)
        self.assertEqual((s, doc["error"], doc["reason"]), (400, 400, "Bad Request"))

    def test_create_200_or_201_with_openapi_fields(self) -> None:
        s, _, b = self.cl.request("POST", self.link_uri(3), b'{"linkToken":"t3"}')
        self.assertEqual((s, json.loads(b)), (201, {"status": "SYNCED"}))
        self.ctl("quirks", "--create-code", "200", "--create-fields", "true")
        s, _, b = self.cl.request("POST", self.link_uri(6), b'{"linkToken":"t6"}')
        self.assertEqual(s, 200)
        self.assertEqual(json.loads(b), {
            "createdAt": spec.CREATED_AT, "errorMessage": None, "lastSyncedAt": spec.CREATED_AT,
            "sourceOrgId": ORG[6], "status": "SYNCED", "targetOrg": {"linkToken": "t6"}})

    def test_non_owner_401_or_403(self) -> None:
        weak = DigestClient("127.0.0.1", self.port, "weakkey", "weak-PRIVATE")
        try:
            s, h, b = weak.request("GET", self.status_uri(1))
            self.assertEqual((s, json.loads(b)["errorCode"]), (401, "NOT_ORG_ADMIN"))
            self.assertIsNone(h.get("WWW-Authenticate"))
            self.ctl("quirks", "--non-owner", "403")
            s, _, b = weak.request("DELETE", self.link_uri(1))
            self.assertEqual((s, json.loads(b)["errorCode"]), (403, "NOT_ORG_ADMIN"))
        finally:
            weak.close()

    def test_quirks_reset_and_refused_values(self) -> None:
        self.ctl("quirks", "--already-linked", "400", "--non-owner", "403")
        self.ctl("reset")
        self.assertEqual(self.sim.quirks, spec.QUIRK_DEFAULTS)
        rc, out, err = ctl_captured(self.url, "quirks", "--create-code", "204")
        self.assertNotEqual(rc, 0)
        self.assertEqual((out, err.count("\n")), ("", 1))

    def test_any_status_string_passes_through(self) -> None:
        for status in ("SYNCING", "PAUSED", "some new state"):
            self.ctl("link", ORG[3], "--status", status)
            s, _, b = self.cl.request("GET", self.status_uri(3))
            self.assertEqual((s, json.loads(b)), (200, {"status": status}))

    def test_attempt_log_measures_gaps(self) -> None:
        self.cl.request("GET", self.status_uri(1))
        time.sleep(0.3)
        self.cl.request("GET", self.status_uri(2))
        self.cl.request("GET", f"{P}/orgs")
        self.assertEqual(self.ctl("attempts", "--on", "status", "--min-gap", "0.25"),
                         "status attempts=2 gaps_under_0.25s=0\n")
        self.assertEqual(self.ctl("attempts", "--on", "status", "--min-gap", "1"),
                         "status attempts=2 gaps_under_1s=1\n")
        self.assertEqual(self.ctl("attempts"), "any attempts=3\n")
        # Challenges are not attempts; resetting the counters empties the log.
        self.ctl("reset-counters")
        self.assertEqual(self.ctl("attempts"), "any attempts=0\n")

    def test_redirect_fault_and_counted_target(self) -> None:
        self.ctl("fault", "redirect", "--code", "307")
        s, h, _ = self.cl.request("GET", self.status_uri(1))
        self.assertEqual(s, 307)
        loc = h.get("Location", "")
        self.assertTrue(loc.startswith(f"http://127.0.0.1:{self.port}{spec.REDIRECT_PREFIX}{P}/"),
                        loc)
        self.assertEqual(self.sim.stats()["redirected"], 0)
        s, _, _ = self.cl.raw("GET", loc.split(str(self.port), 1)[1])
        self.assertEqual((s, self.sim.stats()["redirected"]), (404, 1))
        rc, _, _ = ctl_captured(self.url, "fault", "redirect", "--code", "500")
        self.assertNotEqual(rc, 0)

    def test_blackhole_never_accepts(self) -> None:
        port = int(self.ctl("blackhole"))
        self.assertEqual(int(self.ctl("blackhole")), port)
        c = socket.socket()
        c.settimeout(0.5)
        try:
            with self.assertRaises(socket.timeout):
                c.connect(("127.0.0.1", port))
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
