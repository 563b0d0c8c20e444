#!/usr/bin/env python3
"""bench.py: the measuring half of test/bench/run.sh (run it through test/bench/run.sh, which builds and
installs the extension, starts a throwaway cluster and the API simulator, builds
test/bench/bench_curl.c and exports what this needs):

  BENCH_LATENCY_MS, BENCH_ORGS ("100 1000"), BENCH_QUICK (0|1), BENCH_CURL_BIN, BENCH_SIM,
  BENCH_PUBLIC_KEY, BENCH_DIR (scratch), SIM_URL, SIM_PRIVATE_KEY, PGHOST/PGPORT/PGUSER/...

For each N it measures, against the simulator with round trip L:
  (a) the documented loop: one `curl --digest` process per organization, sequentially;
  (b) the same GETs from one reused libcurl easy handle (test/bench/bench_curl.c);
  (c) SELECT count(*) FROM org_migration_links with max_concurrent_requests C = 1, 8, 16, 32:
      the first scan of a fresh backend, then warm scans (median);
  (d) WHERE org_id = const lookups, a join of a 50-row local table, 100 single-row
      INSERTs and DELETEs, and their one-statement forms;
then (e) a backend's VmRSS and open fds before and after 5,000 scans (N=5, L=0).

Times come from psql's \\timing (client side, Unix socket), request counts from the
simulator's counters (reset before, read after). Every figure is compared with the
physical limit (pages + ceil(ids / C)) x L and with (a). Progress goes to stderr, the
Markdown report to stdout. Standard library only; every loop is bounded.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

# ------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------

L = int(os.environ["BENCH_LATENCY_MS"])
NS = [int(x) for x in os.environ["BENCH_ORGS"].split()]
QUICK = os.environ.get("BENCH_QUICK") == "1"
SIM = os.environ["BENCH_SIM"]
SIM_URL = os.environ["SIM_URL"]
BASE_URL = SIM_URL + "/api/public/v1.0"
PUB = os.environ["BENCH_PUBLIC_KEY"]
CURL_BIN = os.environ["BENCH_CURL_BIN"]
DIR = os.environ["BENCH_DIR"]

CS = [1, 8, 16, 32]              # max_concurrent_requests for the scans
DEFAULT_C = 8                    # the FDW's default, used for (d)
WARM_REPS = 1 if QUICK else 3    # warm scans per C (median reported)
SCAN_BUDGET_MS = 60_000          # per (N, C): fewer warm runs / no cold run beyond this
CURL_SAMPLE = 200                # (a) and (b) run on at most this many orgs, then scale
LOOKUPS = 5 if QUICK else 10
JOIN_ROWS = 10 if QUICK else 50
MODS = 10 if QUICK else 100
MEM_ORGS = 5
MEM_SCANS = 200 if QUICK else 5000   # in two DO loops of half each
MEM_STMTS = 100 if QUICK else 1000   # then as separate statements (own transactions)
PAGE = 500                       # the FDW's itemsPerPage

sys.path.insert(0, os.path.join(os.path.dirname(SIM), "sim"))
# The simulator's own control client and data set.
from opsmig_sim.ctl import ctl_call  # noqa: E402
from opsmig_sim.spec import org_id_for  # noqa: E402


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def org_id(i: int) -> str:
    return org_id_for(i)


def ctl(method: str, name: str, payload: dict | None = None):
    return ctl_call(SIM_URL, method, name, payload)


def sim_reset(n: int, latency: int = L) -> None:
    """Data set of n orgs, counters and faults cleared; reset restores the serve-time
    latency, so set ours again."""
    ctl("POST", "reset", {"orgs": n})
    ctl("POST", "latency", {"ms": latency})


def linked(i: int) -> bool:            # the simulator's data set after a reset
    return i % 3 != 0


def pages_for(n: int) -> int:
    return math.ceil(n / PAGE)


def limit_ms(pages: int, ids: int, c: int) -> float:
    return (pages + math.ceil(ids / c)) * L


# ------------------------------------------------------------------------------------------
# psql sessions: one script per backend, \timing for the times, the simulator's counters
# written to files by \! between statements
# ------------------------------------------------------------------------------------------

TIME_RE = re.compile(r"^Time: ([0-9.]+) ms")


class Session:
    seq = 0

    def __init__(self, name: str):
        Session.seq += 1
        self.name = f"{Session.seq:02d}-{name}"
        self.lines = ["\\set ON_ERROR_STOP 1",
                      "SET statement_timeout = '300s';",
                      "\\timing on"]

    def tag(self, tag: str) -> None:
        self.lines.append(f"\\echo @@{tag}")

    def sql(self, tag: str, stmt: str) -> None:
        self.tag(tag)
        self.lines.append(stmt)

    def raw(self, text: str) -> None:
        self.lines.append(text)

    def reset_counters(self) -> None:
        self.lines.append(f"\\! python3 {shlex.quote(SIM)} ctl reset-counters >/dev/null")

    def stats(self, key: str) -> None:
        self.lines.append(f"\\! python3 {shlex.quote(SIM)} ctl stats > "
                          f"{shlex.quote(self.file(key))}")

    def shell(self, cmd: str) -> None:
        self.lines.append(f"\\! {cmd}")

    def file(self, key: str) -> str:
        return os.path.join(DIR, f"{self.name}-{key}")

    def run(self, timeout: float = 900) -> dict[str, dict]:
        path = os.path.join(DIR, f"{self.name}.sql")
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-f", path],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
            raise SystemExit(f"bench: psql session {self.name} failed (exit {p.returncode})")
        out: dict[str, dict] = {}
        cur = None
        for line in p.stdout.splitlines():
            if line.startswith("@@"):
                cur = out.setdefault(line[2:], {"ms": [], "out": []})
                continue
            if cur is None:
                continue
            m = TIME_RE.match(line)
            if m:
                cur["ms"].append(float(m.group(1)))
            elif line.strip():
                cur["out"].append(line)
        return out

    def counters(self, key: str) -> dict:
        with open(self.file(key)) as f:
            return json.loads(f.read())


def psql_cmd(sql: str) -> str:
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"bench: psql failed: {sql}")
    return p.stdout.strip()


def set_concurrency(c: int) -> None:
    psql_cmd(f"ALTER SERVER bench_om OPTIONS (SET max_concurrent_requests '{c}')")


def setup_database() -> None:
    psql_cmd("CREATE EXTENSION IF NOT EXISTS opsmig_fdw")
    psql_cmd(f"CREATE SERVER bench_om FOREIGN DATA WRAPPER opsmig_fdw OPTIONS "
             f"(base_url '{BASE_URL}', max_concurrent_requests '{DEFAULT_C}')")
    psql_cmd(f"CREATE USER MAPPING FOR CURRENT_USER SERVER bench_om OPTIONS "
             f"(public_key '{PUB}', private_key '{os.environ['SIM_PRIVATE_KEY']}')")
    psql_cmd("IMPORT FOREIGN SCHEMA opsmig LIMIT TO (org_migration_links) "
             "FROM SERVER bench_om INTO public")


# ------------------------------------------------------------------------------------------
# Rows of the report
# ------------------------------------------------------------------------------------------

class Row:
    def __init__(self, part: str, what: str, c: str, ms: float | None, limit: float | None,
                 ref_ms: float | None, counters: dict | None, per: int = 1,
                 note: str = "", approx: bool = False, counts_approx: bool = False):
        self.part, self.what, self.c = part, what, c
        self.ms, self.limit, self.ref_ms = ms, limit, ref_ms
        self.counters, self.per, self.note, self.approx = counters, per, note, approx
        self.counts_approx = counts_approx


def fmt_ms(ms: float | None, approx: bool = False) -> str:
    if ms is None:
        return "—"
    s = f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"
    return ("≈ " if approx else "") + s


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×" if x < 100 else f"{x:,.0f}×"


def fmt_count(x: float | None, approx: bool = False) -> str:
    if x is None:
        return "—"
    s = f"{x:,.0f}" if abs(x - round(x)) < 1e-9 or x >= 100 else f"{x:.1f}"
    return ("≈ " if approx and x else "") + s


def counter(c: dict | None, key: str, per: int) -> float | None:
    if c is None:
        return None
    return c.get(key, 0) / per


def print_table(rows: list[Row]) -> None:
    print("| | measurement | C | ms | limit ms | × limit | speedup vs (a) "
          "| HTTP requests | GET /orgs | status | POST / DELETE | digest challenges "
          "| new TCP conns | notes |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in rows:
        ratio = r.ms / r.limit if r.ms is not None and r.limit else None
        speed = r.ref_ms / r.ms if r.ms and r.ref_ms else None
        ap = r.counts_approx
        cs = [fmt_count(counter(r.counters, k, r.per), ap) for k in ("requests", "list", "status")]
        cd = r.counters and f"{fmt_count(counter(r.counters, 'create', r.per))} / " \
                            f"{fmt_count(counter(r.counters, 'delete', r.per))}"
        cs2 = [fmt_count(counter(r.counters, k, r.per), ap) for k in ("challenges", "connections")]
        print(f"| {r.part} | {r.what} | {r.c} | {fmt_ms(r.ms, r.approx)} | "
              f"{fmt_ms(r.limit)} | {fmt_ratio(ratio)} | {fmt_ratio(speed)} | "
              f"{cs[0]} | {cs[1]} | {cs[2]} | {cd or '—'} | {cs2[0]} | {cs2[1]} | {r.note} |")


# ------------------------------------------------------------------------------------------
# (a) and (b): the documented curl loop, and one reused libcurl handle
# ------------------------------------------------------------------------------------------

def write_ids(path: str, ids: list[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(ids) + "\n")


def curl_loop(n: int) -> tuple[float, dict, int, dict]:
    """(a): returns (ms for the sample, counters, sample size, codes)."""
    s = min(n, CURL_SAMPLE)
    ids_file = os.path.join(DIR, f"ids-{n}.txt")
    codes_file = os.path.join(DIR, f"codes-{n}.txt")
    write_ids(ids_file, [org_id(i) for i in range(1, s + 1)])
    script = os.path.join(DIR, f"curl-loop-{n}.sh")
    with open(script, "w") as f:
        f.write(f"""#!/bin/bash
