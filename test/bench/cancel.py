"""The measuring half of test/bench/cancel.sh (see there).

Each figure comes from psql's own \\timing, so it is the time the client
waited: statement_timeout fires at a known moment, and what is left over is
the backend's reaction to it (the latch wakes the wait loop, the transfer is
detached, the error is sent).  The simulator's "stall" fault holds every
status call open, so each statement is stuck in the API until cancelled."""
import os
import re
import statistics
import subprocess
import sys
import time

ORG = "5e2211c17a3e5a48f5000001"
QUERY = f"SELECT status FROM org_migration_links WHERE org_id = '{ORG}';"
TIMEOUT_MS = 100


def psql(sql, timeout=600, check=True):
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-"],
                         input=sql, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode not in (0, 1):
        sys.exit(f"psql failed: {out.stderr}")
    return out.stdout + out.stderr


def ctl(*args):
    subprocess.run(["python3", os.environ["CANCEL_SIM"], "ctl", *args], check=True,
                   capture_output=True, timeout=30)


def setup():
    psql(f"""
CREATE EXTENSION IF NOT EXISTS opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url '{os.environ["SIM_URL"]}/api/public/v1.0', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'pk');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO public;
""".replace(":'pk'", "'" + os.environ["SIM_PRIVATE_KEY"].replace("'", "''") + "'"))


def timings(output):
    return [float(m) for m in re.findall(r"Time: ([0-9.]+) ms", output)]


def statement_timeout_reaction(samples):
    script = f"SET statement_timeout = '{TIMEOUT_MS}ms';\n\\timing on\n" + (QUERY + "\n") * samples
    out = psql(script)
    errors = out.count("canceling statement due to statement timeout")
    t = [x - TIMEOUT_MS for x in timings(out)]
    return t, errors


def signal_reaction(func, rounds=10):
    """pg_cancel_backend / pg_terminate_backend from a second session."""
    lat = []
    for _ in range(rounds):
        victim = subprocess.Popen(["psql", "-X", "-q", "-c", "SELECT pg_backend_pid()", "-At",
                                   "-c", QUERY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        pid = None
        for _ in range(100):                       # bounded: 5 s
            line = victim.stdout.readline().strip()
            if line.isdigit():
                pid = int(line)
                break
        if pid is None:
            victim.kill()
            sys.exit("could not read the victim's pid")
        time.sleep(0.3)                           # it is now stuck in the stalled request
        t0 = time.monotonic()
        psql(f"SELECT {func}({pid});")
        victim.wait(timeout=30)
        lat.append((time.monotonic() - t0) * 1000)
        victim.stdout.close()
        victim.stderr.close()
    return lat


def leak_check(count):
    warm = 20
    # \\! takes its line as is (no psql variables), so the pid goes by \\setenv.
    head = ("SET statement_timeout = '20ms';\nSELECT pg_backend_pid() AS pid \\gset\n"
            "\\setenv OPSMIG_PID :pid\n")
    probe = ("\\! python3 -c \"import os; p=os.environ['OPSMIG_PID']; "
             "print('FIG', [l.split()[1] for l in open('/proc/'+p+'/status') if l.startswith('VmRSS')][0], "
             "len(os.listdir('/proc/'+p+'/fd')))\"\n")
    script = head + (QUERY + "\n") * warm + probe + (QUERY + "\n") * count + probe
    out = psql(script, timeout=900)
    figs = re.findall(r"FIG (\d+) (\d+)", out)
    cancelled = out.count("canceling statement due to statement timeout")
    return figs, cancelled


def main():
    count = int(os.environ["CANCEL_COUNT"])
    samples = int(os.environ["CANCEL_SAMPLES"])
    setup()
    psql(QUERY)                                   # warm: one handle, its nonce known
    ctl("fault", "stall", "--on", "status", "--times", "-1", "--seconds", "2")

    t, errors = statement_timeout_reaction(samples)
    cancel = signal_reaction("pg_cancel_backend")
    terminate = signal_reaction("pg_terminate_backend")
    figs, cancelled = leak_check(count)
    ctl("clear-faults")
    after = psql(QUERY)

    print("# opsmig_fdw cancel figures (`test/bench/cancel.sh`)\n")
    print(f"- machine: {os.cpu_count()} cores; simulator on 127.0.0.1 stalling every status call\n")
    print("| what | n | median ms | max ms |")
    print("|---|--:|--:|--:|")
    print(f"| statement_timeout ({TIMEOUT_MS} ms) → error, beyond the timeout | {len(t)} "
          f"| {statistics.median(t):.1f} | {max(t):.1f} |")
    print(f"| pg_cancel_backend() from another session → victim's psql exits | {len(cancel)} "
          f"| {statistics.median(cancel):.1f} | {max(cancel):.1f} |")
    print(f"| pg_terminate_backend() from another session → victim's psql exits | {len(terminate)} "
          f"| {statistics.median(terminate):.1f} | {max(terminate):.1f} |")
    print()
    print(f"- statement_timeout errors: {errors} of {samples} statements (57014)")
    print("- the signal rows include starting a psql for the signal and the victim's exit")
    if len(figs) == 2:
        (r0, f0), (r1, f1) = [(int(a), int(b)) for a, b in figs]
        print(f"- {cancelled - 20} cancelled requests after 20 warm-up ones: VmRSS {r0} kB → {r1} kB "
              f"({r1 - r0:+d} kB), open fds {f0} → {f1}")
    print(f"- after all that, the next query: {'works' if 'SYNCED' in after else 'FAILED: ' + after}")


main()
