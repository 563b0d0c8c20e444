"""opsmig_sim: a simulator of the Ops Manager / Cloud Manager live-migration link API.

This is the one place on the test side that knows how the API behaves. The opsmig_fdw
regression tests start it, point the FDW at it, switch faults on and off through its control
API and compare its counters. Everything here follows ../shared/api/FACTS.md, a path
relative to the repository root (the vendor pages plus what is known from the OpenAPI
description and the Go client). Where the pages are silent the simulator picks one plausible
behaviour and says so below. It uses only the Python 3.11 standard library.

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
  --tls-key it serves HTTPS instead (test/checks/tls.sh); `ctl` speaks plain HTTP only.

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
Section by section, each on a fresh in-process simulator on a free port, checks it against a
hand-written keep-alive digest client and urllib's HTTPDigestAuthHandler: the challenge and
nonce/nc rules, paging, every endpoint and error, envelope and pretty, every fault kind (each
fires once and then stops), the weak key, counters, the ctl output formats, the refusal of
non-loopback hosts, concurrency with latency, and serve's port file and SIGTERM exit. It prints
"selftest: N passed, M failed" and exits non-zero on any failure.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

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
