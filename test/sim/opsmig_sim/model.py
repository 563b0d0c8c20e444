"""The simulator's values: an org of the data set, one API request, the reply the HTTP layer
must send, the JSON reply builder that honours pretty= and envelope=, and the checked
arguments of control requests."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .spec import dump_json, error_body


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


class Out:
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


def positive_int(raw: str) -> int | None:
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) and int(raw) >= 1 else None


def int_arg(value: Any, name: str, default: int | None, lo: int, hi: int) -> int:
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


def float_arg(value: Any, name: str, default: float, lo: float, hi: float) -> float:
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


def bool_arg(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ControlError(f"{name} must be true or false")
