"""`opsmig_sim.py selftest`: one in-process simulator checked from end to end against a
hand-written keep-alive digest client and urllib's HTTPDigestAuthHandler (the challenge
and nonce rules, paging, every endpoint and error, envelope and pretty, every fault, the
weak key, counters, the ctl formats, loopback only, concurrency), then `serve` as a real
process. test/sim/test_selftest.py runs it as a unit test."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from .api import Simulator
from .digest import DigestClient, parse_digest_header
from .harness import ctl_captured, start_server, stop_server
from .server import check_loopback
from .spec import (API_PREFIX, COUNTER_NAMES, DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY, REALM,
                   UNAUTHORIZED_BODY, error_body, org_id_for)

# The entry point the sql files and scripts run: test/opsmig_sim.py.
ENTRY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "opsmig_sim.py")


class SelfTest:
    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def check(self, name: str, cond: bool, detail: Any = "") -> bool:
        if cond:
            self.passed += 1
            if self.verbose:
                print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")
        return cond


# The sections, in order. Each gets a fresh simulator: Simulator(orgs=5, weak key),
# so none depends on what another left behind.
P = API_PREFIX
ORG = [None] + [org_id_for(i) for i in range(1, 601)]


def _client(port: int) -> DigestClient:
    return DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)


def _counts(url: str) -> str:
    return ctl_captured(url, "counts")[1].strip()


def handshake(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Challenge, then success, on one keep-alive connection."""
    status_uri = f"{P}/orgs/{ORG[1]}/liveExport/migrationLink/status"
    cl = _client(port)
    s, h, b = cl.raw("GET", status_uri)
    chal = parse_digest_header(h.get("WWW-Authenticate", "")) or {}
    c("challenge is 401", s == 401, s)
    c("challenge header fields",
      chal.get("realm") == REALM and chal.get("qop") == "auth" and chal.get("stale") == "false"
      and chal.get("algorithm") == "MD5" and chal.get("domain") == "" and chal.get("nonce"),
      h.get("WWW-Authenticate"))
    c("challenge body", json.loads(b) == UNAUTHORIZED_BODY, b)
    cl.learn(h)
    for i in range(3):
        s, h, b = cl.request("GET", status_uri)
        c(f"status with nonce reuse #{i + 1}", (s, json.loads(b)) == (200, {"status": "SYNCED"}),
          (s, b))
    c("one connection, one challenge", sim.stats()["connections"] == 1
      and sim.stats()["challenges"] == 1 and sim.stats()["status"] == 3, sim.stats())
    c("content-length on 200", h.get("Content-Length") == str(len(b)), dict(h))
    cl.close()


def nonces(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Nonce rules."""
    status_uri = f"{P}/orgs/{ORG[1]}/liveExport/migrationLink/status"
    cl = _client(port)
    cl.request("GET", status_uri)  # a nonce, and nc 1 used
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri, nc=cl.nc)})
    c("replayed nc is stale", s == 401 and "stale=true" in h.get("WWW-Authenticate", ""),
      (s, h.get("WWW-Authenticate")))
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri, nonce="0" * 32)})
    c("unknown nonce is stale", s == 401 and "stale=true" in h.get("WWW-Authenticate", ""), s)
    before = sim.stats()["auth_failures"]
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri, password="wrong")})
    c("wrong key is 401 stale=false", s == 401 and "stale=false" in h.get("WWW-Authenticate", ""),
      s)
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri, header_uri=f"{P}/orgs")})
    c("uri mismatch is refused", s == 401, s)
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": "Basic b3BzOm1pZw=="})
    c("basic auth is refused", s == 401, s)
    c("auth failures counted", sim.stats()["auth_failures"] == before + 3, sim.stats())
    cl.nonce = None
    s, _, _ = cl.request("GET", status_uri)
    rc, out, _ = ctl_captured(url, "expire-nonces")
    c("ctl expire-nonces", (rc, out) == (0, "nonces expired\n"), (rc, out))
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri)})
    c("expired nonce is stale", s == 401 and "stale=true" in h.get("WWW-Authenticate", ""), s)
    cl.learn(h)
    with sim.lock:  # age the nonce past the TTL instead of waiting five minutes
        sim.nonces[cl.nonce][0] -= sim.nonce_ttl + 1
    s, h, b = cl.raw("GET", status_uri, headers={"Authorization": cl.auth_header(
        "GET", status_uri)})
    c("nonce past TTL is stale", s == 401 and "stale=true" in h.get("WWW-Authenticate", ""), s)
    cl.learn(h)
    cl.close()


def urllib_client(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Python's urllib digest client agrees with the server."""
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, url, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPDigestAuthHandler(mgr))
    with opener.open(url + f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status?x=1",
                     timeout=10) as resp:
        c("urllib digest client", (resp.status, json.loads(resp.read())) ==
          (200, {"status": "NOT_SYNCED"}))


