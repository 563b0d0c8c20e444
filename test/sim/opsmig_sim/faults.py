"""Faults (`ctl fault`): their checked specs, which request each one hits, and the reply it
makes instead of (or, for AFTER_FAULTS, after) the endpoint's. Mixed into Simulator."""

from __future__ import annotations

import re
from typing import Any

from .model import ApiRequest, ControlError, Org, Out, Reply, bool_arg, float_arg, int_arg
from .spec import (FAULT_KINDS, FAULT_PARAMS, FAULT_TARGETS, ORG_ID_BASE,
                   ORG_ID_RE, OVERSIZED_SKELETON, PROXY_HTML, REDIRECT_PREFIX,
                   UNAUTHORIZED_BODY, dump_json, org_id_for, reason_phrase)


class Faults:
    """The fault list of the Simulator it is mixed into (its lock, counters and data set)."""

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
        fault["times"] = int_arg(spec.pop("times", None), "times", 1, -1, 10**9)
        if fault["times"] == 0:
            raise ControlError("times must be -1 or at least 1")
        allowed = FAULT_PARAMS.get(kind, {})
        for name in spec:
            if name not in allowed:
                raise ControlError(f"parameter {name} does not apply to fault {kind}")
        for name, default in allowed.items():
            value = spec.get(name)
            if name == "code" and kind == "redirect":
                value = int_arg(value, name, default, 300, 399)
            elif name == "code":
                value = int_arg(value, name, default, 200, 599)
            elif name == "body":
                value = value or default
                if value not in ("json", "html", "empty"):
                    raise ControlError("body must be json, html or empty")
            elif name in ("error_code", "detail"):
                if value is not None and not isinstance(value, str):
                    raise ControlError(f"{name} must be a string")
            elif name == "retry_after":
                value = None if value is None else int_arg(value, name, 0, 0, 10**9)
            elif name == "parameters":
                if value is not None and not isinstance(value, list):
                    raise ControlError("parameters must be a JSON array")
            elif name == "seconds":
                value = float_arg(value, name, default, 0.0, 86400.0)
            elif name == "interval_ms":
                value = int_arg(value, name, default, 0, 3_600_000)
            elif name == "bytes":
                value = int_arg(value, name, default, len(OVERSIZED_SKELETON), 200_000_000)
            elif name == "stale":
                value = bool_arg(value, name, default)
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
                     req: ApiRequest, out: Out) -> Reply:
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
            return redirect_reply(f["code"], req)
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

    def _after_fault(self, f: dict[str, Any], endpoint: str, org_id: str | None,
                     reply: Reply, out: Out) -> Reply:
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


def redirect_reply(code: int, req: ApiRequest) -> Reply:
    """A redirect to a path of this simulator outside the API, where any request is counted
    as `redirected`: a client that follows it (and might send its credentials) shows there."""
    location = f"http://{req.host}{REDIRECT_PREFIX}{req.target}"
    return Reply(code, b"", None, [("Location", location)])


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
