"""HTTP Digest (RFC 7616/2617, MD5, qop="auth"), both sides: header parsing and the response
hash, the server's nonce store and checks (DigestAuth, mixed into the Simulator), and the
keep-alive client the self-test and unit tests drive the server with."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import secrets
import time

from .model import ApiRequest, Out, Reply
from .spec import MAX_NONCES, REALM, UNAUTHORIZED_BODY, dump_json


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


class DigestAuth:
    """The server side of the handshake, mixed into Simulator: its nonces, challenges and
    the check of an Authorization header. Uses the Simulator's lock, keys and counters."""

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

    def _challenge(self, out: Out, stale: bool) -> Reply:
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

    def _authenticate(self, req: ApiRequest, out: Out) -> tuple[str | None, Reply | None]:
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
