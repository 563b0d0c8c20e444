"""`opsmig_sim.py serve`: parse the flags, start the server, write the port file, stop
cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Any

from .api import Simulator
from .server import make_server
from .spec import DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY, MAX_ORGS


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
