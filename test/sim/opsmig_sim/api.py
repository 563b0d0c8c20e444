#!/usr/bin/env python3
"""opsmig_sim: a simulator of the Ops Manager / Cloud Manager live-migration link API.

This is the one place on the test side that knows how the API behaves. The opsmig_fdw
regression tests start it, point the FDW at it, switch faults on and off through its control
API and compare its counters. Everything here follows /work/shared/api/FACTS.md (the vendor
pages plus what is known from the OpenAPI description and the Go client). Where the pages are
silent the simulator picks one plausible behaviour and says so below. It uses only the
Python 3.11 standard library.

Usage
=====
  opsmig_sim.py serve [--host 127.0.0.1] [--port 0] [--port-file PATH] [--orgs 5]
                      [--latency-ms 0] [--public-key opsmigtest]
                      [--private-key sim-PRIVATE-9f8e7d6c5b4a] [--weak-key PUB:PRIV]
                      [--nonce-ttl 300] [--tls-cert PEM --tls-key PEM]
  opsmig_sim.py ctl COMMAND [ARGS]      (finds the server through $SIM_URL)
  opsmig_sim.py selftest [-v]

serve
  Listens on a loopback address only. Any other --host is refused, because the simulator
  has fixed, publicly known keys. Use --port 0 for a free port. Once it is listening, it
  writes the port to --port-file (through a temporary file and a rename, so a reader never
  sees half a number) and prints "opsmig_sim listening on http://HOST:PORT". SIGTERM or
  SIGINT stops it cleanly (exit 0) and removes the port file. It never logs anything about
  requests, and so never logs an Authorization header or a key. With --tls-cert and
  --tls-key it serves HTTPS instead (test/tls-check.sh); `ctl` speaks plain HTTP only.

Data set (deterministic)
========================
Organization i (1..N) has id "5e2211c17a3e5a48f5" + format(i, "06x") (24 lower-case hex
digits) and name "org-%04d" % i. At start (and after `ctl reset`), org i has a link if
and only if i % 3 != 0. The link's status is "SYNCED" if i is odd and "NOT_SYNCED" if i is even.
So with N=5, orgs 1, 2, 4 and 5 are linked (SYNCED, NOT_SYNCED, NOT_SYNCED, SYNCED) and org 3
is not. For each org the simulator also keeps:
  * the last link token received: the linkToken string of the latest POST for that org,
    stored exactly as decoded from JSON. It is recorded even when the POST is then refused
    (already linked, token "invalid..."), because escaping tests need to see what arrived;
  * a `running` flag: a live migration is running, so DELETE answers 409. The flag is
    independent of the link. Only `ctl running` and `ctl reset` change it.

Authentication (HTTP Digest, RFC 7616/2617, MD5, qop="auth")
===========================================================
Every path under /api/public/v1.0 needs Digest auth, with user = public key and
password = private key. Each 401 carries
  WWW-Authenticate: Digest realm="MMS Public API", domain="", nonce="<new>", algorithm=MD5,
                    qop="auth", stale=false|true
and the body {"reason":"Unauthorized","error":401,"detail":"You are not authorized for this
resource.","errorCode":"USER_UNAUTHORIZED","parameters":[]}. Its Content-Type is
"application/json;charset=ISO-8859-1", as the real server sends it, so that a client's
Content-Type check must allow parameters.
  * No Authorization header: 401 stale=false, counted as `challenges`.
  * Wrong credentials: 401 stale=false (new nonce), counted as `auth_failures`. This covers
    a header that is not Digest or does not parse, a missing field, an unknown user, a
    realm other than ours, an algorithm other than MD5, a qop other than auth, a `uri` field
    that differs from the request target (path+query, byte for byte), and a wrong response
    hash.
  * Right credentials but a stale nonce: 401 stale=true, counted as `challenges`. Stale
    means the nonce is unknown, older than --nonce-ttl seconds, or dropped by
    `ctl expire-nonces`, or that `nc` is not above the highest nc seen for that nonce
    (a replay).
The digest is checked as RFC 2617 says: HA1=MD5(user:realm:pass), HA2=MD5(method:uri)
with the client's own `uri` field, response=MD5(HA1:nonce:nc:cnonce:qop:HA2).

API (prefix /api/public/v1.0). Errors are JSON unless a fault says otherwise
============================================================================
Requests are checked in this order: prefix -> authentication -> route/method ->
org-id syntax -> faults -> org exists -> Organization Owner role -> endpoint logic.
  * A path outside the prefix gets the HTML 404 page of the web server in front of the
    API (as a real server does for a wrong base URL path), with no auth and no envelope.
  * An unknown path under the prefix gets 404 RESOURCE_NOT_FOUND (after auth). It is counted
    as `unknown_path`.
  * A known path with the wrong method gets 405 METHOD_NOT_ALLOWED with an Allow header.
  * An orgId that does not match ^[a-f0-9]{24}$ (after percent-decoding its path segment)
    gets 400 INVALID_ORG_ID. It is counted as `malformed` and in its endpoint counter.
    Faults never apply to it. The tests assert `malformed` stays 0, because the FDW must
    never send such an id.
  * A well-formed but unknown org gets 404 ORG_NOT_FOUND.
  * The weak key (--weak-key) authenticates and may list orgs. On the three link endpoints
    it gets 401 NOT_ORG_ADMIN with no WWW-Authenticate header. That is not a challenge: it
    is counted in the endpoint's counter.
GET    /orgs?pageNum=1&itemsPerPage=100[&name=PREFIX][&includeDeletedOrgs=..]   -> `list`
    200 {"links":[self, previous (page>1), next (more pages)], "results":[{"id","name",
    "isDeleted":false,"links":[]}], "totalCount":N}. An itemsPerPage outside 1..500, or a
    pageNum or itemsPerPage that is not a positive integer, gets 400 INVALID_ATTRIBUTE.
    `name` keeps the orgs whose name starts with PREFIX, ignoring case (as the real API
    does). The hrefs are absolute URLs built from the request's Host header. They keep the
    request's other query parameters (pretty, envelope, name).
GET    /orgs/{id}/liveExport/migrationLink/status                               -> `status`
    200 {"status":"<status>"} when linked. 404 RESOURCE_NOT_FOUND "No migration link exists
    for organization <id>." when not.
POST   /orgs/{id}/liveExport/migrationLink  body {"linkToken":"..."}            -> `create`
    Errors, in this order: body not UTF-8 JSON -> 400 INVALID_JSON; JSON but not an object
    -> 400 INVALID_JSON; no linkToken -> 400 MISSING_ATTRIBUTE; linkToken not a non-empty
    string -> 400 INVALID_ATTRIBUTE; token starting with "invalid" -> 400 INVALID_ATTRIBUTE
    "The link token is invalid or expired."; already linked -> 409
    ORG_MIGRATION_LINK_ALREADY_EXISTS. Otherwise the link is created as SYNCED and the
    answer is 201 {"status":"SYNCED"}. Content-Type of the request is not checked.
DELETE /orgs/{id}/liveExport/migrationLink                                      -> `delete`
    Not linked -> 404 RESOURCE_NOT_FOUND; running -> 409
    CANNOT_DELETE_ORG_LINK_WITH_RUNNING_LIVE_EXPORT; otherwise the link is removed and the
    answer is 204 with an empty body.
Every error body has detail, error (the HTTP code), errorCode, parameters and reason (the
standard reason phrase). Responses carry Content-Length, except 204, which per RFC 9110 must
not carry one. Keep-alive is the default (HTTP/1.1). Request bodies may use Content-Length
or chunked encoding, up to 1 MiB.

Query parameters on every endpoint: pretty=true pretty-prints JSON (2-space indent).
envelope=true answers HTTP 200 with {"status": <code>, "content": <body, or null when there is
none>}. The envelope covers every reply made after authentication, including NOT_ORG_ADMIN,
404/405/400 errors and the faults that model the API itself (see below). Digest challenges
and auth failures stay real 401s, because the handshake needs them.

Latency (--latency-ms, `ctl latency`) is slept before every API reply, including 401
challenges and faults. It models the network round trip. Concurrent connections sleep in
parallel. State changes and counters happen before the sleep, so `ctl counts` is exact
right after a client gives up. Control requests have no latency.

Faults
======
A fault is {kind, on, org, times, ...params}. `on` is status|create|delete|list|any
(default status). `org` (24 hex digits) restricts the fault to that org and never matches
`list`. `times` is how many matching requests it hits (default 1; -1 = until cleared).
Faults are checked in the order they were added, after authentication and routing, so the
digest handshake still works. A request hit by a fault is still counted in its endpoint
counter and in `faults_fired`. A fault never changes the data set (the endpoint logic does
not run), except the five below that run it first. Parameters that do not belong to the kind are refused, to catch typos in tests.
  http               reply `code` (200..599, default 500) with `body`:
                       json  (default): the standard error body. errorCode/detail come from
                             `error_code`/`detail`, else from defaults per code: 400
                             INVALID_ATTRIBUTE, 401 USER_UNAUTHORIZED (without a challenge
                             header), 403 IP_ADDRESS_NOT_ON_WHITELIST "IP address <client ip>
                             is not allowed to access this resource.", 404
                             RESOURCE_NOT_FOUND, 409 ORG_MIGRATION_LINK_ALREADY_EXISTS
                             (create) / CANNOT_DELETE_ORG_LINK_WITH_RUNNING_LIVE_EXPORT (others),
                             429 RATE_LIMITED, 500 UNEXPECTED_ERROR, other codes
                             <REASON_PHRASE>. Enveloped when envelope=true.
                       html: nginx-style proxy page, text/html, never enveloped.
                       empty: no body, never enveloped.
                     `retry_after` (seconds) adds a Retry-After header; `parameters` (a JSON
                     array) replaces the json body's parameters, e.g. a 429's bucket.
  garbage            200 application/json with the truncated body {"status": "SYNC
  wrong_shape        200 ["SYNCED"] (status/create/delete) or {"results": "nope"} (list)
  wrong_content_type 200, the JSON a success would carry, Content-Type text/html. For list,
                     that is the real page; for status, the org's real status (SYNCED if
                     unlinked); for create, {"status":"SYNCED"}; for delete, {}.
  long_status        200 {"status": "XXX...X"} (100 X)
  control_status     200 {"status": "SYNC\\u0007ED\\n"} (a BEL and a newline inside)
  oversized          200 {"status":"SYNCED","pad":"xxx..."} of exactly `bytes` bytes
                     (default 2000000, minimum 28). Never enveloped, so the size is exact.
  empty_ok           200 application/json with an empty body
  stall              read the request, send nothing, close after `seconds` (default 30).
                     Other connections are not blocked.
  drip               200 with the full Content-Length, then the body of
                     wrong_content_type (as application/json), one byte every `interval_ms`
                     (default 1000). Not enveloped.
  reset              close the connection at once with SO_LINGER 0, so the client sees
                     ECONNRESET and no response
  stale_nonce        401 with a new nonce and stale=`stale` (default true) although the
                     credentials were right, as if the nonce had expired. Counted as
                     `challenges`.
These five let the endpoint act first (the data set changes as without the fault), then:
  slow               hold the reply `seconds` (default 1) more: a request in flight after
                     the API acted
  lost_reply         close the connection without a reply: the API acted, the client never
                     hears of it
  grow               (list) after the page is built, add a new org in front of the
                     listing, so the next page shifts by one (orgs created while a client
                     pages through the list)
  openapi_reply      (create) a success becomes `code` (default 200) with the OpenAPI
                     description's body: the source organization's view (createdAt,
                     lastSyncedAt, errorMessage, sourceOrgId, targetOrg), no "status"
  gateway_timeout    the proxy in front gave up waiting: its HTML 504 page, never
                     enveloped, although the API acted
The faults "wrong_shape", "wrong_content_type", "long_status", "control_status" and
"http" with body=json model the API itself, so envelope=true wraps them. The others model
a proxy or the network and are sent raw.

Counters (`ctl stats`; `ctl counts` shows the deterministic subset)
===================================================================
  requests       API requests (everything except /_sim/), including 401s
  list, status, create, delete
                 authenticated requests routed to that endpoint (including those answered
                 by a fault, NOT_ORG_ADMIN or INVALID_ORG_ID)
  challenges     401s with a WWW-Authenticate challenge sent because there were no
                 credentials, a stale/replayed nonce, or a stale_nonce fault
  auth_failures  401s for wrong credentials
  malformed      requests with an orgId that is not 24 lower-case hex digits
  unknown_path   authenticated requests to an unknown path under the API prefix
  connections    TCP connections whose first request was an API request. The control
                 client's own connections are left out, so the number means "connections the
                 client under test opened".
  faults_fired   requests answered by a fault
  rate_limited   429s of the token bucket (`ctl ratelimit`)

Control API (no auth, no latency, JSON in and out, prefix /_sim/) and `ctl` commands
====================================================================================
`ctl` reads $SIM_URL (e.g. http://127.0.0.1:41234). It prints compact, deterministic text,
because pg_regress expected files compare it verbatim. On any failure it prints one line
("opsmig_sim ctl: ...") to stderr and exits non-zero.
  ctl ping                         GET  /_sim/ping            -> "pong"
  ctl counts                       GET  /_sim/stats           -> "list=N status=N create=N
                                   delete=N challenges=N auth_failures=N malformed=N"
  ctl stats                        GET  /_sim/stats           -> all counters, JSON, sorted keys
  ctl reset [--orgs N]             POST /_sim/reset           -> "reset orgs=N"
      Resets counters, clears faults, sets latency back to the serve-time value and rebuilds
      the data set (N orgs, default the serve-time --orgs). Issued nonces are kept: a
      client's cached nonce stays valid across a reset, as a real server session would.
  ctl reset-counters               POST /_sim/reset-counters  -> "counters reset"
  ctl fault KIND [--on status] [--org ID] [--times 1] [--code 500] [--body json|html|empty]
            [--error-code X] [--detail X] [--retry-after S] [--parameters JSON] [--seconds S]
            [--interval-ms MS] [--bytes N] [--stale true|false]
                                   POST /_sim/fault           -> "fault KIND on=ON times=T"
  ctl faults                       GET  /_sim/faults          -> "KIND on=ON times=T" per
                                   pending fault, in order (for debugging)
  ctl clear-faults                 POST /_sim/clear-faults    -> "faults cleared"
  ctl latency MS                   POST /_sim/latency         -> "latency MS ms"
  ctl running ORG_ID [--off]       POST /_sim/running         -> "org ID running=true|false"
  ctl link ORG_ID [--status S]     POST /_sim/link            -> "org ID linked status=S"
      Creates the link or sets its status (default SYNCED; any string, to test how
      unknown states pass through). Counters are not touched.
  ctl unlink ORG_ID                POST /_sim/unlink          -> "org ID unlinked"
  ctl rename ORG_ID NAME           POST /_sim/rename          -> "org ID renamed"
      Sets the org's name (any string: non-ASCII names test encodings) until `ctl reset`.
  ctl token ORG_ID                 GET  /_sim/token?org=ID    -> the raw token, or "(none)"
  ctl links                        GET  /_sim/links           -> "ID STATUS" per linked org,
                                   sorted by id (no output when none)
  ctl ratelimit [--capacity 10] [--refill 5] [--per 60] [--quiet] [--legacy] [--off]
                                   POST /_sim/ratelimit       -> "ratelimit capacity=C
                                   refill=R per=Ps headers=on|off body=parameters|legacy"
                                   or "ratelimit off" (see class TokenBucketMode)
  ctl counter NAME                 GET  /_sim/stats           -> that counter's value
  ctl expire-nonces                POST /_sim/expire-nonces   -> "nonces expired"
      One-shot: every nonce issued so far becomes stale, and later nonces work normally.
      For a nonce that keeps expiring, use `ctl fault stale_nonce --times -1`.
ctl link/unlink/rename/running/token refuse an org that is not in the data set.

selftest
========
Starts a simulator in-process on a free port and checks it against a hand-written keep-alive
digest client and urllib's HTTPDigestAuthHandler: the challenge and nonce/nc rules, paging,
every endpoint and error, envelope and pretty, every fault kind (each fires once and then
stops), the weak key, counters, the ctl output formats, the refusal of non-loopback hosts,
concurrency with latency, and serve's port file and SIGTERM exit. It prints
"selftest: N passed, M failed" and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import http.server
import io
import ipaddress
import json
import math
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable

# --------------------------------------------------------------------------------------------
# Constants that define the simulated API
# --------------------------------------------------------------------------------------------

API_PREFIX = "/api/public/v1.0"
CONTROL_PREFIX = "/_sim/"
REALM = "MMS Public API"
ORG_ID_BASE = "5e2211c17a3e5a48f5"  # + 6 hex digits of the org number = 24 hex digits
ORG_ID_RE = re.compile(r"\A[a-f0-9]{24}\Z")
DEFAULT_PUBLIC_KEY = "opsmigtest"
DEFAULT_PRIVATE_KEY = "sim-PRIVATE-9f8e7d6c5b4a"

DEFAULT_ITEMS_PER_PAGE = 100
MAX_ITEMS_PER_PAGE = 500
MAX_ORGS = 100_000           # well below 16**6, and small enough to page through in tests
MAX_REQUEST_BODY = 1 << 20   # a link request is tiny; refuse anything absurd
MAX_NONCES = 100_000         # bound memory when a client takes a fresh challenge every call
IDLE_TIMEOUT_S = 120         # idle keep-alive connections are closed, as real servers do

ENDPOINTS = ("list", "status", "create", "delete")
FAULT_TARGETS = ENDPOINTS + ("any",)
FAULT_KINDS = ("http", "garbage", "wrong_shape", "wrong_content_type", "long_status",
               "control_status", "oversized", "empty_ok", "stall", "drip", "reset",
               "stale_nonce", "slow", "lost_reply", "grow", "openapi_reply",
               "gateway_timeout", "redirect")
# Faults that let the endpoint act first (see the docstring).
AFTER_FAULTS = ("slow", "lost_reply", "grow", "openapi_reply", "gateway_timeout")
# Parameters each fault kind accepts beyond kind/on/org/times, with their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "http": {"code": 500, "body": "json", "error_code": None, "detail": None,
             "retry_after": None, "parameters": None},
    "stall": {"seconds": 30.0},
    "drip": {"interval_ms": 1000},
    "oversized": {"bytes": 2_000_000},
    "stale_nonce": {"stale": True},
    "slow": {"seconds": 1.0},
    "openapi_reply": {"code": 200},
    "redirect": {"code": 302},
}
OVERSIZED_SKELETON = b'{"status":"SYNCED","pad":""}'  # 28 bytes: the smallest oversized body

COUNTER_NAMES = ("requests", "list", "status", "create", "delete", "challenges",
                 "auth_failures", "malformed", "unknown_path", "connections", "faults_fired",
                 "rate_limited", "redirected")
COUNTS_LINE_KEYS = ("list", "status", "create", "delete", "challenges", "auth_failures",
                    "malformed")

# The real Ops Manager 401 body, in the real server's key order: it has no errorCode and
# no parameters (FACTS.md), so a client must not count on them.
UNAUTHORIZED_BODY = {"reason": "Unauthorized", "error": 401,
                     "detail": "You are not authorized for this resource."}

# Where the pages allow more than one answer, `ctl quirks` picks which one (FACTS.md):
# "already linked" is 409 or 400; a create succeeds with 201 or (the OpenAPI) 200, with only
# {"status"} or with the OpenAPI's source-organization view; a key without the Organization
# Owner role gets 401 or 403.  `ctl reset` restores these defaults.
QUIRK_DEFAULTS: dict[str, Any] = {"already_linked": 409, "create_code": 201,
                                  "create_fields": False, "non_owner": 401}
QUIRK_CHOICES: dict[str, tuple] = {"already_linked": (400, 409), "create_code": (200, 201),
                                   "create_fields": (False, True), "non_owner": (401, 403)}
MAX_ATTEMPTS_LOG = 100_000   # arrival times kept for `ctl attempts`; older ones are dropped
REDIRECT_PREFIX = "/redirected"  # where the redirect fault points; any request there is counted
CREATED_AT = "2026-11-28T12:00:00Z"  # fixed, so expected outputs stay deterministic

PROXY_HTML = ("<html><head><title>{code} {reason}</title></head><body><center><h1>{code} "
              "{reason}</h1></center><hr><center>nginx</center></body></html>")


def org_id_for(i: int) -> str:
    return ORG_ID_BASE + format(i, "06x")


def reason_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def dump_json(obj: Any, pretty: bool = False) -> bytes:
    """Serialize like the real server: compact by default, 2-space indent with pretty=true."""
    if pretty:
        text = json.dumps(obj, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate can only come from a decoded request; never let it break a reply.
    return text.encode("utf-8", "replace")


def error_body(code: int, error_code: str, detail: str, parameters: list | tuple = ()) -> dict:
    return {"detail": detail, "error": code, "errorCode": error_code,
            "parameters": list(parameters), "reason": reason_phrase(code)}


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


# --------------------------------------------------------------------------------------------
# Digest header parsing (shared by the server and the selftest client)
# --------------------------------------------------------------------------------------------

# One auth-param (RFC 7235): token = ( token / quoted-string ), followed by a comma or the end.
_AUTH_PARAM_RE = re.compile(
    r"""\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|\Z)""",
    re.S)


def parse_auth_params(text: str) -> dict[str, str] | None:
    """Parse 'k=v, k="v"' into a dict with lower-case keys. Return None on any syntax error
    or duplicate key. The server must not guess what an ambiguous header means."""
    params: dict[str, str] = {}
    text = text.strip()
    pos = 0
    while pos < len(text):
        m = _AUTH_PARAM_RE.match(text, pos)
        if m is None or m.end() == pos:
            return None
        key = m.group(1).lower()
        value = re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
        if key in params:
            return None
        params[key] = value
        pos = m.end()
    return params


def parse_digest_header(value: str) -> dict[str, str] | None:
    """Parse 'Digest k=v, ...' (an Authorization or WWW-Authenticate value)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    return parse_auth_params(rest)


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_response(user: str, password: str, realm: str, method: str, uri: str,
                    nonce: str, nc: str, cnonce: str, qop: str = "auth") -> str:
    ha1 = md5_hex(f"{user}:{realm}:{password}")
    ha2 = md5_hex(f"{method}:{uri}")
    return md5_hex(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------------------------
# Simulator state and API logic (no socket code here, so the logic is easy to follow)
# --------------------------------------------------------------------------------------------

@dataclass
class Org:
    id: str
    name: str
    linked: bool = False
    status: str = ""
    token: str | None = None
    running: bool = False


@dataclass
class ApiRequest:
    method: str
    target: str            # request-target exactly as sent (path + "?" + query)
    path: str
    query: str
    authorization: str | None
    body: bytes
    client_ip: str
    host: str              # scheme-less authority used for absolute hrefs
    # RateLimit-* headers for the reply, set by TokenBucketMode.admit()
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        # The first value wins, like most servlet containers.
        for k, v in urllib.parse.parse_qsl(self.query, keep_blank_values=True):
            if k == name:
                return v
        return None


@dataclass
class Reply:
    """What the HTTP layer must do. action: send | stall | drip | reset."""
    code: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str = "send"
    seconds: float = 0.0
    interval_ms: int = 0
    close: bool = False


class ControlError(Exception):
    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code


class _Out:
    """Builds JSON replies that honour pretty= and envelope= for one request."""

    def __init__(self, pretty: bool, envelope: bool):
        self.pretty = pretty
        self.envelope = envelope

    def json(self, code: int, obj: Any, *, envelope: bool = True,
             content_type: str = "application/json",
             headers: list[tuple[str, str]] | None = None) -> Reply:
        if self.envelope and envelope:
            obj, code = {"status": code, "content": obj}, 200
        if obj is None or code in (204, 304):
            return Reply(code, b"", None, headers or [])
        return Reply(code, dump_json(obj, self.pretty), content_type, headers or [])

    def error(self, code: int, error_code: str, detail: str, parameters: list | tuple = (),
              **kw: Any) -> Reply:
        return self.json(code, error_body(code, error_code, detail, parameters), **kw)


class Simulator:
    """All state, behind one lock. The lock is never held while sleeping or doing I/O."""

    def __init__(self, *, orgs: int = 5, latency_ms: int = 0,
                 public_key: str = DEFAULT_PUBLIC_KEY, private_key: str = DEFAULT_PRIVATE_KEY,
                 weak_key: tuple[str, str] | None = None, nonce_ttl: float = 300.0):
        self.lock = threading.Lock()
        # Set on shutdown, so stalled and dripping handlers end at once instead of after
        # their full duration.
        self.stopping = threading.Event()
        self.keys: dict[str, tuple[str, str]] = {public_key: (private_key, "owner")}
        if weak_key is not None:
            self.keys[weak_key[0]] = (weak_key[1], "weak")
        self.default_orgs = orgs
        self.default_latency_ms = latency_ms
        self.nonce_ttl = nonce_ttl
        # nonce -> [issued (monotonic), highest nc seen]. Insertion order is issue order, so
        # the oldest nonces are pruned from the front.
        self.nonces: dict[str, list] = {}
        self.orgs: dict[str, Org] = {}
        self.org_order: list[Org] = []
        self.faults: list[dict[str, Any]] = []
        self.counters: dict[str, int] = {}
        self.latency_ms = latency_ms
        self.bucket = TokenBucketMode()
        self.quirks: dict[str, Any] = dict(QUIRK_DEFAULTS)
        # (arrival time, endpoint) of every request routed to an endpoint, for `ctl attempts`
        self.attempts: list[tuple[float, str]] = []
        self.blackhole: list[socket.socket] = []
        self.reset()

    # -- state management ---------------------------------------------------------------------

    def reset(self, orgs: int | None = None) -> int:
        n = self.default_orgs if orgs is None else orgs
        if not 0 <= n <= MAX_ORGS:
            raise ControlError(f"orgs must be between 0 and {MAX_ORGS}")
        built = []
        for i in range(1, n + 1):
            org = Org(org_id_for(i), f"org-{i:04d}")
            if i % 3 != 0:
                org.linked, org.status = True, ("SYNCED" if i % 2 else "NOT_SYNCED")
            built.append(org)
        with self.lock:
            self.org_order = built
            self.orgs = {o.id: o for o in built}
            self.faults = []
            self.latency_ms = self.default_latency_ms
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)
            self.quirks = dict(QUIRK_DEFAULTS)
            self.attempts = []
        self.bucket.configure({"off": True})
        return n

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def stats(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counters)

    def current_latency(self) -> float:
        with self.lock:
            return self.latency_ms / 1000.0

    def _org_or_fail(self, org_id: Any) -> Org:
        # Caller holds the lock.
        if not isinstance(org_id, str) or org_id not in self.orgs:
            raise ControlError(f"unknown org {org_id!r}", 404)
        return self.orgs[org_id]

    # -- nonces -------------------------------------------------------------------------------

    def _issue_nonce(self) -> str:
        nonce = secrets.token_hex(16)
        now = time.monotonic()
        with self.lock:
            # Prune from the oldest end: expired nonces are useless, and the cap bounds memory.
            while self.nonces:
                oldest = next(iter(self.nonces))
                if len(self.nonces) < MAX_NONCES and now - self.nonces[oldest][0] <= self.nonce_ttl:
                    break
                del self.nonces[oldest]
            self.nonces[nonce] = [now, 0]
        return nonce

    def expire_nonces(self) -> int:
        with self.lock:
            n = len(self.nonces)
            self.nonces.clear()
        return n

    def _challenge(self, out: _Out, stale: bool) -> Reply:
        nonce = self._issue_nonce()
        header = (f'Digest realm="{REALM}", domain="", nonce="{nonce}", algorithm=MD5, '
                  f'qop="auth", stale={"true" if stale else "false"}')
        return Reply(401, dump_json(UNAUTHORIZED_BODY, out.pretty),
                     "application/json;charset=ISO-8859-1", [("WWW-Authenticate", header)])

    def _verify_digest(self, f: dict[str, str], req: ApiRequest) -> str | None:
        """Return the key's role if the digest answer is correct, ignoring nonce freshness."""
        required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(k not in f for k in required):
            return None
        if f.get("algorithm", "MD5").upper() != "MD5" or f["qop"] != "auth":
            return None
        if f["realm"] != REALM or not re.fullmatch(r"[0-9a-fA-F]{8}", f["nc"]):
            return None
        # The uri field must name this very request, or a captured header could be replayed
        # against another resource.
        if f["uri"] != req.target:
            return None
        key = self.keys.get(f["username"])
        if key is None:
            return None
        password, role = key
        expected = digest_response(f["username"], password, f["realm"], req.method, f["uri"],
                                   f["nonce"], f["nc"], f["cnonce"], f["qop"])
        if not hmac.compare_digest(expected, f["response"].lower()):
            return None
        return role

    def _authenticate(self, req: ApiRequest, out: _Out) -> tuple[str | None, Reply | None]:
        if req.authorization is None:
            self.count("challenges")
            return None, self._challenge(out, stale=False)
        fields = parse_digest_header(req.authorization)
        role = self._verify_digest(fields, req) if fields is not None else None
        if role is None:
            self.count("auth_failures")
            return None, self._challenge(out, stale=False)
        # The credentials are right. Now check the nonce is current and nc went up.
        nonce, nc = fields["nonce"], int(fields["nc"], 16)
        now = time.monotonic()
        with self.lock:
            entry = self.nonces.get(nonce)
            if entry is not None and now - entry[0] > self.nonce_ttl:
                del self.nonces[nonce]
                entry = None
            fresh = entry is not None and nc > entry[1]
            if fresh:
                entry[1] = nc
            else:
                self.counters["challenges"] += 1
        if not fresh:
            return None, self._challenge(out, stale=True)
        return role, None

    # -- faults -------------------------------------------------------------------------------

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in FAULT_KINDS:
            raise ControlError(f"unknown fault kind {kind!r} (one of {', '.join(FAULT_KINDS)})")
        fault: dict[str, Any] = {"kind": kind}
        on = spec.pop("on", None) or "status"
        if on not in FAULT_TARGETS:
            raise ControlError(f"on must be one of {', '.join(FAULT_TARGETS)}")
        fault["on"] = on
        org = spec.pop("org", None)
        if org is not None:
            if not isinstance(org, str) or not ORG_ID_RE.match(org):
                raise ControlError("org must be 24 lower-case hex digits")
            if on == "list":
                raise ControlError("org cannot be combined with on=list")
        fault["org"] = org
        fault["times"] = _int_arg(spec.pop("times", None), "times", 1, -1, 10**9)
        if fault["times"] == 0:
            raise ControlError("times must be -1 or at least 1")
        allowed = FAULT_PARAMS.get(kind, {})
        for name in spec:
            if name not in allowed:
                raise ControlError(f"parameter {name} does not apply to fault {kind}")
        for name, default in allowed.items():
            value = spec.get(name)
            if name == "code" and kind == "redirect":
                value = _int_arg(value, name, default, 300, 399)
            elif name == "code":
                value = _int_arg(value, name, default, 200, 599)
            elif name == "body":
                value = value or default
                if value not in ("json", "html", "empty"):
                    raise ControlError("body must be json, html or empty")
            elif name in ("error_code", "detail"):
                if value is not None and not isinstance(value, str):
                    raise ControlError(f"{name} must be a string")
            elif name == "retry_after":
                value = None if value is None else _int_arg(value, name, 0, 0, 10**9)
            elif name == "parameters":
                if value is not None and not isinstance(value, list):
                    raise ControlError("parameters must be a JSON array")
            elif name == "seconds":
                value = _float_arg(value, name, default, 0.0, 86400.0)
            elif name == "interval_ms":
                value = _int_arg(value, name, default, 0, 3_600_000)
            elif name == "bytes":
                value = _int_arg(value, name, default, len(OVERSIZED_SKELETON), 200_000_000)
            elif name == "stale":
                value = _bool_arg(value, name, default)
            fault[name] = value
        with self.lock:
            self.faults.append(fault)
        return dict(fault)

    def clear_faults(self) -> int:
        with self.lock:
            n = len(self.faults)
            self.faults = []
        return n

    def _take_fault(self, endpoint: str, org_id: str | None) -> dict[str, Any] | None:
        # Caller holds the lock.
        for i, f in enumerate(self.faults):
            if f["on"] not in (endpoint, "any"):
                continue
            if f["org"] is not None and f["org"] != org_id:
                continue
            if f["times"] > 0:
                f["times"] -= 1
                if f["times"] == 0:
                    del self.faults[i]
            self.counters["faults_fired"] += 1
            return dict(f)
        return None

    def _fault_reply(self, f: dict[str, Any], endpoint: str, org_id: str | None,
                     req: ApiRequest, out: _Out) -> Reply:
        kind = f["kind"]
        if kind == "http":
            code = f["code"]
            headers = [] if f["retry_after"] is None else [("Retry-After", str(f["retry_after"]))]
            if f["body"] == "json" and code == 401 and not (f["error_code"] or f["detail"]):
                return out.json(401, UNAUTHORIZED_BODY, headers=headers)
            if f["body"] == "json":
                error_code, detail, params = _default_fault_error(code, endpoint, org_id, req)
                if f["parameters"] is not None:
                    params = f["parameters"]
                return out.error(code, f["error_code"] or error_code, f["detail"] or detail,
                                 params, headers=headers)
            if f["body"] == "html" and code not in (204, 304):
                html = PROXY_HTML.format(code=code, reason=reason_phrase(code))
                return Reply(code, html.encode(), "text/html", headers)
            return Reply(code, b"", None, headers)
        if kind == "garbage":
            return Reply(200, b'{"status": "SYNC')
        if kind == "wrong_shape":
            return out.json(200, {"results": "nope"} if endpoint == "list" else ["SYNCED"])
        if kind == "wrong_content_type":
            return out.json(200, self._ok_payload(endpoint, org_id, req), content_type="text/html")
        if kind == "long_status":
            return out.json(200, {"status": "X" * 100})
        if kind == "control_status":
            return out.json(200, {"status": "SYNC\u0007ED\n"})
        if kind == "oversized":
            pad = f["bytes"] - len(OVERSIZED_SKELETON)
            return Reply(200, b'{"status":"SYNCED","pad":"' + b"x" * pad + b'"}')
        if kind == "empty_ok":
            return Reply(200, b"")
        if kind == "stall":
            return Reply(action="stall", seconds=f["seconds"])
        if kind == "drip":
            return Reply(200, dump_json(self._ok_payload(endpoint, org_id, req)),
                         action="drip", interval_ms=f["interval_ms"])
        if kind == "reset":
            return Reply(action="reset")
        if kind == "stale_nonce":
            self.count("challenges")
            return self._challenge(out, stale=f["stale"])
        if kind == "redirect":
            return _redirect_reply(f["code"], req)
        raise AssertionError(kind)

    def _ok_payload(self, endpoint: str, org_id: str | None, req: ApiRequest) -> Any:
        """The body a success would carry, computed without changing any state."""
        if endpoint == "list":
            code, page = self._list_page(req)
            if code != 200:  # the fault still needs some valid page
                code, page = self._list_page(req, force_defaults=True)
            return page
        if endpoint == "status":
            with self.lock:
                org = self.orgs.get(org_id or "")
                status = org.status if org is not None and org.linked else "SYNCED"
            return {"status": status}
        if endpoint == "create":
            return {"status": "SYNCED"}
        return {}

    # -- the API ------------------------------------------------------------------------------

    def handle_api(self, req: ApiRequest) -> Reply:
        out = _Out(truthy(req.param("pretty")), truthy(req.param("envelope")))
        self.count("requests")
        if req.path.startswith(REDIRECT_PREFIX + "/"):
            self.count("redirected")
        if req.path != API_PREFIX and not req.path.startswith(API_PREFIX + "/"):
            # Outside the API it is the web server in front of it that answers (the UI, a
            # proxy): an HTML 404 page, never authenticated, never enveloped, never the
            # API's JSON. A client with a wrong base URL path sees exactly this.
            page = PROXY_HTML.format(code=404, reason="Not Found")
            return Reply(404, page.encode(), "text/html")
        role, challenge = self._authenticate(req, out)
        if challenge is not None:
            return challenge

        endpoint, org_id, allowed = _route(req.method, req.path[len(API_PREFIX):])
        if allowed is None:
            self.count("unknown_path")
            return out.error(404, "RESOURCE_NOT_FOUND", f"Cannot find resource {req.path}.",
                             [req.path])
        if endpoint is None:
            return out.error(405, "METHOD_NOT_ALLOWED",
                             f"Method {req.method} is not allowed on {req.path}.",
                             [req.method], headers=[("Allow", ", ".join(allowed))])

        with self.lock:
            self.counters[endpoint] += 1
            self._log_attempt(endpoint)
            malformed = org_id is not None and not ORG_ID_RE.match(org_id)
            if malformed:
                self.counters["malformed"] += 1
                fault = None
            else:
                fault = self._take_fault(endpoint, org_id)
        limited = self.bucket.admit(req, out)
        if limited is not None:
            self.count("rate_limited")
            return limited
        if malformed:
            return out.error(400, "INVALID_ORG_ID",
                             f"An invalid organization ID {org_id} was specified.", [org_id])
        if fault is not None and fault["kind"] not in AFTER_FAULTS:
            return self._fault_reply(fault, endpoint, org_id, req, out)
        reply = self._endpoint_reply(req, out, endpoint, org_id, role)
        if fault is not None:
            return self._after_fault(fault, endpoint, org_id, reply, out)
        return reply

    def _after_fault(self, f: dict[str, Any], endpoint: str, org_id: str | None,
                     reply: Reply, out: _Out) -> Reply:
        """The faults of AFTER_FAULTS: the API has acted; then the network (or the API's
        other reply shape) has its say."""
        kind = f["kind"]
        if kind == "slow":
            reply.seconds = f["seconds"]
        elif kind == "lost_reply":
            reply = Reply(action="stall", seconds=0.0)
        elif kind == "gateway_timeout":
            html = PROXY_HTML.format(code=504, reason=reason_phrase(504))
            reply = Reply(504, html.encode(), "text/html")
        elif kind == "grow" and endpoint == "list":
            with self.lock:
                n = max(int(o.id[len(ORG_ID_BASE):], 16) for o in self.org_order) + 1 \
                    if self.org_order else 1
                org = Org(org_id_for(n), f"org-{n:04d}")
                if n % 3 != 0:
                    org.linked, org.status = True, ("SYNCED" if n % 2 else "NOT_SYNCED")
                self.org_order.insert(0, org)
                self.orgs[org.id] = org
        elif kind == "openapi_reply" and endpoint == "create" and 200 <= reply.code < 300:
            reply = out.json(f["code"], {
                "createdAt": "2026-11-28T12:00:00Z", "errorMessage": None,
                "lastSyncedAt": "2026-11-28T12:00:00Z", "sourceOrgId": org_id,
                "targetOrg": {"linkToken": "(redacted)"}})
        return reply

    def _endpoint_reply(self, req: ApiRequest, out: _Out, endpoint: str, org_id: str | None,
                        role: str | None) -> Reply:
        if endpoint == "list":
            code, page = self._list_page(req)
            return out.json(code, page)
        assert org_id is not None
        if endpoint == "create":
            # Parse outside the lock. The errors are still reported in API order below.
            doc, problem = _parse_link_request(req.body)
        with self.lock:
            org = self.orgs.get(org_id)
            if org is None:
                return out.error(404, "ORG_NOT_FOUND",
                                 f"No organization with ID {org_id} exists.", [org_id])
            if role != "owner":
                return out.error(self.quirks["non_owner"], "NOT_ORG_ADMIN",
                                 "The API key does not have the Organization Owner role.")
            if endpoint == "status":
                if not org.linked:
                    return _no_link(out, org_id)
                return out.json(200, {"status": org.status})
            if endpoint == "create":
                if isinstance(doc, dict) and isinstance(doc.get("linkToken"), str):
                    org.token = doc["linkToken"]
                if problem is not None:
                    return out.error(*problem)
                if org.linked:
                    return out.error(self.quirks["already_linked"],
                                     "ORG_MIGRATION_LINK_ALREADY_EXISTS",
                                     f"Organization {org_id} is already linked to an Atlas "
                                     "organization.", [org_id])
                org.linked, org.status = True, "SYNCED"
                return out.json(self.quirks["create_code"], self._create_reply(org))
            # delete
            if not org.linked:
                return _no_link(out, org_id)
            if org.running:
                return out.error(409, "CANNOT_DELETE_ORG_LINK_WITH_RUNNING_LIVE_EXPORT",
                                 f"Cannot delete the link of organization {org_id}: a live "
                                 "migration is running.", [org_id])
            org.linked, org.status = False, ""
            return out.json(204, None)

    def _list_page(self, req: ApiRequest, force_defaults: bool = False) -> tuple[int, Any]:
        values = {}
        for name, default, limit in (("pageNum", 1, None),
                                     ("itemsPerPage", DEFAULT_ITEMS_PER_PAGE, MAX_ITEMS_PER_PAGE)):
            raw = None if force_defaults else req.param(name)
            value = default if raw is None else _positive_int(raw)
            if value is None or (limit is not None and value > limit):
                return 400, error_body(400, "INVALID_ATTRIBUTE",
                                       f"Invalid attribute {name} specified.", [name])
            values[name] = value
        page, per_page = values["pageNum"], values["itemsPerPage"]
        name_filter = (req.param("name") or "").lower()
        with self.lock:
            orgs = [o for o in self.org_order if o.name.lower().startswith(name_filter)]
            start = (page - 1) * per_page
            results = [{"id": o.id, "name": o.name, "isDeleted": False, "links": []}
                       for o in orgs[start:start + per_page]]
        total = len(orgs)

        # Keep the caller's other parameters (envelope, pretty, name) in the links, so that
        # following "next" gives the same kind of answer.
        kept = [(k, v) for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True)
                if k not in ("pageNum", "itemsPerPage")]

        def href(p: int) -> str:
            q = urllib.parse.urlencode(kept + [("pageNum", p), ("itemsPerPage", per_page)])
            return f"http://{req.host}{API_PREFIX}/orgs?{q}"

        links = [{"rel": "self", "href": href(page)}]
        if page > 1:
            links.append({"rel": "previous", "href": href(page - 1)})
        if page * per_page < total:
            links.append({"rel": "next", "href": href(page + 1)})
        return 200, {"links": links, "results": results, "totalCount": total}

    # -- the control API ----------------------------------------------------------------------

    def handle_control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        name = path[len(CONTROL_PREFIX):]
        args: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if body.strip():
            try:
                doc = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return _control_error(400, "control request body is not JSON")
            if not isinstance(doc, dict):
                return _control_error(400, "control request body must be a JSON object")
            args.update(doc)
        ops: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            "ping": ("GET", lambda a: {"ok": True}),
            "stats": ("GET", lambda a: self.stats()),
            "reset": ("POST", lambda a: {"orgs": self.reset(
                None if a.get("orgs") is None else _int_arg(a["orgs"], "orgs", 0, 0, MAX_ORGS))}),
            "reset-counters": ("POST", self._ctl_reset_counters),
            "fault": ("POST", self.add_fault),
            "faults": ("GET", self._ctl_faults),
            "clear-faults": ("POST", lambda a: {"cleared": self.clear_faults()}),
            "latency": ("POST", self._ctl_latency),
            "running": ("POST", self._ctl_running),
            "link": ("POST", self._ctl_link),
            "unlink": ("POST", self._ctl_unlink),
            "rename": ("POST", self._ctl_rename),
            "token": ("GET", self._ctl_token),
            "links": ("GET", self._ctl_links),
            "expire-nonces": ("POST", lambda a: {"expired": self.expire_nonces()}),
            "ratelimit": ("POST", self.bucket.configure),
            "attempts": ("GET", self._ctl_attempts),
            "quirks": ("POST", self._ctl_quirks),
            "blackhole": ("POST", self._ctl_blackhole),
        }
        if name not in ops:
            return _control_error(404, f"unknown control command {name!r}")
        want, fn = ops[name]
        if method != want:
            return _control_error(405, f"/_sim/{name} needs {want}")
        try:
            return Reply(200, dump_json(fn(args)))
        except ControlError as e:
            return _control_error(e.code, str(e))

    def _ctl_reset_counters(self, args: dict[str, Any]) -> dict:
        with self.lock:
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)
            self.attempts = []
        return {}

    def _ctl_faults(self, args: dict[str, Any]) -> dict:
        with self.lock:
            return {"faults": [dict(f) for f in self.faults]}

    def _ctl_latency(self, args: dict[str, Any]) -> dict:
        ms = _int_arg(args.get("ms"), "ms", None, 0, 600_000)
        with self.lock:
            self.latency_ms = ms
        return {"latency_ms": ms}

    def _ctl_running(self, args: dict[str, Any]) -> dict:
        on = _bool_arg(args.get("running"), "running", True)
        with self.lock:
            org = self._org_or_fail(args.get("org"))
            org.running = on
        return {"org": org.id, "running": on}

    def _ctl_link(self, args: dict[str, Any]) -> dict:
        status = args.get("status") or "SYNCED"
        if not isinstance(status, str):
            raise ControlError("status must be a string")
        with self.lock:
            org = self._org_or_fail(args.get("org"))
            org.linked, org.status = True, status
        return {"org": org.id, "status": status}

    def _ctl_unlink(self, args: dict[str, Any]) -> dict:
        with self.lock:
            org = self._org_or_fail(args.get("org"))
            org.linked, org.status = False, ""
        return {"org": org.id}

    def _ctl_rename(self, args: dict[str, Any]) -> dict:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise ControlError("name must be a non-empty string")
        with self.lock:
            org = self._org_or_fail(args.get("org"))
            org.name = name
        return {"org": org.id}

    def _ctl_token(self, args: dict[str, Any]) -> dict:
        with self.lock:
            org = self._org_or_fail(args.get("org"))
            return {"org": org.id, "token": org.token}

    def _ctl_links(self, args: dict[str, Any]) -> dict:
        with self.lock:
            links = [{"id": o.id, "status": o.status} for o in self.org_order if o.linked]
        links.sort(key=lambda d: d["id"])
        return {"links": links}

    # -- strictness: attempt times, the API's alternative answers, a port that never accepts --

    def _log_attempt(self, endpoint: str) -> None:
        # Caller holds the lock.  Arrival times let tests check retry delays (Retry-After)
        # from the server's side instead of by wall clock in the client.
        if len(self.attempts) >= MAX_ATTEMPTS_LOG:
            del self.attempts[: MAX_ATTEMPTS_LOG // 2]
        self.attempts.append((time.monotonic(), endpoint))

    def _ctl_attempts(self, args: dict[str, Any]) -> dict:
        on = args.get("on") or "any"
        if on not in FAULT_TARGETS:
            raise ControlError(f"on must be one of {', '.join(FAULT_TARGETS)}")
        with self.lock:
            times = [t for t, ep in self.attempts if on in (ep, "any")]
        gaps = [b - a for a, b in zip(times, times[1:])]
        return {"on": on, "attempts": len(times), "gaps": gaps}

    def _ctl_quirks(self, args: dict[str, Any]) -> dict:
        with self.lock:
            new = dict(self.quirks)
        for name, choices in QUIRK_CHOICES.items():
            value = args.get(name)
            if value is None:
                continue
            value = (_bool_arg(value, name, False) if isinstance(choices[0], bool)
                     else _int_arg(value, name, None, 0, 999))
            if value not in choices:
                raise ControlError(f"{name} must be one of {', '.join(map(str, choices))}")
            new[name] = value
        unknown = set(args) - set(QUIRK_CHOICES)
        if unknown:
            raise ControlError(f"unknown quirk {sorted(unknown)[0]!r}")
        with self.lock:
            self.quirks = new
        return dict(new)

    def _ctl_blackhole(self, args: dict[str, Any]) -> dict:
        """A loopback port whose accept queue is full, so a connect() there never completes:
        for connect_timeout tests without leaving the machine.  listen(0) queues one
        connection; the simulator makes it itself and never accepts it."""
        with self.lock:
            if not self.blackhole:
                lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(0)
                filler = socket.create_connection(lsock.getsockname(), timeout=5)
                self.blackhole = [lsock, filler]
            return {"port": self.blackhole[0].getsockname()[1]}

    def _create_reply(self, org: Org) -> dict:
        # Caller holds the lock.  The OpenAPI's source-organization view, when asked for.
        if not self.quirks["create_fields"]:
            return {"status": org.status}
        return {"createdAt": CREATED_AT, "errorMessage": None, "lastSyncedAt": CREATED_AT,
                "sourceOrgId": org.id, "status": org.status,
                "targetOrg": {"linkToken": org.token}}


def _route(method: str, rest: str) -> tuple[str | None, str | None, tuple[str, ...] | None]:
    """Map a path below the prefix to (endpoint, raw org id, allowed methods).
    allowed is None for an unknown path; endpoint is None for a method not allowed."""
    segs = rest.split("/")  # rest starts with "/", so segs[0] == ""
    table: dict[str, str]
    if segs == ["", "orgs"]:
        table, org_id = {"GET": "list"}, None
    elif len(segs) == 5 and segs[1] == "orgs" and segs[3:] == ["liveExport", "migrationLink"]:
        table, org_id = {"POST": "create", "DELETE": "delete"}, segs[2]
    elif (len(segs) == 6 and segs[1] == "orgs"
          and segs[3:] == ["liveExport", "migrationLink", "status"]):
        table, org_id = {"GET": "status"}, segs[2]
    else:
        return None, None, None
    if org_id is not None:
        # Decode after splitting, so "%2F" cannot invent path segments. Whatever it decodes
        # to is then checked against the id syntax.
        org_id = urllib.parse.unquote(org_id, errors="replace")
    return table.get(method), org_id, tuple(table)


def _redirect_reply(code: int, req: ApiRequest) -> Reply:
    """A redirect to a path of this simulator outside the API, where any request is counted
    as `redirected`: a client that follows it (and might send its credentials) shows there."""
    location = f"http://{req.host}{REDIRECT_PREFIX}{req.target}"
    return Reply(code, b"", None, [("Location", location)])


def _no_link(out: _Out, org_id: str) -> Reply:
    return out.error(404, "RESOURCE_NOT_FOUND",
                     f"No migration link exists for organization {org_id}.", [org_id])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_link_request(body: bytes) -> tuple[Any, tuple | None]:
    """Return (decoded document or None, error args for _Out.error or None)."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, (400, "INVALID_JSON", "Received JSON is malformed.", [])
    if not isinstance(doc, dict):
        return doc, (400, "INVALID_JSON", "Received JSON does not represent an object.", [])
    if "linkToken" not in doc:
        return doc, (400, "MISSING_ATTRIBUTE",
                     "The required attribute linkToken was not specified.", ["linkToken"])
    token = doc["linkToken"]
    if not isinstance(token, str) or token == "":
        return doc, (400, "INVALID_ATTRIBUTE", "Invalid attribute linkToken specified.",
                     ["linkToken"])
    if token.startswith("invalid"):
        return doc, (400, "INVALID_ATTRIBUTE", "The link token is invalid or expired.",
                     ["linkToken"])
    return doc, None


def _default_fault_error(code: int, endpoint: str, org_id: str | None,
                         req: ApiRequest) -> tuple[str, str, list]:
    if code == 400:
        return "INVALID_ATTRIBUTE", "Invalid attribute specified.", []
    if code == 401:
        return "USER_UNAUTHORIZED", "You are not authorized for this resource.", []
    if code == 403:
        return ("IP_ADDRESS_NOT_ON_WHITELIST",
                f"IP address {req.client_ip} is not allowed to access this resource.",
                [req.client_ip])
    if code == 404:
        return "RESOURCE_NOT_FOUND", f"Cannot find resource {req.path}.", [req.path]
    if code == 409 and endpoint == "create":
        return ("ORG_MIGRATION_LINK_ALREADY_EXISTS",
                f"Organization {org_id} is already linked to an Atlas organization.", [org_id])
    if code == 409:
        return ("CANNOT_DELETE_ORG_LINK_WITH_RUNNING_LIVE_EXPORT",
                f"Cannot delete the link of organization {org_id}: a live migration is "
                "running.", [org_id])
    if code == 429:
        return ("RATE_LIMITED",
                f"Resource {req.path} is limited to 100 requests every 1 minute.",
                [req.path, 100, 1])
    if code == 500:
        return "UNEXPECTED_ERROR", "Unexpected error.", []
    phrase = reason_phrase(code)
    return re.sub(r"[^A-Z0-9]+", "_", phrase.upper()).strip("_"), phrase + ".", []


def _control_error(code: int, message: str) -> Reply:
    return Reply(code, dump_json({"error": message}))


def _positive_int(raw: str) -> int | None:
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) and int(raw) >= 1 else None


def _int_arg(value: Any, name: str, default: int | None, lo: int, hi: int) -> int:
    if value is None:
        if default is None:
            raise ControlError(f"{name} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ControlError(f"{name} must be an integer")
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]+", value.strip()):
            raise ControlError(f"{name} must be an integer")
        value = int(value)
    if not lo <= value <= hi:
        raise ControlError(f"{name} must be between {lo} and {hi}")
    return value


def _float_arg(value: Any, name: str, default: float, lo: float, hi: float) -> float:
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        result = float(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be a number") from None
    if not lo <= result <= hi:
        raise ControlError(f"{name} must be between {lo:g} and {hi:g}")
    return result


def _bool_arg(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ControlError(f"{name} must be true or false")


# --------------------------------------------------------------------------------------------
# Rate limit: the token bucket (FACTS.md "Rate limits: the token bucket"), off by default
# --------------------------------------------------------------------------------------------

class TokenBucketMode:
    """The API's rate limit, as `ctl ratelimit` sets it (`ctl reset` turns it off).

    One bucket for the whole simulator (the tests use one API key): `capacity` tokens,
    `refill` tokens added every `per` seconds (continuously, in fractions), never more than
    `capacity`. Every authenticated request routed to an endpoint takes a token, after the
    digest handshake (401 challenges are free) and before faults and the endpoint logic, so
    a refused request changes nothing. With no token left the answer is 429 with
    Retry-After (whole seconds until one token is back, at least 1) and the body of FACTS.md:
      {"detail": "Rate limit exceeded for api/public/v1.0/orgs. Please retry after S seconds.
       Request capacity: C. Refill rate: R per P seconds.", "error": 429,
       "errorCode": "RATE_LIMITED_TOKEN_BUCKET",
       "parameters": ["api/public/v1.0/orgs", S, C, R, P], "reason": "Too Many Requests"}
    (enveloped like any API error). Every reply of a routed request carries RateLimit-Limit
    (capacity) and RateLimit-Remaining (tokens left, rounded down).
      --quiet   no RateLimit-* and no Retry-After headers: a server that says nothing
      --legacy  the older 429: errorCode RATE_LIMITED, no parameters
    Each 429 is counted as `rate_limited` (and in its endpoint's counter).
    """

    ENDPOINT_SET = "api/public/v1.0/orgs"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.on = False
        self.capacity = self.refill = 0
        self.per = 1.0
        self.headers, self.legacy = True, False
        self.tokens = 0.0
        self.at = 0.0

    def configure(self, args: dict[str, Any]) -> dict:
        if _bool_arg(args.get("off"), "off", False):
            with self.lock:
                self.on = False
            return {"on": False}
        capacity = _int_arg(args.get("capacity"), "capacity", 10, 1, 1_000_000)
        refill = _int_arg(args.get("refill"), "refill", 5, 1, 1_000_000)
        per = _float_arg(args.get("per"), "per", 60.0, 0.001, 86400.0)
        headers = _bool_arg(args.get("headers"), "headers", True)
        legacy = _bool_arg(args.get("legacy"), "legacy", False)
        with self.lock:
            self.on, self.capacity, self.refill, self.per = True, capacity, refill, per
            self.headers, self.legacy = headers, legacy
            self.tokens, self.at = float(capacity), time.monotonic()
        return {"on": True, "capacity": capacity, "refill": refill, "per": per,
                "headers": headers, "legacy": legacy}

    @staticmethod
    def describe(got: dict) -> str:
        if not got["on"]:
            return "ratelimit off"
        return (f"ratelimit capacity={got['capacity']} refill={got['refill']} "
                f"per={got['per']:g}s headers={'on' if got['headers'] else 'off'} "
                f"body={'legacy' if got['legacy'] else 'parameters'}")

    def admit(self, req: ApiRequest, out: _Out) -> Reply | None:
        """Take a token: None when there was one (RateLimit-* headers go into
        req.extra_headers), else the 429 reply."""
        with self.lock:
            if not self.on:
                return None
            now = time.monotonic()
            self.tokens = min(float(self.capacity),
                              self.tokens + (now - self.at) * self.refill / self.per)
            self.at = now
            ok = self.tokens >= 1
            if ok:
                self.tokens -= 1
            remaining = int(self.tokens) if ok else 0
            retry = max(1, math.ceil((1 - self.tokens) * self.per / self.refill))
            capacity, refill, per = self.capacity, self.refill, self.per
            headers, legacy = self.headers, self.legacy
        limit_headers = ([("RateLimit-Limit", str(capacity)),
                          ("RateLimit-Remaining", str(remaining))] if headers else [])
        if ok:
            req.extra_headers.extend(limit_headers)
            return None
        if headers:
            limit_headers.append(("Retry-After", str(retry)))
        if legacy:
            return out.error(429, "RATE_LIMITED",
                             f"Resource {req.path} is limited to {refill} requests every "
                             f"{per:g} seconds.", [], headers=limit_headers)
        per_shown: Any = int(per) if per == int(per) else per
        return out.error(429, "RATE_LIMITED_TOKEN_BUCKET",
                         f"Rate limit exceeded for {self.ENDPOINT_SET}. Please retry after "
                         f"{retry} seconds. Request capacity: {capacity}. Refill rate: "
                         f"{refill} per {per_shown} seconds.",
                         [self.ENDPOINT_SET, retry, capacity, refill, per_shown],
                         headers=limit_headers)


# --------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------

class SimHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as clients that reuse handles expect
    disable_nagle_algorithm = True  # otherwise Nagle + delayed ACK costs ~40 ms per reply
    server_version = "opsmig_sim"
    timeout = IDLE_TIMEOUT_S        # drop idle keep-alive connections eventually
    server: "SimServer"

    def setup(self) -> None:
        super().setup()
        self._first_request = True

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: request lines and errors can carry credentials, and the test
        # output must stay clean.
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        sim = self.server.sim
        target = self.path
        if target.startswith(("http://", "https://")):  # absolute-form, as sent to proxies
            parts = urllib.parse.urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        is_control = path.startswith(CONTROL_PREFIX)
        if self._first_request:
            self._first_request = False
            if not is_control:
                sim.count("connections")
        body = self._read_body()
        if body is None:
            return
        if is_control:
            self._emit(sim.handle_control(self.command, path, query, body))
            return
        req = ApiRequest(method=self.command, target=self.path, path=path, query=query,
                         authorization=self.headers.get("Authorization"), body=body,
                         client_ip=self.client_address[0], host=self._authority())
        reply = sim.handle_api(req)
        reply.headers.extend(req.extra_headers)
        latency = sim.current_latency() + (reply.seconds if reply.action == "send" else 0)
        if latency > 0:
            sim.stopping.wait(latency)
        self._emit(reply)

    def _authority(self) -> str:
        host = self.headers.get("Host", "")
        if re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?", host):
            return host
        addr, port = self.server.server_address[:2]
        return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"

    def _read_body(self) -> bytes | None:
        """Read the whole request body. It must be read even before a 401, or the next
        request on this keep-alive connection would be parsed from the middle of it."""
        te = self.headers.get("Transfer-Encoding")
        try:
            if te is not None and te.strip().lower() != "identity":
                if te.strip().lower() != "chunked":
                    self._emit(Reply(501, dump_json({"error": "unsupported Transfer-Encoding"}),
                                     close=True))
                    return None
                return self._read_chunked()
            length = self.headers.get("Content-Length")
            if length is None:
                return b""
            if not re.fullmatch(r"[0-9]{1,12}", length.strip()):
                self._emit(Reply(400, dump_json({"error": "bad Content-Length"}), close=True))
                return None
            n = int(length)
            if n > MAX_REQUEST_BODY:
                self._emit(Reply(413, dump_json({"error": "request body too large"}),
                                 close=True))
                return None
            data = self.rfile.read(n)
            if len(data) < n:
                self.close_connection = True
                return None
            return data
        except (OSError, ValueError):
            self.close_connection = True
            return None

    def _read_chunked(self) -> bytes | None:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip(), 16)  # ValueError -> caller closes
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return bytes(data)
            if len(data) + size > MAX_REQUEST_BODY:
                self._emit(Reply(413, dump_json({"error": "request body too large"}),
                                 close=True))
                return None
            data += self.rfile.read(size)
            self.rfile.readline(1024)

    def _emit(self, r: Reply) -> None:
        if r.action == "reset":
            self._reset_connection()
            return
        if r.action == "stall":
            # Blocks only this connection's thread. Then the server closes it normally.
            self.server.sim.stopping.wait(r.seconds)
            self.close_connection = True
            return
        try:
            self.send_response(r.code)
            if r.content_type:
                self.send_header("Content-Type", r.content_type)
            for name, value in r.headers:
                self.send_header(name, value)
            if r.code not in (204, 304):  # RFC 9110: no Content-Length on 204
                self.send_header("Content-Length", str(len(r.body)))
            if r.close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD" or not r.body:
                return
            if r.action == "drip":
                self._drip(r.body, r.interval_ms / 1000.0)
            else:
                self.wfile.write(r.body)
        except OSError:
            self.close_connection = True

    def _drip(self, body: bytes, interval: float) -> None:
        for i in range(len(body)):
            if self.server.sim.stopping.wait(interval):
                self.close_connection = True
                return
            self.wfile.write(body[i:i + 1])

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN. Close the fd
        # here and now: the rfile still refers to the socket, so socket.close() would not
        # really close it, and socketserver would first send a polite shutdown(SHUT_WR).
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())
        except OSError:
            pass


class SimServer(http.server.ThreadingHTTPServer):
    daemon_threads = True        # a stalled or idle connection must never block exit
    request_queue_size = 128     # bursts of parallel clients must not be refused
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator, family: int):
        self.address_family = family
        self.sim = sim
        super().__init__(address, SimHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can hang in a sandbox.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish (timeouts, resets) are normal in fault tests. Anything else is
        # a bug in the simulator and is worth a traceback on stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)


def check_loopback(host: str) -> tuple[str, str, int]:
    """Return (bind address, display host, address family) or raise ValueError."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h.lower() == "localhost":
        return "127.0.0.1", "localhost", socket.AF_INET
    try:
        addr = ipaddress.ip_address(h)
    except ValueError:
        raise ValueError(f"refusing host {host!r}: only loopback addresses "
                         "(127.0.0.0/8, localhost, ::1) are allowed") from None
    if not addr.is_loopback:
        raise ValueError(f"refusing host {host!r}: only loopback addresses "
                         "(127.0.0.0/8, localhost, ::1) are allowed")
    if addr.version == 6:
        return str(addr), f"[{addr}]", socket.AF_INET6
    return str(addr), str(addr), socket.AF_INET


def make_server(host: str, port: int, sim: Simulator,
                tls: tuple[str, str] | None = None) -> tuple[SimServer, str]:
    """tls = (certificate file, key file) serves HTTPS, for the FDW's TLS checks
    (test/tls-check.sh); the ctl client speaks plain HTTP only, so a TLS simulator is
    driven by its data set and serve-time flags alone."""
    bind, display, family = check_loopback(host)
    server = SimServer((bind, port), sim, family)
    if tls is None:
        return server, f"http://{display}:{server.server_address[1]}"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls)
    # The handshake waits for the handler thread's first read, so a client that
    # connects and says nothing cannot hold up accept() for everyone else.
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
    return server, f"https://{display}:{server.server_address[1]}"


def cmd_serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="opsmig_sim.py serve",
                                description="Run the Ops Manager migration-link API simulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--orgs", type=int, default=5)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--public-key", default=DEFAULT_PUBLIC_KEY)
    p.add_argument("--private-key", default=DEFAULT_PRIVATE_KEY)
    p.add_argument("--weak-key", metavar="PUB:PRIV")
    p.add_argument("--nonce-ttl", type=float, default=300.0)
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (needs --tls-key)")
    p.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    a = p.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"opsmig_sim: {msg}", file=sys.stderr)
        return 2

    weak = None
    if a.weak_key is not None:
        pub, sep, priv = a.weak_key.partition(":")
        if not sep or not pub or not priv:
            return fail("--weak-key must be PUBLIC:PRIVATE")
        if pub == a.public_key:
            return fail("--weak-key must use a public key other than --public-key")
        weak = (pub, priv)
    if not 0 <= a.orgs <= MAX_ORGS:
        return fail(f"--orgs must be between 0 and {MAX_ORGS}")
    if a.latency_ms < 0 or a.nonce_ttl <= 0 or not 0 <= a.port <= 65535:
        return fail("--latency-ms must be >= 0, --nonce-ttl > 0, --port 0..65535")
    sim = Simulator(orgs=a.orgs, latency_ms=a.latency_ms, public_key=a.public_key,
                    private_key=a.private_key, weak_key=weak, nonce_ttl=a.nonce_ttl)
    try:
        if bool(a.tls_cert) != bool(a.tls_key):
            return fail("--tls-cert and --tls-key go together")
        server, url = make_server(a.host, a.port, sim,
                                  (a.tls_cert, a.tls_key) if a.tls_cert else None)
    except ValueError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"cannot listen on {a.host}:{a.port}: {e.strerror or e}")

    port = server.server_address[1]
    if a.port_file:
        tmp = f"{a.port_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.port_file)  # atomic: readers see no file or the whole number

    def stop(signum: int, frame: Any) -> None:
        sim.stopping.set()
        # shutdown() waits for serve_forever() to return, which runs in this (main)
        # thread, so it must be called from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"opsmig_sim listening on {url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if a.port_file:
            with contextlib.suppress(OSError):
                with open(a.port_file) as f:
                    mine = f.read().strip() == str(port)
                if mine:  # do not remove a file another simulator has written since
                    os.unlink(a.port_file)
    return 0