def paging(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """List paging."""
    cl = _client(port)
    rc, out, _ = ctl_captured(url, "reset", "--orgs", "600")
    c("ctl reset --orgs", (rc, out) == (0, "reset orgs=600\n"), (rc, out))
    s, h, b = cl.request("GET", f"{P}/orgs?itemsPerPage=500")
    page1 = json.loads(b)
    nxt = [l["href"] for l in page1["links"] if l["rel"] == "next"]
    c("page 1", s == 200 and len(page1["results"]) == 500 and page1["totalCount"] == 600
      and page1["results"][0] == {"id": ORG[1], "name": "org-0001", "isDeleted": False,
                                  "links": []} and len(nxt) == 1, (s, page1.get("links")))
    parts = urllib.parse.urlsplit(nxt[0] if nxt else "")
    c("next href is absolute on the simulator", parts.netloc == f"127.0.0.1:{port}", nxt)
    s, h, b = cl.request("GET", parts.path + "?" + parts.query)
    page2 = json.loads(b)
    c("page 2", s == 200 and len(page2["results"]) == 100
      and page2["results"][-1]["id"] == ORG[600]
      and not [l for l in page2["links"] if l["rel"] == "next"]
      and [l for l in page2["links"] if l["rel"] == "previous"], page2.get("links"))
    s, h, b = cl.request("GET", f"{P}/orgs")
    c("default page size 100", len(json.loads(b)["results"]) == 100)
    for bad in ("itemsPerPage=501", "itemsPerPage=0", "pageNum=x"):
        s, h, b = cl.request("GET", f"{P}/orgs?{bad}")
        c(f"list {bad} -> 400", s == 400 and json.loads(b)["errorCode"] == "INVALID_ATTRIBUTE",
          (s, b))
    s, h, b = cl.request("GET", f"{P}/orgs?name=ORG-000")
    c("name filter", json.loads(b)["totalCount"] == 9, b[:200])
    cl.close()


def create_delete(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Create and delete: every answer and error, in API order."""
    cl = _client(port)
    ctl_captured(url, "reset")
    link_uri = f"{P}/orgs/{ORG[3]}/liveExport/migrationLink"
    token = 'tok "quoted" \\ back\nslash ü'
    s, h, b = cl.request("POST", link_uri, json.dumps({"linkToken": token}).encode())
    c("POST -> 201", (s, json.loads(b)) == (201, {"status": "SYNCED"}), (s, b))
    rc, out, _ = ctl_captured(url, "token", ORG[3])
    c("ctl token is exact", out == token + "\n", repr(out))
    s, h, b = cl.request("POST", link_uri, b'{"linkToken":"again"}')
    c("POST again -> 409", s == 409 and json.loads(b)["errorCode"] ==
      "ORG_MIGRATION_LINK_ALREADY_EXISTS", (s, b))
    for body, code in ((b"{nope", "INVALID_JSON"), (b"[1]", "INVALID_JSON"),
                       (b"{}", "MISSING_ATTRIBUTE"), (b'{"linkToken":5}', "INVALID_ATTRIBUTE"),
                       (b'{"linkToken":""}', "INVALID_ATTRIBUTE"),
                       (b'{"linkToken":"invalid-x"}', "INVALID_ATTRIBUTE")):
        s, h, b = cl.request("POST", link_uri, body)
        doc = json.loads(b)
        c(f"POST {body!r} -> 400 {code}", s == 400 and doc["errorCode"] == code
          and doc["reason"] == "Bad Request" and doc["error"] == 400, (s, b))
    c("invalid token detail", json.loads(b)["detail"] == "The link token is invalid or expired.")
    s, h, b = cl.request("DELETE", link_uri)
    c("DELETE -> 204", s == 204 and b == b"", (s, b))
    s, h, b = cl.request("DELETE", link_uri)
    c("DELETE again -> 404", s == 404 and json.loads(b)["errorCode"] == "RESOURCE_NOT_FOUND",
      (s, b))
    s, h, b = cl.request("GET", link_uri + "/status")
    c("status unlinked -> 404", s == 404 and json.loads(b) == error_body(
        404, "RESOURCE_NOT_FOUND", f"No migration link exists for organization {ORG[3]}.",
        [ORG[3]]), b)
    rc, out, _ = ctl_captured(url, "running", ORG[1])
    c("ctl running", out == f"org {ORG[1]} running=true\n", out)
    s, h, b = cl.request("DELETE", f"{P}/orgs/{ORG[1]}/liveExport/migrationLink")
    c("DELETE running -> 409", s == 409 and json.loads(b)["errorCode"] ==
      "CANNOT_DELETE_ORG_LINK_WITH_RUNNING_LIVE_EXPORT", (s, b))
    unknown = "f" * 24
    s, h, b = cl.request("GET", f"{P}/orgs/{unknown}/liveExport/migrationLink/status")
    c("unknown org -> 404 ORG_NOT_FOUND", s == 404 and json.loads(b)["errorCode"] ==
      "ORG_NOT_FOUND", (s, b))
    for bad in ("ABCDEF0123456789abcdef01", "", "abc", "%2e%2e"):
        s, h, b = cl.request("GET", f"{P}/orgs/{bad}/liveExport/migrationLink/status")
        c(f"malformed org {bad!r} -> 400", s == 400 and json.loads(b)["errorCode"] ==
          "INVALID_ORG_ID", (s, b))
    c("malformed counted", sim.stats()["malformed"] == 4, sim.stats())
    s, h, b = cl.request("PUT", link_uri)
    c("PUT -> 405", s == 405 and h.get("Allow") == "POST, DELETE", (s, h.get("Allow")))
    s, h, b = cl.request("GET", f"{P}/nothing")
    c("unknown path -> 404", s == 404, s)
    s, h, b = cl.raw("GET", "/api/atlas/v1.0/orgs")
    c("other prefix -> HTML 404 without auth", s == 404 and h.get("Content-Type") == "text/html"
      and b.startswith(b"<html><head><title>404 Not Found</title>"), (s, b))
    cl.close()


def envelope_pretty(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Envelope and pretty."""
    status_uri = f"{P}/orgs/{ORG[1]}/liveExport/migrationLink/status"
    link_uri = f"{P}/orgs/{ORG[3]}/liveExport/migrationLink"
    cl = _client(port)
    s, h, b = cl.request("GET", link_uri + "/status?envelope=true")
    doc = json.loads(b)
    c("envelope wraps 404", s == 200 and doc["status"] == 404
      and doc["content"]["errorCode"] == "RESOURCE_NOT_FOUND", (s, b))
    ctl_captured(url, "running", ORG[1], "--off")
    s, h, b = cl.request("DELETE", f"{P}/orgs/{ORG[1]}/liveExport/migrationLink?envelope=true")
    c("envelope of 204", (s, json.loads(b)) == (200, {"status": 204, "content": None}), (s, b))
    s, h, b = cl.request("GET", f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status?pretty=true")
    c("pretty", s == 200 and b == b'{\n  "status": "NOT_SYNCED"\n}', b)
    s, h, b = cl.raw("GET", status_uri + "?envelope=true")
    c("challenge is not enveloped", s == 401, s)
    cl.close()


def weak_key(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Weak key."""
    weak = DigestClient("127.0.0.1", port, "weakkey", "weak-PRIVATE")
    ctl_captured(url, "reset-counters")
    s, h, b = weak.request("GET", f"{P}/orgs")
    c("weak key can list", s == 200, s)
    s, h, b = weak.request("GET", f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status")
    c("weak key gets NOT_ORG_ADMIN", s == 401 and not h.get("WWW-Authenticate")
      and json.loads(b) == {"detail": "The API key does not have the Organization Owner role.",
                            "error": 401, "errorCode": "NOT_ORG_ADMIN", "parameters": [],
                            "reason": "Unauthorized"}, (s, b))
    s, h, b = weak.request("POST", f"{P}/orgs/{ORG[3]}/liveExport/migrationLink",
                           b'{"linkToken":"w"}')
    c("weak key cannot create", s == 401 and json.loads(b)["errorCode"] == "NOT_ORG_ADMIN")
    c("weak key counts", _counts(url) == "list=1 status=1 create=1 delete=0 challenges=1 "
      "auth_failures=0 malformed=0", _counts(url))
    weak.close()


def faults(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Faults: each fires once, then the endpoint is normal again."""
    cl = _client(port)
    ctl_captured(url, "reset")
    st2 = f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status"

    def normal_after(name: str) -> None:
        s2, _, b2 = cl.request("GET", st2)
        c(f"{name}: next request is normal", (s2, b2) == (200, b'{"status":"NOT_SYNCED"}'),
          (s2, b2))

    def fault(*args: str) -> None:
        rc2, out2, err2 = ctl_captured(url, "fault", *args)
        c(f"ctl fault {' '.join(args)}", rc2 == 0 and out2.startswith(f"fault {args[0]} on="),
          (rc2, out2, err2))

    fault("http", "--code", "503", "--retry-after", "7")
    s, h, b = cl.request("GET", st2)
    c("http 503 json", s == 503 and h.get("Retry-After") == "7"
      and json.loads(b)["errorCode"] == "SERVICE_UNAVAILABLE", (s, b))
    normal_after("http")
    fault("http", "--code", "403")
    s, h, b = cl.request("GET", st2 + "?envelope=true")
    c("http 403 enveloped", s == 200 and json.loads(b)["content"]["detail"] ==
      "IP address 127.0.0.1 is not allowed to access this resource.", (s, b))
    fault("http", "--code", "502", "--body", "html")
    s, h, b = cl.request("GET", st2 + "?envelope=true")
    c("http 502 html", s == 502 and h.get("Content-Type") == "text/html"
      and b.startswith(b"<html><head><title>502 Bad Gateway</title>"), (s, b))
    fault("http", "--code", "500", "--body", "empty")
    s, h, b = cl.request("GET", st2)
    c("http 500 empty", (s, b) == (500, b""), (s, b))
    fault("http", "--code", "429", "--error-code", "X_CODE", "--detail", "slow down")
    s, h, b = cl.request("GET", st2)
    c("http overrides", s == 429 and json.loads(b)["errorCode"] == "X_CODE"
      and json.loads(b)["detail"] == "slow down", (s, b))
    simple = {
        "garbage": lambda s, h, b: (s, b) == (200, b'{"status": "SYNC'),
        "wrong_shape": lambda s, h, b: (s, json.loads(b)) == (200, ["SYNCED"]),
        "wrong_content_type": lambda s, h, b: (s, h.get("Content-Type"), json.loads(b)) ==
        (200, "text/html", {"status": "NOT_SYNCED"}),
        "long_status": lambda s, h, b: json.loads(b) == {"status": "X" * 100},
        "control_status": lambda s, h, b: json.loads(b) == {"status": "SYNC\u0007ED\n"},
        "empty_ok": lambda s, h, b: (s, b, h.get("Content-Length")) == (200, b"", "0"),
    }
    for kind, ok in simple.items():
        fault(kind)
        s, h, b = cl.request("GET", st2)
        c(f"fault {kind}", ok(s, h, b), (s, dict(h), b[:80]))
        normal_after(kind)
    fault("oversized", "--bytes", "100000")
    s, h, b = cl.request("GET", st2)
    c("fault oversized", s == 200 and len(b) == 100000 and json.loads(b)["status"] == "SYNCED",
      len(b))
    normal_after("oversized")
    fault("wrong_shape", "--on", "list")
    s, h, b = cl.request("GET", f"{P}/orgs")
    c("wrong_shape on list", json.loads(b) == {"results": "nope"}, b)

    fault("stall", "--seconds", "0.4")
    t0 = time.monotonic()
    err = None
    try:
        cl.request("GET", st2)
    except (http.client.HTTPException, OSError) as e:
        err = e
    c("fault stall closes without reply after the delay",
      isinstance(err, http.client.RemoteDisconnected) and time.monotonic() - t0 >= 0.35, err)
    normal_after("stall")
    # A stalled connection must not hold up another one. Both clients get their nonce first
    # (from the list endpoint), so only the staller's status request meets the fault.
    staller = _client(port)
    other = _client(port)
    staller.request("GET", f"{P}/orgs")
    other.request("GET", f"{P}/orgs")
    fault("stall", "--seconds", "1.5")
    bg = threading.Thread(target=_swallow, args=(staller.request, "GET", st2))
    bg.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    s, h, b = other.request("GET", st2)
    c("a stall does not block other connections", s == 200 and time.monotonic() - t0 < 0.5,
      time.monotonic() - t0)
    bg.join()
    other.close()
    staller.close()

    fault("drip", "--interval-ms", "20")
    t0 = time.monotonic()
    s, h, b = cl.request("GET", st2)
    c("fault drip delivers the full body slowly", (s, json.loads(b)) ==
      (200, {"status": "NOT_SYNCED"}) and time.monotonic() - t0 >= 0.018 * len(b), (s, b))
    normal_after("drip")
    fault("reset")
    err = None
    try:
        cl.request("GET", st2)
    except (http.client.HTTPException, OSError) as e:
        err = e
    c("fault reset gives ECONNRESET", type(err) is ConnectionResetError, repr(err))
    normal_after("reset")
    for stale in ("true", "false"):
        fault("stale_nonce", "--stale", stale)
        s, h, b = cl.raw("GET", st2, headers={"Authorization": cl.auth_header("GET", st2)})
        c(f"fault stale_nonce stale={stale}", s == 401 and f"stale={stale}" in
          h.get("WWW-Authenticate", ""), (s, h.get("WWW-Authenticate")))
        cl.learn(h)
        normal_after("stale_nonce")
    fault("http", "--code", "500", "--times", "2", "--on", "create", "--org", ORG[3])
    cr = f"{P}/orgs/{ORG[3]}/liveExport/migrationLink"
    s1, _, _ = cl.request("POST", f"{P}/orgs/{ORG[1]}/liveExport/migrationLink",
                          b'{"linkToken":"a"}')
    s2, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    s3, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    s4, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    c("--org and --times", (s1, s2, s3, s4) == (409, 500, 500, 201), (s1, s2, s3, s4))
    rc, out, _ = ctl_captured(url, "token", ORG[5])
    c("ctl token (none)", out == "(none)\n", out)
    # 5 http + 6 simple + oversized + list + 2 stall + drip + reset + 2 stale_nonce + 2 --times
    c("faults_fired", sim.stats()["faults_fired"] == 21, sim.stats())

    # The faults that let the endpoint act first: the data set changes as without them.
    ctl_captured(url, "reset")
    cr3 = f"{P}/orgs/{ORG[3]}/liveExport/migrationLink"
    fault("openapi_reply", "--on", "create", "--code", "200")
    s, h, b = cl.request("POST", cr3, b'{"linkToken":"a"}')
    c("openapi_reply: 200 without status, link created", s == 200
      and json.loads(b)["sourceOrgId"] == ORG[3] and "status" not in json.loads(b)
      and ctl_captured(url, "links")[1].count(ORG[3]) == 1, (s, b))
    fault("slow", "--on", "delete", "--seconds", "0.3")
    t0 = time.monotonic()
    s, h, b = cl.request("DELETE", cr3)
    c("slow: the reply is held, the link is gone", s == 204 and time.monotonic() - t0 >= 0.25
      and ORG[3] not in ctl_captured(url, "links")[1], (s, time.monotonic() - t0))
    fault("lost_reply", "--on", "create")
    err = None
    try:
        cl.request("POST", cr3, b'{"linkToken":"a"}')
    except (http.client.HTTPException, OSError) as e:
        err = e
    c("lost_reply: no reply, link created", err is not None
      and ctl_captured(url, "links")[1].count(ORG[3]) == 1, repr(err))
    fault("gateway_timeout", "--on", "delete")
    s, h, b = cl.request("DELETE", cr3)
    c("gateway_timeout: a proxy's 504, the link is gone", s == 504 and b"<html>" in b
      and ORG[3] not in ctl_captured(url, "links")[1], (s, b))
    ctl_captured(url, "reset", "--orgs", "3")
    fault("grow", "--on", "list")
    s, h, b = cl.request("GET", f"{P}/orgs?itemsPerPage=2")
    s2, h2, b2 = cl.request("GET", f"{P}/orgs?itemsPerPage=2&pageNum=2")
    ids = [o["id"] for o in json.loads(b)["results"] + json.loads(b2)["results"]]
    c("grow: the next page shifts by one", ids == [ORG[1], ORG[2], ORG[2], ORG[3]], ids)
    ctl_captured(url, "reset")
    cl.close()


def counters(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Counters as expected after a scripted sequence."""
    st2 = f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status"
    rc, out, _ = ctl_captured(url, "reset")
    fresh = _client(port)
    fresh.request("GET", f"{P}/orgs")                                   # challenge + list
    fresh.request("GET", st2)                                           # status
    fresh.request("POST", f"{P}/orgs/{ORG[3]}/liveExport/migrationLink", b'{"linkToken":"t"}')
    fresh.request("DELETE", f"{P}/orgs/{ORG[3]}/liveExport/migrationLink")
    fresh.raw("GET", st2, headers={"Authorization": fresh.auth_header("GET", st2,
                                                                      password="bad")})
    c("counts line", _counts(url) == "list=1 status=1 create=1 delete=1 challenges=1 "
      "auth_failures=1 malformed=0", _counts(url))
    stats = json.loads(ctl_captured(url, "stats")[1])
    c("stats", list(stats) == sorted(COUNTER_NAMES) and stats["connections"] == 1
      and stats["requests"] == 6, stats)
    fresh.close()


def ctl_formats(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """The output of every `ctl` command, and its one-line failures."""
    expect = [
        (("ping",), "pong\n"),
        (("reset",), "reset orgs=5\n"),
        (("reset-counters",), "counters reset\n"),
        (("fault", "http", "--code", "500"), "fault http on=status times=1\n"),
        (("fault", "drip", "--on", "any", "--times", "-1"), "fault drip on=any times=-1\n"),
        (("faults",), "http on=status times=1\ndrip on=any times=-1\n"),
        (("clear-faults",), "faults cleared\n"),
        (("latency", "0"), "latency 0 ms\n"),
        (("running", ORG[2], "--off"), f"org {ORG[2]} running=false\n"),
        (("link", ORG[3], "--status", "PAUSED"), f"org {ORG[3]} linked status=PAUSED\n"),
        (("links",), f"{ORG[1]} SYNCED\n{ORG[2]} NOT_SYNCED\n{ORG[3]} PAUSED\n"
                     f"{ORG[4]} NOT_SYNCED\n{ORG[5]} SYNCED\n"),
        (("unlink", ORG[3]), f"org {ORG[3]} unlinked\n"),
        (("token", ORG[1]), "(none)\n"),
    ]
    for args, want in expect:
        rc, out, err = ctl_captured(url, *args)
        c(f"ctl {' '.join(args)}", (rc, out) == (0, want), (rc, out, err))
    for args in (("fault", "garbage", "--code", "500"), ("link", "0" * 24),
                 ("fault", "http", "--org", "nope"), ("latency", "-1"), ("bogus",)):
        rc, out, err = ctl_captured(url, *args)
        c(f"ctl {' '.join(args)} fails in one line", rc != 0 and out == ""
          and err.count("\n") == 1, (rc, out, err))
    rc, out, err = ctl_captured("", "counts")
    c("ctl without SIM_URL fails", rc != 0 and "SIM_URL" in err, err)


def loopback_only(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Loopback only."""
    for host in ("0.0.0.0", "10.1.2.3", "example.com", "::", "192.168.0.1"):
        try:
            check_loopback(host)
            refused = False
        except ValueError:
            refused = True
        c(f"host {host} refused", refused)
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        try:
            check_loopback(host)
            ok = True
        except ValueError:
            ok = False
        c(f"host {host} allowed", ok)


def concurrency(c: Callable, sim: Simulator, url: str, port: int) -> None:
    """Concurrency: latency overlaps across connections."""
    st2 = f"{P}/orgs/{ORG[2]}/liveExport/migrationLink/status"
    ctl_captured(url, "latency", "50")
    n_clients, n_req = 16, 10
    errors: list[Any] = []

    def worker() -> None:
        w = _client(port)
        try:
            for _ in range(n_req):
                if w.request("GET", st2)[0] != 200:
                    errors.append("status")
        except Exception as e:  # noqa: BLE001 - report any failure in the check below
            errors.append(e)
        finally:
            w.close()

    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - t0
    # Each client: one challenge round trip + n_req requests, each 50 ms. In parallel that
    # is ~0.55 s; serialized it would be ~9 s.
    c(f"concurrency ({n_clients}x{n_req} at 50 ms in {elapsed:.2f}s)",
      not errors and elapsed < 1.5, (errors[:3], elapsed))
    ctl_captured(url, "reset")


SECTIONS: tuple[Callable, ...] = (handshake, nonces, urllib_client, paging,
                               create_delete, envelope_pretty, weak_key, faults,
                               counters, ctl_formats, loopback_only, concurrency)


def run_section(t: SelfTest, section: Callable) -> None:
    """One section against a fresh in-process simulator on a free loopback port."""
    sim = Simulator(orgs=5, weak_key=("weakkey", "weak-PRIVATE"))
    server, url, port = start_server(sim)
    try:
        section(t.check, sim, url, port)
    finally:
        stop_server(server)
        for sock in sim.blackhole:
            sock.close()


def cmd_selftest(argv: list[str]) -> int:
    t = SelfTest("-v" in argv)
    for section in SECTIONS:
        run_section(t, section)
    serve_process(t)
    print(f"selftest: {t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 else 1



def _swallow(fn: Callable, *args: Any) -> None:
    try:
        fn(*args)
    except (http.client.HTTPException, OSError):
        pass


def serve_process(t: SelfTest) -> None:
    """Run `serve` as a real process: port file, banner, ctl over SIM_URL, SIGTERM exit."""
    me = ENTRY
    with tempfile.TemporaryDirectory() as d:
        port_file = os.path.join(d, "port")
        proc = subprocess.Popen([sys.executable, me, "serve", "--port", "0", "--port-file",
                                 port_file], stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            port = ""
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read().strip()
            t.check("serve banner and port file",
                    line == f"opsmig_sim listening on http://127.0.0.1:{port}\n", (line, port))
            env = dict(os.environ, SIM_URL=f"http://127.0.0.1:{port}")
            r = subprocess.run([sys.executable, me, "ctl", "links"], env=env,
                               capture_output=True, text=True, timeout=30)
            t.check("ctl via SIM_URL", r.returncode == 0 and r.stdout.count("\n") == 4,
                    (r.returncode, r.stdout, r.stderr))
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
            t.check("SIGTERM exits 0 and removes the port file",
                    rc == 0 and not os.path.exists(port_file), rc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
    r = subprocess.run([sys.executable, me, "serve", "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=30)
    t.check("serve --host 0.0.0.0 is refused", r.returncode != 0 and "refusing" in r.stderr
            and r.stdout == "", (r.returncode, r.stderr))
