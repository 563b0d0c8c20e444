"""An in-process simulator for tests: start one on a free loopback port in a thread, stop
it, and run a `ctl` command against it with its output captured."""

from __future__ import annotations

import contextlib
import io
import threading

from .api import Simulator
from .ctl import run_ctl
from .server import SimServer, make_server


def start_server(sim: Simulator) -> tuple[SimServer, str, int]:
    server, url = make_server("127.0.0.1", 0, sim)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server, url, server.server_address[1]


def stop_server(server: SimServer) -> None:
    server.sim.stopping.set()
    server.shutdown()
    server.server_close()


def ctl_captured(url: str, *argv: str) -> tuple[int, str, str]:
    err = io.StringIO()
    # A real TextIOWrapper (not StringIO), because `ctl token` writes raw bytes to .buffer.
    buf = io.BytesIO()
    wrapper = io.TextIOWrapper(buf, encoding="utf-8", newline="\n", write_through=True)
    with contextlib.redirect_stdout(wrapper), contextlib.redirect_stderr(err):
        rc = run_ctl(list(argv), url)
    wrapper.flush()
    return rc, buf.getvalue().decode("utf-8"), err.getvalue()
