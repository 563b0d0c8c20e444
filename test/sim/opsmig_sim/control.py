"""The control API under /_sim/ (no auth, no latency, JSON in and out): what each `ctl`
command does to the Simulator it is mixed into: counters, faults, latency, the data set,
the API's alternative answers (quirks), attempt times and a port that never accepts."""

from __future__ import annotations

import json
import socket
import urllib.parse
from typing import Any, Callable

from .model import ControlError, Reply, bool_arg, int_arg
from .spec import (CONTROL_PREFIX, COUNTER_NAMES, FAULT_TARGETS, MAX_ORGS, QUIRK_CHOICES,
                   dump_json)


class Control:
    """handle_control and the commands behind it."""

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
                None if a.get("orgs") is None else int_arg(a["orgs"], "orgs", 0, 0, MAX_ORGS))}),
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
        ms = int_arg(args.get("ms"), "ms", None, 0, 600_000)
        with self.lock:
            self.latency_ms = ms
        return {"latency_ms": ms}

    def _ctl_running(self, args: dict[str, Any]) -> dict:
        on = bool_arg(args.get("running"), "running", True)
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
            value = (bool_arg(value, name, False) if isinstance(choices[0], bool)
                     else int_arg(value, name, None, 0, 999))
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


def _control_error(code: int, message: str) -> Reply:
    return Reply(code, dump_json({"error": message}))