# The vendor pages' way: one curl process per organization, one after the other.
: > {shlex.quote(codes_file)}
while read -r id; do
  curl --silent --show-error --noproxy '*' --max-time 30 \\
       --user "{PUB}:$SIM_PRIVATE_KEY" --digest \\
       --header "Accept: application/json" --request GET \\
       --output /dev/null --write-out '%{{http_code}}\\n' \\
       "{BASE_URL}/orgs/$id/liveExport/migrationLink/status" >> {shlex.quote(codes_file)}
done < {shlex.quote(ids_file)}
""")
    ctl("POST", "reset-counters", {})
    t0 = time.monotonic()
    p = subprocess.run(["bash", script], capture_output=True, text=True,
                       timeout=60 + s * 5)
    ms = (time.monotonic() - t0) * 1000
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("bench: the curl loop failed")
    counters = ctl("GET", "stats")
    codes: dict[str, int] = {}
    with open(codes_file) as f:
        for line in f:
            codes[line.strip()] = codes.get(line.strip(), 0) + 1
    return ms, counters, s, codes


def curl_reused(n: int) -> tuple[float, dict, int, str]:
    """(b): returns (ms for the sample, counters, sample size, bench_curl's line)."""
    s = min(n, CURL_SAMPLE)
    ids = "\n".join(org_id(i) for i in range(1, s + 1)) + "\n"
    ctl("POST", "reset-counters", {})
    p = subprocess.run([CURL_BIN, BASE_URL, PUB], input=ids, capture_output=True, text=True,
                       timeout=60 + s * 5)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit("bench: bench_curl failed")
    line = p.stdout.strip()
    ms = float(re.search(r"elapsed_ms=([0-9.]+)", line).group(1))
    return ms, ctl("GET", "stats"), s, line


# ------------------------------------------------------------------------------------------
# (c): full scans
# ------------------------------------------------------------------------------------------

SCAN = "SELECT count(*) FROM org_migration_links;"


def scan_plan(n: int, c: int) -> tuple[bool, int]:
    """(cold run?, warm runs) within SCAN_BUDGET_MS at the physical limit."""
    lim = limit_ms(pages_for(n), n, c)
    reps = WARM_REPS
    if lim * (1 + reps) > SCAN_BUDGET_MS:
        reps = max(1, int(SCAN_BUDGET_MS // max(lim, 1)) - 1)
    if lim * (1 + reps) > SCAN_BUDGET_MS:
        return False, 1
    return True, reps


def measure_scans(n: int, c: int) -> dict:
    set_concurrency(c)
    cold, reps = scan_plan(n, c)
    s = Session(f"scan-n{n}-c{c}")
    s.reset_counters()
    if cold:
        s.sql("cold", SCAN)
    else:
        # Warm the backend's C handles (connection + digest nonce each) without a full
        # scan: one status call per handle, all side by side.
        ids = ",".join(org_id(i) for i in range(1, min(n, c) + 1))
        s.sql("warmup", f"SELECT count(*) FROM org_migration_links WHERE org_id = ANY ('{{{ids}}}');")
    s.stats("cold")
    s.reset_counters()
    for _ in range(reps):
        s.sql("warm", SCAN)
    s.stats("warm")
    budget = (1 + reps) * max(limit_ms(pages_for(n), n, c), 1000) * 5 + 120
    out = s.run(timeout=min(900, budget / 1000 + 120))
    res = {"cold": cold, "reps": reps, "cold_c": s.counters("cold"),
           "warm_c": s.counters("warm"), "warm_ms": out["warm"]["ms"],
           "rows": out["warm"]["out"]}
    if cold:
        res["cold_ms"] = out["cold"]["ms"][0]
        res["rows"] += out["cold"]["out"]
    return res


# ------------------------------------------------------------------------------------------
# (d): lookups, join, INSERT, DELETE
# ------------------------------------------------------------------------------------------

def measure_modify(n: int) -> dict:
    set_concurrency(DEFAULT_C)
    k = min(MODS, n)
    mod_ids = [org_id(i) for i in range(1, k + 1)]
    look_ids = [org_id(i) for i in range(1, n + 1) if linked(i)][:LOOKUPS + 1]
    join_rows = min(JOIN_ROWS, n)
    join_ids = [org_id(i) for i in range(1, join_rows + 1)]

    psql_cmd("DROP TABLE IF EXISTS bench_inv")
    psql_cmd("CREATE TABLE bench_inv (org_id text PRIMARY KEY, team text)")
    psql_cmd("INSERT INTO bench_inv SELECT id, 'team-' || ord FROM unnest(ARRAY["
             + ",".join(f"'{i}'" for i in join_ids) + "]) WITH ORDINALITY AS t(id, ord)")
    psql_cmd("ANALYZE bench_inv")

    s = Session(f"modify-n{n}")
    # first statement of the backend: a lookup (cold)
    s.reset_counters()
    s.sql("lookup_cold", f"SELECT status FROM org_migration_links WHERE org_id = '{look_ids[0]}';")
    s.stats("lookup_cold")
    # Open the backend's other C-1 handles (connection + digest nonce each) before the
    # figures below, so the first concurrent statement does not pay their challenges.
    warm_ids = ",".join(org_id(i) for i in range(1, min(n, DEFAULT_C) + 1))
    s.sql("warm_pool", f"SELECT count(*) FROM org_migration_links WHERE org_id = ANY ('{{{warm_ids}}}');")
    s.reset_counters()
    for i in look_ids[1:LOOKUPS + 1]:
        s.sql("lookup", f"SELECT status FROM org_migration_links WHERE org_id = '{i}';")
    s.stats("lookup")
    join = "SELECT count(*) FROM bench_inv i JOIN org_migration_links l USING (org_id);"
    s.sql("join_plan", "EXPLAIN (COSTS OFF) " + join)
    s.reset_counters()
    s.sql("join", join)
    s.stats("join")
    # The same question as one statement: the ids collected first (an initplan), then
    # sent as one `= ANY` batch, up to C at a time.
    s.reset_counters()
    s.sql("join_any", "SELECT count(*) FROM org_migration_links "
                      "WHERE org_id = ANY (ARRAY(SELECT org_id FROM bench_inv));")
    s.stats("join_any")

    # Every org of the modify set linked first, so each single DELETE removes one.
    s.reset_counters()
    for i in mod_ids:
        s.sql("delete1", f"DELETE FROM org_migration_links WHERE org_id = '{i}';")
    s.stats("delete1")
    s.shell(f"python3 {shlex.quote(SIM)} ctl links > {shlex.quote(s.file('links-after-delete'))}")
    s.reset_counters()
    for i in mod_ids:
        s.sql("insert1", f"INSERT INTO org_migration_links (org_id, link_token) "
                         f"VALUES ('{i}', 'bench-token');")
    s.stats("insert1")
    s.reset_counters()
    id_array = ",".join(mod_ids)
    s.sql("deleteN", f"DELETE FROM org_migration_links WHERE org_id = ANY ('{{{id_array}}}');")
    s.stats("deleteN")
    s.reset_counters()
    s.sql("insertN", "INSERT INTO org_migration_links (org_id, link_token) "
                     f"SELECT id, 'bench-token' FROM unnest('{{{id_array}}}'::text[]) AS id;")
    s.stats("insertN")

    for i in mod_ids:                 # all linked, so every single-row DELETE succeeds
        ctl("POST", "link", {"org": i, "status": "SYNCED"})
    out = s.run()
    with open(s.file("links-after-delete")) as f:
        still = sum(1 for line in f if line.split()[0] in set(mod_ids))
    res = {
        "k": k, "join_rows": join_rows,
        "lookup_cold_ms": out["lookup_cold"]["ms"][0], "lookup_cold_c": s.counters("lookup_cold"),
        "lookup_ms": out["lookup"]["ms"], "lookup_c": s.counters("lookup"),
        "join_ms": out["join"]["ms"][0], "join_c": s.counters("join"),
        "join_rows_out": out["join"]["out"],
        "join_plan": [x.strip() for x in out["join_plan"]["out"]],
        "join_any_ms": out["join_any"]["ms"][0], "join_any_c": s.counters("join_any"),
        "join_any_out": out["join_any"]["out"],
        "delete1_ms": out["delete1"]["ms"], "delete1_c": s.counters("delete1"),
        "insert1_ms": out["insert1"]["ms"], "insert1_c": s.counters("insert1"),
        "deleteN_ms": out["deleteN"]["ms"][0], "deleteN_c": s.counters("deleteN"),
        "insertN_ms": out["insertN"]["ms"][0], "insertN_c": s.counters("insertN"),
        "still_linked_after_delete": still,
    }
    psql_cmd("DROP TABLE bench_inv")
    sim_reset(n)
    return res


# ------------------------------------------------------------------------------------------
# (e): memory and fds over many scans in one backend
# ------------------------------------------------------------------------------------------

def measure_memory() -> dict:
    sim_reset(MEM_ORGS, latency=0)
    set_concurrency(DEFAULT_C)
    s = Session("memory")
    s.raw("SELECT pg_backend_pid() AS bench_bpid \\gset")
    s.raw("\\setenv BENCH_BPID :bench_bpid")
    snap = ("{ awk '/^VmRSS:/ {print $2}' /proc/$BENCH_BPID/status; "
            "ls /proc/$BENCH_BPID/fd | wc -l; } > ")
    s.shell(snap + shlex.quote(s.file("mem-0")))          # before any scan
    s.sql("first", SCAN)
    s.shell(snap + shlex.quote(s.file("mem-1")))          # after the first scan
    half = MEM_SCANS // 2
    s.reset_counters()
    do = ("DO $$BEGIN FOR i IN 1..%d LOOP PERFORM count(*) FROM org_migration_links; "
          "END LOOP; END$$;" % half)
    s.sql("do1", do)
    s.shell(snap + shlex.quote(s.file("mem-2")))
    s.sql("do2", do)
    s.shell(snap + shlex.quote(s.file("mem-3")))
    s.stats("do")
    s.reset_counters()
    for _ in range(MEM_STMTS):
        s.sql("stmts", SCAN)
    s.shell(snap + shlex.quote(s.file("mem-4")))
    s.stats("stmts")
    out = s.run(timeout=900)
    mem = []
    for i in range(5):
        with open(s.file(f"mem-{i}")) as f:
            rss, fds = f.read().split()
            mem.append((int(rss), int(fds)))
    res = {"mem": mem, "first_ms": out["first"]["ms"][0],
           "do_ms": out["do1"]["ms"][0] + out["do2"]["ms"][0], "do_c": s.counters("do"),
           "stmts_ms": sum(out["stmts"]["ms"]), "stmts_c": s.counters("stmts")}
    return res


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------

def machine() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    curl_v = subprocess.run(["curl", "--version"], capture_output=True,
                            text=True).stdout.split("\n")[0].split()[1]
    libcurl_v = subprocess.run(["pkg-config", "--modversion", "libcurl"], capture_output=True,
                               text=True).stdout.strip()
    pg_v = psql_cmd("SHOW server_version")
    ext_v = psql_cmd("SELECT extversion FROM pg_extension WHERE extname = 'opsmig_fdw'")
    return [f"- machine: `nproc` = {os.cpu_count()}, CPU {cpu}, "
            f"{mem_kb / 1048576:.1f} GiB RAM, kernel {platform.release()} ({platform.machine()})",
            f"- software: PostgreSQL {pg_v}, opsmig_fdw {ext_v}, libcurl {libcurl_v}, "
            f"curl CLI {curl_v}, simulator on Python {platform.python_version()} "
            f"(`test/opsmig_sim.py`, plain HTTP on 127.0.0.1, same machine)"]


def main() -> int:
    t_start = time.monotonic()
    setup_database()
    notes: list[str] = []
    checks: list[str] = []

    print("# opsmig_fdw benchmark (`test/bench/run.sh" + (" --quick" if QUICK else "") + "`)")
    print()
    for line in machine():
        print(line)
    print(f"- parameters: round trip L = {L} ms (simulator latency, slept before every reply "
          f"incl. 401 challenges); N = {', '.join(map(str, NS))} organizations; "
          f"C = max_concurrent_requests {', '.join(map(str, CS))}; "
          f"{WARM_REPS} warm scan(s) per C (median); (a)/(b) on at most {CURL_SAMPLE} orgs; "
          f"(d) with C = {DEFAULT_C} (the default) on a backend whose {DEFAULT_C} handles were opened "
          f"by one `org_id = ANY` of {DEFAULT_C} ids after its first lookup, {LOOKUPS} lookups, a {JOIN_ROWS}-row join, "
          f"{MODS} INSERTs / DELETEs; (e) {MEM_SCANS:,} scans at N = {MEM_ORGS}, L = 0"
          + ("; **--quick: smoke run, figures are rough**" if QUICK else ""))
    print(f"- physical limit = (pages + ceil(ids / C)) × L with pages = ceil(N / {PAGE}): "
          "one round trip per listing page, then the status calls C at a time; C = 1 for "
          "sequential rows. Lookups, joins and modifications know their ids: pages = 0. "
          "Times are psql `\\timing` (client side), counts the simulator's counters.")
    print(f"- started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(flush=True)

    for n in NS:
        log(f"N = {n}")
        sim_reset(n)
        pages = pages_for(n)
        lim_seq = limit_ms(pages, n, 1)
        rows: list[Row] = []
        expect_rows = sum(1 for i in range(1, n + 1) if linked(i))

        # (a)
        log(f"N = {n}: (a) sequential curl --digest processes")
        a_ms, a_c, a_s, a_codes = curl_loop(n)
        scale = n / a_s
        a_total = a_ms * scale
        a_c = {k: v * scale for k, v in a_c.items()}   # per org: 2 requests, 1 challenge, 1 conn
        a_per = a_ms / a_s
        sampled = a_s < n
        rows.append(Row("(a)", "curl CLI loop, 1 process per org (the docs' way)", "1",
                        a_total, lim_seq, a_total, a_c, 1,
                        (f"**extrapolated ×{scale:g} from {a_s} orgs**; " if sampled else "")
                        + f"{a_per:.1f} ms/org; codes " +
                        ", ".join(f"{k}: {v}" for k, v in sorted(a_codes.items())),
                        approx=sampled, counts_approx=sampled))
        # (b)
        log(f"N = {n}: (b) one reused libcurl handle")
        b_ms, b_c, b_s, b_line = curl_reused(n)
        bscale = n / b_s
        m = re.search(r"status_200=(\d+) status_404=(\d+)", b_line)
        # one challenge and one connection whatever the count; the status calls scale
        b_c = dict(b_c, status=b_c["status"] * bscale,
                   requests=b_c["requests"] + b_c["status"] * (bscale - 1))
        rows.append(Row("(b)", "libcurl, one reused easy handle, sequential", "1",
                        b_ms * bscale, lim_seq, a_total, b_c, 1,
                        (f"**extrapolated ×{bscale:g} from {b_s} orgs**; " if b_s < n else "")
                        + f"{b_ms / b_s:.1f} ms/org; codes 200: {m.group(1)}, 404: {m.group(2)}",
                        approx=b_s < n, counts_approx=b_s < n))

        # (c)
        for c in CS:
            log(f"N = {n}: (c) full scan, C = {c}")
            r = measure_scans(n, c)
            lim = limit_ms(pages, n, c)
            bad_rows = [x for x in r["rows"] if x.strip() != str(expect_rows)]
            if bad_rows:
                checks.append(f"N={n} C={c}: count(*) gave {bad_rows[0]}, expected {expect_rows}")
            if r["cold"]:
                rows.append(Row("(c)", "scan, first of a fresh backend", str(c), r["cold_ms"],
                                lim, a_total, r["cold_c"], 1, f"{expect_rows} rows"))
            else:
                rows.append(Row("(c)", "scan, first of a fresh backend", str(c), None, lim,
                                None, None, 1,
                                f"not run (≥ {lim / 1000:.0f} s); backend warmed by one "
                                f"`org_id = ANY` lookup of {min(n, c)} id{'s' if min(n, c) > 1 else ''} instead"))
            wm = statistics.median(r["warm_ms"])
            rng = (f"median of {r['reps']}, {min(r['warm_ms']):,.0f}–{max(r['warm_ms']):,.0f}"
                   if r["reps"] > 1 else "1 run")
            rows.append(Row("(c)", "scan, warm (same backend)", str(c), wm, lim, a_total,
                            r["warm_c"], r["reps"], rng + "; counts per scan"))
            wc = r["warm_c"]
            per_scan = wc["requests"] / r["reps"]
            if per_scan > pages + n + 1e-9:
                checks.append(f"N={n} C={c}: a warm scan made {per_scan:g} HTTP requests, "
                              f"more than pages + N = {pages + n}")
            if wc["challenges"]:
                checks.append(f"N={n} C={c}: {wc['challenges']} digest challenges over "
                              f"{r['reps']} warm scan(s)")
            if wc["connections"]:
                checks.append(f"N={n} C={c}: {wc['connections']} new TCP connections over "
                              f"{r['reps']} warm scan(s)")
            if lim and wm / lim > 1.5:
                checks.append(f"N={n} C={c}: warm scan {wm:,.0f} ms is {wm / lim:.2f}× "
                              f"the physical limit {lim:,.0f} ms")
            if r["cold"] and r["cold_c"]["challenges"] > c + 1:
                checks.append(f"N={n} C={c}: the first scan paid {r['cold_c']['challenges']} "
                              f"challenges (more than one per handle, C = {c})")

        # (d)
        log(f"N = {n}: (d) lookups, join, INSERT, DELETE (C = {DEFAULT_C})")
        d = measure_modify(n)
        k = d["k"]
        nl = len(d["lookup_ms"])
        rows.append(Row("(d)", "`WHERE org_id = const`, first of a fresh backend",
                        str(DEFAULT_C), d["lookup_cold_ms"], limit_ms(0, 1, 1), a_per,
                        d["lookup_cold_c"], 1, ""))
        lm = statistics.median(d["lookup_ms"])
        rows.append(Row("(d)", "`WHERE org_id = const`, warm", str(DEFAULT_C), lm,
                        limit_ms(0, 1, 1), a_per, d["lookup_c"], nl,
                        f"median of {nl}; counts per lookup"))
        if d["lookup_c"]["requests"] > nl or d["lookup_c"]["list"]:
            checks.append(f"N={n}: {nl} warm lookups made {d['lookup_c']['requests']} requests "
                          f"({d['lookup_c']['list']} GET /orgs)")
        jr = d["join_rows"]
        loop = next((x for x in d["join_plan"] if "Loop" in x or "Join" in x), "?")
        rows.append(Row("(d)", f"join: {jr}-row local table ⋈ foreign table", str(DEFAULT_C),
                        d["join_ms"], limit_ms(0, jr, DEFAULT_C), a_per * jr, d["join_c"], 1,
                        f"plan: {loop.strip('-> ')}; GET /orgs: "
                        + ("**yes**" if d["join_c"]["list"] else "no")
                        + f"; sequential limit {limit_ms(0, jr, 1):,.0f} ms"))
        rows.append(Row("(d)", f"same {jr} ids as `org_id = ANY (ARRAY(SELECT org_id FROM local))`",
                        str(DEFAULT_C), d["join_any_ms"], limit_ms(0, jr, DEFAULT_C), a_per * jr,
                        d["join_any_c"], 1, "GET /orgs: "
                        + ("**yes**" if d["join_any_c"]["list"] else "no")
                        + f"; count {d['join_any_out'][0] if d['join_any_out'] else '?'} "
                          f"(join: {d['join_rows_out'][0] if d['join_rows_out'] else '?'})"))
        if d["join_c"]["list"]:
            checks.append(f"N={n}: the {jr}-row join listed the organizations "
                          f"({d['join_c']['list']} GET /orgs)")
        rows.append(Row("(d)", f"{k} single-row DELETE … WHERE org_id = const", "1",
                        sum(d["delete1_ms"]), limit_ms(0, k, 1), a_per * k, d["delete1_c"], 1,
                        f"{sum(d['delete1_ms']) / k:.1f} ms/stmt; "
                        f"{k - d['still_linked_after_delete']} of {k} links gone"))
        rows.append(Row("(d)", f"{k} single-row INSERTs", "1", sum(d["insert1_ms"]),
                        limit_ms(0, k, 1), a_per * k, d["insert1_c"], 1,
                        f"{sum(d['insert1_ms']) / k:.1f} ms/stmt"))
        rows.append(Row("(d)", f"one DELETE … WHERE org_id = ANY ({k} ids)", str(DEFAULT_C),
                        d["deleteN_ms"], limit_ms(0, k, DEFAULT_C), a_per * k, d["deleteN_c"],
                        1, ""))
        rows.append(Row("(d)", f"one INSERT … SELECT of {k} rows", str(DEFAULT_C),
                        d["insertN_ms"], limit_ms(0, k, DEFAULT_C), a_per * k, d["insertN_c"],
                        1, f"limit if sequential: {limit_ms(0, k, 1):,.0f} ms"))
        for key, what in (("delete1_c", "single-row DELETEs"), ("insert1_c", "single-row INSERTs")):
            c_ = d[key]
            if c_["requests"] > k or c_["list"] or c_["status"]:
                checks.append(f"N={n}: {k} {what} made {c_['requests']} HTTP requests "
                              f"(list {c_['list']}, status {c_['status']}, challenges "
                              f"{c_['challenges']}, new connections {c_['connections']})")

        print(f"## N = {n} organizations ({pages} listing page{'s' if pages > 1 else ''}, "
              f"{expect_rows} linked), L = {L} ms")
        print()
        print_table(rows)
        print()
        join_plan = " / ".join(x.strip() for x in d["join_plan"])
        print(f"Join plan: `{join_plan}`")
        print()
        sys.stdout.flush()
        notes.append(n)

    # (e)
    log(f"(e) memory and fds over {MEM_SCANS:,} scans in one backend (N = {MEM_ORGS}, L = 0)")
    e = measure_memory()
    mem = e["mem"]
    half = MEM_SCANS // 2
    print(f"## Backend memory and open fds over {MEM_SCANS:,} scans (one backend, "
          f"N = {MEM_ORGS}, L = 0 ms, C = {DEFAULT_C})")
    print()
    print("| point | scans so far | VmRSS kB | open fds | ms | HTTP requests per scan "
          "| digest challenges | new TCP conns |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    do_c, st_c = e["do_c"], e["stmts_c"]
    print(f"| before the first scan | 0 | {mem[0][0]:,} | {mem[0][1]} | — | — | — | — |")
    print(f"| after the first scan | 1 | {mem[1][0]:,} | {mem[1][1]} | "
          f"{e['first_ms']:.1f} | — | — | — |")
    print(f"| DO loop, first half | {1 + half:,} | {mem[2][0]:,} | {mem[2][1]} | "
          f"| | | |")
    print(f"| DO loop, second half | {1 + 2 * half:,} | {mem[3][0]:,} | {mem[3][1]} | "
          f"{e['do_ms']:,.0f} ({e['do_ms'] / (2 * half):.2f}/scan) | "
          f"{do_c['requests'] / (2 * half):.2f} | {do_c['challenges']} | {do_c['connections']} |")
    print(f"| + {MEM_STMTS:,} separate statements | {1 + 2 * half + MEM_STMTS:,} | "
          f"{mem[4][0]:,} | {mem[4][1]} | {e['stmts_ms']:,.0f} "
          f"({e['stmts_ms'] / MEM_STMTS:.2f}/scan) | {st_c['requests'] / MEM_STMTS:.2f} | "
          f"{st_c['challenges']} | {st_c['connections']} |")
    print()
    growth = mem[3][0] - mem[1][0]
    print(f"VmRSS growth over the {2 * half:,} DO-loop scans: {growth:+,} kB "
          f"({growth * 1024 / (2 * half):+.0f} bytes/scan; first half {mem[2][0] - mem[1][0]:+,} kB, "
          f"second half {mem[3][0] - mem[2][0]:+,} kB); over the {MEM_STMTS:,} statements: "
          f"{mem[4][0] - mem[3][0]:+,} kB. Open fds: {mem[1][1]} → {mem[3][1]} → {mem[4][1]}.")
    print()
    if mem[3][0] - mem[2][0] > 1024:
        checks.append(f"(e) VmRSS still grows in the second half of the DO loop: "
                      f"{mem[3][0] - mem[2][0]:+,} kB over {half:,} scans")
    if mem[4][0] - mem[3][0] > 1024:
        checks.append(f"(e) VmRSS grows over {MEM_STMTS:,} separate statements: "
                      f"{mem[4][0] - mem[3][0]:+,} kB")
    if mem[3][1] > mem[1][1] or mem[4][1] > mem[1][1]:
        checks.append(f"(e) open fds grew: {mem[1][1]} → {mem[3][1]} → {mem[4][1]}")
    want = pages_for(MEM_ORGS) + MEM_ORGS
    if do_c["requests"] > want * 2 * half or st_c["requests"] > want * MEM_STMTS:
        checks.append(f"(e) more than {want} requests per scan: "
                      f"{do_c['requests'] / (2 * half):.2f} (DO loop), "
                      f"{st_c['requests'] / MEM_STMTS:.2f} (statements)")
    if do_c["challenges"] or st_c["challenges"] or do_c["connections"] or st_c["connections"]:
        checks.append(f"(e) warm scans paid {do_c['challenges'] + st_c['challenges']} challenges "
                      f"and opened {do_c['connections'] + st_c['connections']} connections")

    print("## Automatic checks")
    print()
    if checks:
        for c in checks:
            print(f"- {c}")
    else:
        print("- none flagged: warm scans made at most pages + N requests with no digest "
              "challenge and no new connection, lookups and joins did not list, "
              "and VmRSS/fds stayed flat")
    print()
    print("Notes: (a) and (b) are given the org ids and do not list them, so they make N "
          "status calls and no GET /orgs; their limit is still the formula's (pages + N) × L. "
          "Speedup = (a)'s time for the same number of organizations ÷ this row's time "
          "(for (d): (a)'s time per org × ids). HTTP requests include 401 challenges. "
          "Where (a)/(b) are extrapolated (marked ≈), their status calls are scaled the same "
          "way; (b)'s one challenge and one connection are not.")
    print()
    print(f"Total bench time: {time.monotonic() - t_start:,.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
