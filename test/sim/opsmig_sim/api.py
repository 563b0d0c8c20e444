"""The simulated API itself: the Simulator's state (data set, counters, latency, quirks) and
its answer to one API request, in the order the spec gives: prefix, authentication, route
and method, org-id syntax, faults, rate limit, org, role, endpoint. No socket code here;
digest auth, faults and the control API are mixed in from their own modules."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from typing import Any

from .control import Control
from .digest import DigestAuth
from .faults import Faults
from .model import ApiRequest, ControlError, Org, Out, Reply, positive_int
from .ratelimit import TokenBucketMode
from .spec import (AFTER_FAULTS, API_PREFIX, COUNTER_NAMES, CREATED_AT, DEFAULT_ITEMS_PER_PAGE,
                   DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY, MAX_ATTEMPTS_LOG, MAX_ITEMS_PER_PAGE,
                   MAX_ORGS, ORG_ID_RE, PROXY_HTML, QUIRK_DEFAULTS, REDIRECT_PREFIX, error_body,
                   org_id_for, truthy)


class Simulator(DigestAuth, Faults, Control):
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

    # -- the API ------------------------------------------------------------------------------

    def handle_api(self, req: ApiRequest) -> Reply:
        out = Out(truthy(req.param("pretty")), truthy(req.param("envelope")))
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

    def _endpoint_reply(self, req: ApiRequest, out: Out, endpoint: str, org_id: str | None,
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
            value = default if raw is None else positive_int(raw)
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

    def _log_attempt(self, endpoint: str) -> None:
        # Caller holds the lock.  Arrival times let tests check retry delays (Retry-After)
        # from the server's side instead of by wall clock in the client.
        if len(self.attempts) >= MAX_ATTEMPTS_LOG:
            del self.attempts[: MAX_ATTEMPTS_LOG // 2]
        self.attempts.append((time.monotonic(), endpoint))

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


def _no_link(out: Out, org_id: str) -> Reply:
    return out.error(404, "RESOURCE_NOT_FOUND",
                     f"No migration link exists for organization {org_id}.", [org_id])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_link_request(body: bytes) -> tuple[Any, tuple | None]:
    """Return (decoded document or None, error args for Out.error or None)."""
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
