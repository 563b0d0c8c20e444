"""`opsmig_sim.py ctl`: the control client. It finds the server through $SIM_URL and prints
compact, deterministic text, because pg_regress expected files compare it verbatim; on any
failure one line "opsmig_sim ctl: ..." on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .ratelimit import TokenBucketMode
from .spec import (CONTROL_PREFIX, COUNTER_NAMES, COUNTS_LINE_KEYS, FAULT_KINDS, FAULT_TARGETS,
                   QUIRK_CHOICES)


class _CtlArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as the ctl contract promises
        raise CtlFailure(f"{self.prog}: {message}", 2)


class CtlFailure(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def ctl_call(base: str, method: str, name: str, payload: dict | None = None,
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
        ctl_call(base, "GET", "ping")
        print("pong")
    elif cmd == "counts":
        s = ctl_call(base, "GET", "stats")
        print(" ".join(f"{k}={s[k]}" for k in COUNTS_LINE_KEYS))
    elif cmd == "stats":
        print(json.dumps(ctl_call(base, "GET", "stats"), sort_keys=True))
    elif cmd == "reset":
        payload = {} if a.orgs is None else {"orgs": a.orgs}
        print(f"reset orgs={ctl_call(base, 'POST', 'reset', payload)['orgs']}")
    elif cmd == "reset-counters":
        ctl_call(base, "POST", "reset-counters", {})
        print("counters reset")
    elif cmd == "fault":
        payload = {"kind": a.kind}
        for name in ("on", "org", "times", "code", "body", "error_code", "detail",
                     "retry_after", "seconds", "interval_ms", "bytes", "stale", "parameters"):
            value = getattr(a, name)
            if value is not None:
                payload[name] = value
        got = ctl_call(base, "POST", "fault", payload)
        print(f"fault {got['kind']} on={got['on']} times={got['times']}")
    elif cmd == "faults":
        for got in ctl_call(base, "GET", "faults")["faults"]:
            print(f"{got['kind']} on={got['on']} times={got['times']}")
    elif cmd == "clear-faults":
        ctl_call(base, "POST", "clear-faults", {})
        print("faults cleared")
    elif cmd == "latency":
        print(f"latency {ctl_call(base, 'POST', 'latency', {'ms': a.ms})['latency_ms']} ms")
    elif cmd == "running":
        got = ctl_call(base, "POST", "running", {"org": a.org, "running": not a.off})
        print(f"org {got['org']} running={'true' if got['running'] else 'false'}")
    elif cmd == "link":
        got = ctl_call(base, "POST", "link", {"org": a.org, "status": a.status})
        print(f"org {got['org']} linked status={got['status']}")
    elif cmd == "unlink":
        got = ctl_call(base, "POST", "unlink", {"org": a.org})
        print(f"org {got['org']} unlinked")
    elif cmd == "rename":
        got = ctl_call(base, "POST", "rename", {"org": a.org, "name": a.name})
        print(f"org {got['org']} renamed")
    elif cmd == "token":
        token = ctl_call(base, "GET", "token", query={"org": a.org})["token"]
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
        for link in ctl_call(base, "GET", "links")["links"]:
            print(f"{link['id']} {link['status']}")
    elif cmd == "expire-nonces":
        ctl_call(base, "POST", "expire-nonces", {})
        print("nonces expired")
    elif cmd == "ratelimit":
        payload = {"off": a.off, "headers": not a.quiet, "legacy": a.legacy}
        for name in ("capacity", "refill", "per"):
            if getattr(a, name) is not None:
                payload[name] = getattr(a, name)
        print(TokenBucketMode.describe(ctl_call(base, "POST", "ratelimit", payload)))
    elif cmd == "counter":
        print(ctl_call(base, "GET", "stats")[a.name])
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
        got = ctl_call(base, "GET", "attempts", query={"on": a.on or "any"})
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
        got = ctl_call(base, "POST", "quirks", payload)
        print("quirks " + " ".join(f"{k}={str(v).lower()}" for k, v in got.items()))
    elif a.cmd == "blackhole":
        print(ctl_call(base, "POST", "blackhole", {})["port"])
