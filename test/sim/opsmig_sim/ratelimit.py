"""The API's rate limit: one token bucket, off until `ctl ratelimit` (FACTS.md "Rate limits:
the token bucket")."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from .model import ApiRequest, Out, Reply, bool_arg, float_arg, int_arg


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
        if bool_arg(args.get("off"), "off", False):
            with self.lock:
                self.on = False
            return {"on": False}
        capacity = int_arg(args.get("capacity"), "capacity", 10, 1, 1_000_000)
        refill = int_arg(args.get("refill"), "refill", 5, 1, 1_000_000)
        per = float_arg(args.get("per"), "per", 60.0, 0.001, 86400.0)
        headers = bool_arg(args.get("headers"), "headers", True)
        legacy = bool_arg(args.get("legacy"), "legacy", False)
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

    def admit(self, req: ApiRequest, out: Out) -> Reply | None:
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