# --------------------------------------------------------------------------------------------
# ctl: the control client
# --------------------------------------------------------------------------------------------

class _CtlArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as the ctl contract promises
        raise CtlFailure(f"{self.prog}: {message}", 2)


class CtlFailure(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _ctl_call(base: str, method: str, name: str, payload: dict | None = None,
              query: dict | None = None) -> Any:
    url = base.rstrip("/") + CONTROL_PREFIX + name
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    # No proxies: an http_proxy in the environment must not capture loopback control calls.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read().decode("utf-8"))["error"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            message = f"HTTP {e.code}"
        raise CtlFailure(message) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise CtlFailure(f"cannot reach simulator at {base}: {reason}") from None


def run_ctl(argv: list[str], base: str | None) -> int:
    try:
        return _run_ctl(argv, base)
    except CtlFailure as e:
        print(f"opsmig_sim ctl: {e}", file=sys.stderr)
        return e.code


def _run_ctl(argv: list[str], base: str | None) -> int:
    p = _CtlArgumentParser(prog="ctl", add_help=False)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_CtlArgumentParser)
    for name in ("ping", "counts", "stats", "reset-counters", "faults", "clear-faults",
                 "links", "expire-nonces"):
        sub.add_parser(name, add_help=False)
    sub.add_parser("reset", add_help=False).add_argument("--orgs", type=int)
    f = sub.add_parser("fault", add_help=False)
    f.add_argument("kind", choices=FAULT_KINDS)
    f.add_argument("--on", choices=FAULT_TARGETS)
    f.add_argument("--org")
    f.add_argument("--times", type=int)
    f.add_argument("--code", type=int)
    f.add_argument("--body", choices=("json", "html", "empty"))
    f.add_argument("--error-code")
    f.add_argument("--detail")
    f.add_argument("--retry-after", type=int)
    f.add_argument("--parameters", type=json.loads)
    f.add_argument("--seconds", type=float)
    f.add_argument("--interval-ms", type=int)
    f.add_argument("--bytes", type=int)
    f.add_argument("--stale", choices=("true", "false"))
    sub.add_parser("latency", add_help=False).add_argument("ms", type=int)
    r = sub.add_parser("running", add_help=False)
    r.add_argument("org")
    r.add_argument("--off", action="store_true")
    lk = sub.add_parser("link", add_help=False)
    lk.add_argument("org")
    lk.add_argument("--status", default="SYNCED")
    sub.add_parser("unlink", add_help=False).add_argument("org")
    rn = sub.add_parser("rename", add_help=False)
    rn.add_argument("org")
    rn.add_argument("name")
    sub.add_parser("token", add_help=False).add_argument("org")
    rl = sub.add_parser("ratelimit", add_help=False)
    rl.add_argument("--capacity", type=int)
    rl.add_argument("--refill", type=int)
    rl.add_argument("--per", type=float)
    rl.add_argument("--quiet", action="store_true")
    rl.add_argument("--legacy", action="store_true")
    rl.add_argument("--off", action="store_true")
    sub.add_parser("counter", add_help=False).add_argument("name", choices=COUNTER_NAMES)
    _add_strict_ctl_parsers(sub)
    a = p.parse_args(argv)

    if not base:
        raise CtlFailure("SIM_URL is not set (e.g. SIM_URL=http://127.0.0.1:41234)")
    if not base.startswith("http://"):
        raise CtlFailure(f"SIM_URL must be an http:// URL, not {base!r}")

    cmd = a.cmd
    if cmd == "ping":
        _ctl_call(base, "GET", "ping")
        print("pong")
    elif cmd == "counts":
        s = _ctl_call(base, "GET", "stats")
        print(" ".join(f"{k}={s[k]}" for k in COUNTS_LINE_KEYS))
    elif cmd == "stats":
        print(json.dumps(_ctl_call(base, "GET", "stats"), sort_keys=True))
    elif cmd == "reset":
        payload = {} if a.orgs is None else {"orgs": a.orgs}
        print(f"reset orgs={_ctl_call(base, 'POST', 'reset', payload)['orgs']}")
    elif cmd == "reset-counters":
        _ctl_call(base, "POST", "reset-counters", {})
        print("counters reset")
    elif cmd == "fault":
        payload = {"kind": a.kind}
        for name in ("on", "org", "times", "code", "body", "error_code", "detail",
                     "retry_after", "seconds", "interval_ms", "bytes", "stale", "parameters"):
            value = getattr(a, name)
            if value is not None:
                payload[name] = value
        got = _ctl_call(base, "POST", "fault", payload)
        print(f"fault {got['kind']} on={got['on']} times={got['times']}")
    elif cmd == "faults":
        for got in _ctl_call(base, "GET", "faults")["faults"]:
            print(f"{got['kind']} on={got['on']} times={got['times']}")
    elif cmd == "clear-faults":
        _ctl_call(base, "POST", "clear-faults", {})
        print("faults cleared")
    elif cmd == "latency":
        print(f"latency {_ctl_call(base, 'POST', 'latency', {'ms': a.ms})['latency_ms']} ms")
    elif cmd == "running":
        got = _ctl_call(base, "POST", "running", {"org": a.org, "running": not a.off})
        print(f"org {got['org']} running={'true' if got['running'] else 'false'}")
    elif cmd == "link":
        got = _ctl_call(base, "POST", "link", {"org": a.org, "status": a.status})
        print(f"org {got['org']} linked status={got['status']}")
    elif cmd == "unlink":
        got = _ctl_call(base, "POST", "unlink", {"org": a.org})
        print(f"org {got['org']} unlinked")
    elif cmd == "rename":
        got = _ctl_call(base, "POST", "rename", {"org": a.org, "name": a.name})
        print(f"org {got['org']} renamed")
    elif cmd == "token":
        token = _ctl_call(base, "GET", "token", query={"org": a.org})["token"]
        # Raw bytes, so quotes, backslashes and newlines come out exactly as received.
        text = "(none)" if token is None else token
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is not None:
            out.write(text.encode("utf-8", "backslashreplace") + b"\n")
            out.flush()
        else:
            print(text)
    elif cmd == "links":
        for link in _ctl_call(base, "GET", "links")["links"]:
            print(f"{link['id']} {link['status']}")
    elif cmd == "expire-nonces":
        _ctl_call(base, "POST", "expire-nonces", {})
        print("nonces expired")
    elif cmd == "ratelimit":
        payload = {"off": a.off, "headers": not a.quiet, "legacy": a.legacy}
        for name in ("capacity", "refill", "per"):
            if getattr(a, name) is not None:
                payload[name] = getattr(a, name)
        print(TokenBucketMode.describe(_ctl_call(base, "POST", "ratelimit", payload)))
    elif cmd == "counter":
        print(_ctl_call(base, "GET", "stats")[a.name])
    else:
        _run_strict_ctl(a, base)
    return 0


