"""The HTTP layer: a threading HTTP/1.1 server on a loopback address only (plain or TLS) that
hands API requests to the Simulator and control requests to its control API, and carries
out what a Reply asks (send, stall, drip, reset)."""

from __future__ import annotations

import http.server
import ipaddress
import os
import re
import socket
import socketserver
import ssl
import struct
import sys
import urllib.parse
from typing import Any

from .api import Simulator
from .model import ApiRequest, Reply
from .spec import CONTROL_PREFIX, IDLE_TIMEOUT_S, MAX_REQUEST_BODY, dump_json


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
    (test/checks/tls.sh); the ctl client speaks plain HTTP only, so a TLS simulator is
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
