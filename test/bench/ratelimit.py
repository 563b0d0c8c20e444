#!/usr/bin/env python3
"""ratelimit.py: the rate-limit half of test/bench/run.sh (`test/bench/run.sh --rate-limit`), run on a
cluster started with shared_preload_libraries = 'opsmig_fdw' and the simulator at round
trip L. It measures the targets of issue 12 against the simulator's token bucket
(`ctl ratelimit`, RateLimit-* headers and the 429 body of FACTS.md):

  R1  one backend, 100 organizations, bucket capacity 10 + 10/s, default options:
      limit (101 - 10) / 10 s + L; target <= 1.15 x, 429s <= 5% of requests;
  R2  three backends at once, 40 organizations each, one API key: limit
      (123 - 10) / 10 s + L; target <= 1.2 x, all complete, 429s <= 5%;
  R3  200 organizations, capacity 10 + 2/s, statement_timeout 20 s: ends with 57014, or
      with 53400 early (its detail says how many organizations were not yet asked); never
      hangs; the session stays usable;
  R4  no rate limit: warm scans of N = 100 and 1000 at C = 8 (compare with the main
      benchmark's rows).

Times are wall-clock around psql (client side), counts the simulator's counters. Before
each scenario the bucket is set full again and the pacer is given the time to know it
(capacity / refill seconds), as a real client would have to wait. Standard library only;
every wait is bounded.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (settings, psql helpers and the simulator client)
from bench import L, ctl, log, psql_cmd  # noqa: E402

SCAN = "SELECT count(*) FROM org_migration_links"


def linked(n: int) -> int:
    return sum(1 for i in range(1, n + 1) if i % 3 != 0)


def bucket(capacity: int, refill: int, per: float = 1.0) -> None:
    ctl("POST", "ratelimit", {"capacity": capacity, "refill": refill, "per": per})
    # The shared pacer may still believe the bucket empty from the last run: give it the
    # time a real bucket would need to fill.
    time.sleep(capacity / refill * per + 0.2)
    ctl("POST", "reset-counters", {})


def psql_scan(settings: str = "", timeout: float = 120) -> tuple[float, str, str]:
    """One session: (seconds, stdout, stderr); psql's own start-up is included."""
    t0 = time.monotonic()
    p = subprocess.run(["psql", "-X", "-At", "-v", "VERBOSITY=verbose", "-c",
                        settings + SCAN if settings else SCAN],
                       capture_output=True, text=True, timeout=timeout)
    return time.monotonic() - t0, p.stdout.strip(), p.stderr.strip()


def counts() -> dict:
    return ctl("GET", "stats")


def row(what: str, secs: float, limit: float, target: float, c: dict, note: str) -> str:
    req = c["list"] + c["status"]
    pct = 100.0 * c["rate_limited"] / req if req else 0.0
    ok = secs <= limit * target + L / 1000 and pct <= 5
    return (f"| {what} | {secs:.2f} | {limit:.2f} | {secs / limit:.2f}× | ≤ {target}× | "
            f"{req} | {c['rate_limited']} ({pct:.1f}%) | {'yes' if ok else '**no**'} | {note} |")


def main() -> int:
    t_start = time.monotonic()
    bench.setup_database()
    print("# opsmig_fdw rate-limit benchmark (`test/bench/run.sh --rate-limit`)")
    print()
    for line in bench.machine():
        print(line)
    print(f"- cluster with `shared_preload_libraries = 'opsmig_fdw'`; simulator round trip "
          f"L = {L} ms; default server options (max_concurrent_requests 8, max_retries 3) "
          f"unless said; started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print()
    print("| scenario | s | bucket limit s | × limit | target | requests | 429s | meets target | notes |")
    print("|---|--:|--:|--:|--:|--:|--:|---|---|")
    sys.stdout.flush()

    # R4 first: no rate limit (the pacer learns nothing from a server that says nothing).
    r4 = []
    for n in (100, 1000):
        log(f"R4: no rate limit, N = {n}")
        bench.sim_reset(n)
        ses = bench.Session(f"ratelimit-r4-n{n}")
        ses.sql("cold", SCAN + ";")              # the backend's handles and nonces
        ses.reset_counters()
        for _ in range(3):
            ses.sql("warm", SCAN + ";")
        ses.stats("warm")
        out = ses.run(timeout=300)
        r4.append((n, out["warm"]["ms"], ses.counters("warm")))

    # R1
    log("R1: one backend, 100 orgs, capacity 10 + 10/s")
    bench.sim_reset(100)
    bucket(10, 10)
    secs, out, err = psql_scan()
    c = counts()
    print(row("R1: one backend, 100 orgs, capacity 10 + 10/s", secs, (101 - 10) / 10, 1.15, c,
              f"count {out or err[:80]}; limit + L = {(101 - 10) / 10 + L / 1000:.2f} s"))
    sys.stdout.flush()

    # R2
    log("R2: three backends, 40 orgs each, capacity 10 + 10/s")
    bench.sim_reset(40)
    bucket(10, 10)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["psql", "-X", "-At", "-c", "SET statement_timeout = '120s'",
                               "-c", SCAN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = []
    ends = []
    for p in procs:
        o, e = p.communicate(timeout=180)
        ends.append(time.monotonic() - t0)
        outs.append((o.strip().splitlines() or [e.strip()])[-1])
    secs = max(ends)
    c = counts()
    print(row("R2: three backends at once, 40 orgs each, one key", secs, (123 - 10) / 10, 1.2,
              c, f"counts {', '.join(outs)} (expected {linked(40)} each); "
                 f"sessions ended at {', '.join(f'{x:.1f}' for x in ends)} s"))
    sys.stdout.flush()

    # R3
    log("R3: 200 orgs, capacity 10 + 2/s, statement_timeout 20 s")
    bench.sim_reset(200)
    bucket(10, 2)
    secs, out, err = psql_scan("SET statement_timeout = '20s'; ", timeout=60)
    c = counts()
    state = next((w for w in err.replace(":", " ").split() if len(w) == 5 and w.isalnum()
                  and w[:2] in ("53", "57")), "none")
    detail = next((ln.split(":", 1)[1].strip() for ln in err.splitlines()
                   if ln.startswith("DETAIL")), "")
    after = psql_cmd("SELECT 'usable'")
    req = c["list"] + c["status"]
    print(f"| R3: 200 orgs, capacity 10 + 2/s, statement_timeout 20 s | {secs:.2f} | "
          f"{(201 - 10) / 2:.1f} | — | ends with 57014 or early 53400 | {req} | "
          f"{c['rate_limited']} | {'yes' if state in ('53400', '57014') and secs < 25 and after == 'usable' else '**no**'} | "
          f"SQLSTATE {state}; DETAIL: {detail}; next statement: {after} |")

    for n, runs, c in r4:
        lim = bench.limit_ms(bench.pages_for(n), n, 8) / 1000
        med = statistics.median(runs) / 1000
        print(f"| R4: no rate limit, warm scan, N = {n}, C = 8 | {med:.2f} | {lim:.2f} "
              f"(physical) | {med / lim:.2f}× | unchanged | {(c['list'] + c['status']) / 3:.0f} | "
              f"{c['rate_limited']} | — | median of 3 (psql \\timing: "
              f"{', '.join(f'{r / 1000:.2f}' for r in runs)}); counts per scan |")
    print()
    print(f"Total: {time.monotonic() - t_start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