def _add_strict_ctl_parsers(sub: Any) -> None:
    at = sub.add_parser("attempts", add_help=False)
    at.add_argument("--on", choices=FAULT_TARGETS)
    at.add_argument("--min-gap", type=float)
    at.add_argument("--raw", action="store_true")
    q = sub.add_parser("quirks", add_help=False)
    q.add_argument("--already-linked", type=int, choices=QUIRK_CHOICES["already_linked"])
    q.add_argument("--create-code", type=int, choices=QUIRK_CHOICES["create_code"])
    q.add_argument("--create-fields", choices=("true", "false"))
    q.add_argument("--non-owner", type=int, choices=QUIRK_CHOICES["non_owner"])
    sub.add_parser("blackhole", add_help=False)


def _run_strict_ctl(a: argparse.Namespace, base: str) -> None:
    if a.cmd == "attempts":
        got = _ctl_call(base, "GET", "attempts", query={"on": a.on or "any"})
        line = f"{got['on']} attempts={got['attempts']}"
        if a.min_gap is not None:
            short = sum(1 for g in got["gaps"] if g < a.min_gap)
            line += f" gaps_under_{a.min_gap:g}s={short}"
        print(line)
        if a.raw:
            for i, g in enumerate(got["gaps"], 1):
                print(f"gap {i}: {g:.3f}s")
    elif a.cmd == "quirks":
        payload = {}
        for name in QUIRK_CHOICES:
            value = getattr(a, name)
            if value is not None:
                payload[name] = value
        got = _ctl_call(base, "POST", "quirks", payload)
        print("quirks " + " ".join(f"{k}={str(v).lower()}" for k, v in got.items()))
    elif a.cmd == "blackhole":
        print(_ctl_call(base, "POST", "blackhole", {})["port"])


