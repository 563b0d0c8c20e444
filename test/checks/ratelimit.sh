#!/usr/bin/env bash
# test/checks/ratelimit.sh: the API's rate limit shared by every backend.  On
# a cluster started with shared_preload_libraries = 'opsmig_fdw', three
# sessions scan 40 organizations each at once, with one API key, against a
# simulator bucket of capacity 10 refilled at 20 a second: all complete, and
# at most 5% of all requests are answered 429 (each backend pacing alone
# would together go at three times the refill rate).  Also: the DEBUG1 line
# of a waiting statement, and a backend terminated while it waits leaves the
# shared bucket usable.  Every wait is bounded.  Prints
# "ratelimit: N passed, M failed"; non-zero on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ctl() { python3 "$SIM" ctl "$@"; }

build_and_install
PG_EXTRA_OPTS="-c shared_preload_libraries=opsmig_fdw" start_services --orgs 40

psql -X -q -v ON_ERROR_STOP=1 -v base_url="$SIM_URL/api/public/v1.0" -v pk="$SIM_PRIVATE_KEY" <<'SQL'
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (public_key 'opsmigtest', private_key :'pk');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO public;
SQL
check "the library is preloaded" \
	grep -q opsmig_fdw <<<"$(psql -X -At -c 'SHOW shared_preload_libraries')"

# Three sessions at once; each ends within statement_timeout whatever happens.
scan() {	# scan N: one session's scan, its output in $WORK/scan.N
	psql -X -At -c "SET statement_timeout = '60s'" -c "SET client_min_messages = debug1" \
		-c "SELECT 'count:' || count(*) FROM org_migration_links" >"$WORK/scan.$1" 2>&1 || true
}
ctl ratelimit --capacity 10 --refill 20 --per 1 >/dev/null
ctl reset-counters >/dev/null
log "three sessions scanning 40 organizations each, one bucket of capacity 10 + 20/s"
start=$(date +%s.%N)
scan 1 & p1=$!
scan 2 & p2=$!
scan 3 & p3=$!
wait $p1 $p2 $p3
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
n429=$(ctl counter rate_limited)
nreq=$(( $(ctl counter list) + $(ctl counter status) ))
echo "    3 scans: $nreq requests, $n429 answered 429, ${elapsed} s (bucket limit $(echo "scale=2; ($nreq - $n429 - 10) / 20" | bc) s)"
for i in 1 2 3; do
	check "session $i completed with every linked organization" grep -q '^count:27$' "$WORK/scan.$i"
done
check "at most 5% of all requests answered 429 ($n429 of $nreq)" test $((n429 * 20)) -le "$nreq"
check "a waiting statement says so at DEBUG1" \
	grep -q 'waiting on the rate limit of API key "opsmigtest"' "$WORK/scan.1" "$WORK/scan.2" "$WORK/scan.3"

# A backend ended while it waits on the shared bucket leaves nothing stuck.
ctl ratelimit --capacity 10 --refill 5 --per 1 >/dev/null
psql -X -At -c "SET statement_timeout = '60s'" -c "SELECT count(*) FROM org_migration_links" \
	>"$WORK/victim" 2>&1 &
victim=$!
for _ in $(seq 1 100); do
	[ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM org_migration_links%' AND pid <> pg_backend_pid()")" = 1 ] && break
	sleep 0.1
done
sleep 1	# let it spend the burst and start waiting
psql -X -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM org_migration_links%' AND pid <> pg_backend_pid()" >/dev/null
wait $victim || true
check "the waiting backend was terminated" grep -q 'terminating connection' "$WORK/victim"
ctl ratelimit --capacity 10 --refill 50 --per 1 >/dev/null
out=$(psql -X -At -c "SET statement_timeout = '30s'" -c "SELECT 'after:' || count(*) FROM org_migration_links" 2>&1 || true)
check "the next session's scan completes on the shared bucket" grep -q '^after:27$' <<<"$out"

check "the private key is in no server log line" \
	bash -c '! grep -qF -- "$1" "$2"' _ "$SIM_PRIVATE_KEY" "$WORK/data/postgres.log"
echo "ratelimit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