# --------------------------------------------------------------------------------------------
# selftest
# --------------------------------------------------------------------------------------------

class DigestClient:
    """A small keep-alive Digest client: one connection, nonce reused with increasing nc,
    and one retry on a new challenge. This is how the FDW is expected to behave."""

    def __init__(self, host: str, port: int, user: str, password: str, timeout: float = 10):
        self.host, self.port, self.timeout = host, port, timeout
        self.user, self.password = user, password
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.nonce: str | None = None
        self.nc = 0

    def close(self) -> None:
        self.conn.close()

    def auth_header(self, method: str, uri: str, *, nonce: str | None = None,
                    nc: int | None = None, password: str | None = None,
                    header_uri: str | None = None) -> str:
        if nc is None:
            self.nc += 1
            nc = self.nc
        nonce = nonce or self.nonce or ""
        cnonce = secrets.token_hex(8)
        nc_s = f"{nc:08x}"
        h_uri = uri if header_uri is None else header_uri
        resp = digest_response(self.user, self.password if password is None else password,
                               REALM, method, h_uri, nonce, nc_s, cnonce)
        return (f'Digest username="{self.user}", realm="{REALM}", nonce="{nonce}", '
                f'uri="{h_uri}", algorithm=MD5, qop=auth, nc={nc_s}, cnonce="{cnonce}", '
                f'response="{resp}"')

    def raw(self, method: str, uri: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.conn.request(method, uri, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, r.headers, data

    def learn(self, headers: http.client.HTTPMessage) -> dict[str, str]:
        chal = parse_digest_header(headers.get("WWW-Authenticate", "")) or {}
        self.nonce, self.nc = chal.get("nonce"), 0
        return chal

    def request(self, method: str, uri: str, body: bytes | None = None
                ) -> tuple[int, http.client.HTTPMessage, bytes]:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        for _ in range(2):
            if self.nonce is not None:
                hdrs["Authorization"] = self.auth_header(method, uri)
            status, headers, data = self.raw(method, uri, body, hdrs)
            if status == 401 and headers.get("WWW-Authenticate"):
                self.learn(headers)
                continue
            return status, headers, data
        return status, headers, data


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


def _start(sim: Simulator) -> tuple[SimServer, str, int]:
    server, url = make_server("127.0.0.1", 0, sim)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server, url, server.server_address[1]


def _stop(server: SimServer) -> None:
    server.sim.stopping.set()
    server.shutdown()
    server.server_close()


def _ctl(url: str, *argv: str) -> tuple[int, str, str]:
    err = io.StringIO()
    # A real TextIOWrapper (not StringIO), because `ctl token` writes raw bytes to .buffer.
    buf = io.BytesIO()
    wrapper = io.TextIOWrapper(buf, encoding="utf-8", newline="\n", write_through=True)
    with contextlib.redirect_stdout(wrapper), contextlib.redirect_stderr(err):
        rc = run_ctl(list(argv), url)
    wrapper.flush()
    return rc, buf.getvalue().decode("utf-8"), err.getvalue()


def cmd_selftest(argv: list[str]) -> int:
    verbose = "-v" in argv
    t = SelfTest(verbose)
    c = t.check
    P = API_PREFIX
    org = [None] + [org_id_for(i) for i in range(1, 601)]
    sim = Simulator(orgs=5, weak_key=("weakkey", "weak-PRIVATE"))
    server, url, port = _start(sim)
    try:
        _selftest_body(t, c, P, org, sim, url, port)
    finally:
        _stop(server)
    _selftest_serve_process(t)
    print(f"selftest: {t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 else 1


def _selftest_body(t: SelfTest, c: Callable, P: str, org: list, sim: Simulator,
                   url: str, port: int) -> None:
    def counts() -> str:
        return _ctl(url, "counts")[1].strip()

    cl = DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
    status_uri = f"{P}/orgs/{org[1]}/liveExport/migrationLink/status"

    # --- challenge, then success, on one keep-alive connection ------------------------------
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

    # --- nonce rules -----------------------------------------------------------------------
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
    rc, out, _ = _ctl(url, "expire-nonces")
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

    # --- urllib's own digest implementation agrees with ours ---------------------------------
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, url, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPDigestAuthHandler(mgr))
    with opener.open(url + f"{P}/orgs/{org[2]}/liveExport/migrationLink/status?x=1",
                     timeout=10) as resp:
        c("urllib digest client", (resp.status, json.loads(resp.read())) ==
          (200, {"status": "NOT_SYNCED"}))

    # --- list paging -----------------------------------------------------------------------
    rc, out, _ = _ctl(url, "reset", "--orgs", "600")
    c("ctl reset --orgs", (rc, out) == (0, "reset orgs=600\n"), (rc, out))
    s, h, b = cl.request("GET", f"{P}/orgs?itemsPerPage=500")
    page1 = json.loads(b)
    nxt = [l["href"] for l in page1["links"] if l["rel"] == "next"]
    c("page 1", s == 200 and len(page1["results"]) == 500 and page1["totalCount"] == 600
      and page1["results"][0] == {"id": org[1], "name": "org-0001", "isDeleted": False,
                                  "links": []} and len(nxt) == 1, (s, page1.get("links")))
    parts = urllib.parse.urlsplit(nxt[0] if nxt else "")
    c("next href is absolute on the simulator", parts.netloc == f"127.0.0.1:{port}", nxt)
    s, h, b = cl.request("GET", parts.path + "?" + parts.query)
    page2 = json.loads(b)
    c("page 2", s == 200 and len(page2["results"]) == 100
      and page2["results"][-1]["id"] == org[600]
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

    # --- create / delete -------------------------------------------------------------------
    _ctl(url, "reset")
    link_uri = f"{P}/orgs/{org[3]}/liveExport/migrationLink"
    token = 'tok "quoted" \\ back\nslash ü'
    s, h, b = cl.request("POST", link_uri, json.dumps({"linkToken": token}).encode())
    c("POST -> 201", (s, json.loads(b)) == (201, {"status": "SYNCED"}), (s, b))
    rc, out, _ = _ctl(url, "token", org[3])
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
        404, "RESOURCE_NOT_FOUND", f"No migration link exists for organization {org[3]}.",
        [org[3]]), b)
    rc, out, _ = _ctl(url, "running", org[1])
    c("ctl running", out == f"org {org[1]} running=true\n", out)
    s, h, b = cl.request("DELETE", f"{P}/orgs/{org[1]}/liveExport/migrationLink")
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

    # --- envelope and pretty ---------------------------------------------------------------
    s, h, b = cl.request("GET", link_uri + "/status?envelope=true")
    doc = json.loads(b)
    c("envelope wraps 404", s == 200 and doc["status"] == 404
      and doc["content"]["errorCode"] == "RESOURCE_NOT_FOUND", (s, b))
    _ctl(url, "running", org[1], "--off")
    s, h, b = cl.request("DELETE", f"{P}/orgs/{org[1]}/liveExport/migrationLink?envelope=true")
    c("envelope of 204", (s, json.loads(b)) == (200, {"status": 204, "content": None}), (s, b))
    s, h, b = cl.request("GET", f"{P}/orgs/{org[2]}/liveExport/migrationLink/status?pretty=true")
    c("pretty", s == 200 and b == b'{\n  "status": "NOT_SYNCED"\n}', b)
    s, h, b = cl.raw("GET", status_uri + "?envelope=true")
    c("challenge is not enveloped", s == 401, s)

    # --- weak key --------------------------------------------------------------------------
    weak = DigestClient("127.0.0.1", port, "weakkey", "weak-PRIVATE")
    _ctl(url, "reset-counters")
    s, h, b = weak.request("GET", f"{P}/orgs")
    c("weak key can list", s == 200, s)
    s, h, b = weak.request("GET", f"{P}/orgs/{org[2]}/liveExport/migrationLink/status")
    c("weak key gets NOT_ORG_ADMIN", s == 401 and not h.get("WWW-Authenticate")
      and json.loads(b) == {"detail": "The API key does not have the Organization Owner role.",
                            "error": 401, "errorCode": "NOT_ORG_ADMIN", "parameters": [],
                            "reason": "Unauthorized"}, (s, b))
    s, h, b = weak.request("POST", f"{P}/orgs/{org[3]}/liveExport/migrationLink",
                           b'{"linkToken":"w"}')
    c("weak key cannot create", s == 401 and json.loads(b)["errorCode"] == "NOT_ORG_ADMIN")
    c("weak key counts", counts() == "list=1 status=1 create=1 delete=0 challenges=1 "
      "auth_failures=0 malformed=0", counts())
    weak.close()

    # --- faults: each fires once, then the endpoint is normal again -------------------------
    _ctl(url, "reset")
    st2 = f"{P}/orgs/{org[2]}/liveExport/migrationLink/status"

    def normal_after(name: str) -> None:
        s2, _, b2 = cl.request("GET", st2)
        c(f"{name}: next request is normal", (s2, b2) == (200, b'{"status":"NOT_SYNCED"}'),
          (s2, b2))

    def fault(*args: str) -> None:
        rc2, out2, err2 = _ctl(url, "fault", *args)
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
    staller = DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
    other = DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
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
    fault("http", "--code", "500", "--times", "2", "--on", "create", "--org", org[3])
    cr = f"{P}/orgs/{org[3]}/liveExport/migrationLink"
    s1, _, _ = cl.request("POST", f"{P}/orgs/{org[1]}/liveExport/migrationLink",
                          b'{"linkToken":"a"}')
    s2, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    s3, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    s4, _, _ = cl.request("POST", cr, b'{"linkToken":"a"}')
    c("--org and --times", (s1, s2, s3, s4) == (409, 500, 500, 201), (s1, s2, s3, s4))
    rc, out, _ = _ctl(url, "token", org[5])
    c("ctl token (none)", out == "(none)\n", out)
    # 5 http + 6 simple + oversized + list + 2 stall + drip + reset + 2 stale_nonce + 2 --times
    c("faults_fired", sim.stats()["faults_fired"] == 21, sim.stats())

    # The faults that let the endpoint act first: the data set changes as without them.
    _ctl(url, "reset")
    cr3 = f"{P}/orgs/{org[3]}/liveExport/migrationLink"
    fault("openapi_reply", "--on", "create", "--code", "200")
    s, h, b = cl.request("POST", cr3, b'{"linkToken":"a"}')
    c("openapi_reply: 200 without status, link created", s == 200
      and json.loads(b)["sourceOrgId"] == org[3] and "status" not in json.loads(b)
      and _ctl(url, "links")[1].count(org[3]) == 1, (s, b))
    fault("slow", "--on", "delete", "--seconds", "0.3")
    t0 = time.monotonic()
    s, h, b = cl.request("DELETE", cr3)
    c("slow: the reply is held, the link is gone", s == 204 and time.monotonic() - t0 >= 0.25
      and org[3] not in _ctl(url, "links")[1], (s, time.monotonic() - t0))
    fault("lost_reply", "--on", "create")
    err = None
    try:
        cl.request("POST", cr3, b'{"linkToken":"a"}')
    except (http.client.HTTPException, OSError) as e:
        err = e
    c("lost_reply: no reply, link created", err is not None
      and _ctl(url, "links")[1].count(org[3]) == 1, repr(err))
    fault("gateway_timeout", "--on", "delete")
    s, h, b = cl.request("DELETE", cr3)
    c("gateway_timeout: a proxy's 504, the link is gone", s == 504 and b"<html>" in b
      and org[3] not in _ctl(url, "links")[1], (s, b))
    _ctl(url, "reset", "--orgs", "3")
    fault("grow", "--on", "list")
    s, h, b = cl.request("GET", f"{P}/orgs?itemsPerPage=2")
    s2, h2, b2 = cl.request("GET", f"{P}/orgs?itemsPerPage=2&pageNum=2")
    ids = [o["id"] for o in json.loads(b)["results"] + json.loads(b2)["results"]]
    c("grow: the next page shifts by one", ids == [org[1], org[2], org[2], org[3]], ids)
    _ctl(url, "reset")

    # --- counters as expected after a scripted sequence -------------------------------------
    rc, out, _ = _ctl(url, "reset")
    fresh = DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
    fresh.request("GET", f"{P}/orgs")                                   # challenge + list
    fresh.request("GET", st2)                                           # status
    fresh.request("POST", f"{P}/orgs/{org[3]}/liveExport/migrationLink", b'{"linkToken":"t"}')
    fresh.request("DELETE", f"{P}/orgs/{org[3]}/liveExport/migrationLink")
    fresh.raw("GET", st2, headers={"Authorization": fresh.auth_header("GET", st2,
                                                                      password="bad")})
    c("counts line", counts() == "list=1 status=1 create=1 delete=1 challenges=1 "
      "auth_failures=1 malformed=0", counts())
    stats = json.loads(_ctl(url, "stats")[1])
    c("stats", list(stats) == sorted(COUNTER_NAMES) and stats["connections"] == 1
      and stats["requests"] == 6, stats)
    fresh.close()

    # --- ctl output formats ----------------------------------------------------------------
    expect = [
        (("ping",), "pong\n"),
        (("reset",), "reset orgs=5\n"),
        (("reset-counters",), "counters reset\n"),
        (("fault", "http", "--code", "500"), "fault http on=status times=1\n"),
        (("fault", "drip", "--on", "any", "--times", "-1"), "fault drip on=any times=-1\n"),
        (("faults",), "http on=status times=1\ndrip on=any times=-1\n"),
        (("clear-faults",), "faults cleared\n"),
        (("latency", "0"), "latency 0 ms\n"),
        (("running", org[2], "--off"), f"org {org[2]} running=false\n"),
        (("link", org[3], "--status", "PAUSED"), f"org {org[3]} linked status=PAUSED\n"),
        (("links",), f"{org[1]} SYNCED\n{org[2]} NOT_SYNCED\n{org[3]} PAUSED\n"
                     f"{org[4]} NOT_SYNCED\n{org[5]} SYNCED\n"),
        (("unlink", org[3]), f"org {org[3]} unlinked\n"),
        (("token", org[1]), "(none)\n"),
    ]
    for args, want in expect:
        rc, out, err = _ctl(url, *args)
        c(f"ctl {' '.join(args)}", (rc, out) == (0, want), (rc, out, err))
    for args in (("fault", "garbage", "--code", "500"), ("link", "0" * 24),
                 ("fault", "http", "--org", "nope"), ("latency", "-1"), ("bogus",)):
        rc, out, err = _ctl(url, *args)
        c(f"ctl {' '.join(args)} fails in one line", rc != 0 and out == ""
          and err.count("\n") == 1, (rc, out, err))
    rc, out, err = _ctl("", "counts")
    c("ctl without SIM_URL fails", rc != 0 and "SIM_URL" in err, err)

    # --- loopback only ---------------------------------------------------------------------
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

    # --- concurrency: latency overlaps across connections -----------------------------------
    _ctl(url, "latency", "50")
    n_clients, n_req = 16, 10
    errors: list[Any] = []

    def worker() -> None:
        w = DigestClient("127.0.0.1", port, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY)
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
    _ctl(url, "reset")
    cl.close()


def _swallow(fn: Callable, *args: Any) -> None:
    try:
        fn(*args)
    except (http.client.HTTPException, OSError):
        pass


def _selftest_serve_process(t: SelfTest) -> None:
    """Run `serve` as a real process: port file, banner, ctl over SIM_URL, SIGTERM exit."""
    me = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as d:
        port_file = os.path.join(d, "port")
        proc = subprocess.Popen([sys.executable, me, "serve", "--port", "0", "--port-file",
                                 port_file], stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            port = open(port_file).read().strip() if os.path.exists(port_file) else ""
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


# --------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    usage = "usage: opsmig_sim.py {serve|ctl|selftest} [ARGS]  (see the module docstring)"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage)
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "serve":
        return cmd_serve(rest)
    if cmd == "ctl":
        return run_ctl(rest, os.environ.get("SIM_URL"))
    if cmd == "selftest":
        return cmd_selftest(rest)
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
