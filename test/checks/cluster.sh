#!/usr/bin/env bash
# test/checks/cluster.sh: opsmig_fdw loaded through shared_preload_libraries.
# Against a preloaded throwaway cluster and the simulator, checks that:
#   - two sessions' work (a 5-org scan and a lookup) shows as 7 requests in
#     opsmig_fdw_cluster_stats read by a third session, and only to roles
#     allowed to see it;
#   - a scan slowed by the simulator shows rising requests_done of a known
#     requests_planned in opsmig_fdw_activity while it runs, a retry shows as
#     "backoff" with waiting_until, INSERT and DELETE as "create" and "delete",
#     and the row goes when the statement ends,
#     also by cancel or by pg_terminate_backend;
#   - with cache_ttl '300' a second session's full scan and lookup make no
#     request; another API key gets no cached answer; INSERT and DELETE
#     invalidate, also an answer in flight during the DELETE;
#   - pgbench: PGBENCH_CLIENTS (32) sessions scanning and looking up at once
#     for PGBENCH_SECONDS (20; the documented manual run uses 60): no error,
#     no crash, and the cluster's counters equal the simulator's own count.
# Prints the pgbench figures and "cluster: N passed, M failed".
# Usage: [PGBENCH_SECONDS=60] bash test/checks/cluster.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-32}

eq() {		# eq "what" expected actual
	if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   - $1"
	else failed=$((failed + 1)); echo "FAIL - $1: expected '$2', got '$3'"; fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
sim() { python3 "$SIM" ctl "$@"; }
simstat() { sim stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
ORG1=5e2211c17a3e5a48f5000001

build_and_install
# A small shared cache, so that section 3 also sees it evict.  CLUSTER_EXTRA_OPTS
# (opt-in): more server options, e.g. a dynamic_library_path to a sanitizer build.
PG_EXTRA_OPTS="-c shared_preload_libraries=opsmig_fdw -c opsmig_fdw.shared_cache_size=64 -c max_connections=60 ${CLUSTER_EXTRA_OPTS:-}" \
	start_services --orgs 5 --weak-key opsmigweak:weak-PRIVATE-5678
base_url="$SIM_URL/api/public/v1.0"

log "setting up: servers om (plain), om_slow (one request at a time), om_cached (cache_ttl 300)"
psql -X -q -v ON_ERROR_STOP=1 -v base_url="$base_url" -v key="$SIM_PRIVATE_KEY" <<'SQL'
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE SERVER om_slow FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', max_concurrent_requests '1', max_retries '3');
CREATE SERVER om_cached FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', cache_ttl '300');
CREATE USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (public_key 'opsmigtest', private_key :'key');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_slow OPTIONS (public_key 'opsmigtest', private_key :'key');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_cached OPTIONS (public_key 'opsmigtest', private_key :'key');
CREATE SERVER om_big FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', cache_ttl '300');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_big OPTIONS (public_key 'opsmigtest', private_key :'key');
CREATE SCHEMA big;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_big INTO big;
CREATE SERVER om_race FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', cache_ttl '300');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_race OPTIONS (public_key 'opsmigtest', private_key :'key');
CREATE SCHEMA race;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_race INTO race;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO public;
CREATE SCHEMA slow;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_slow INTO slow;
CREATE SCHEMA cached;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_cached INTO cached;
-- For pgbench: answers reused for a tenth of a second, so puts race with gets.
CREATE SCHEMA brief;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_cached INTO brief;
ALTER FOREIGN TABLE brief.org_migration_links OPTIONS (ADD cache_ttl '0.1');
-- A role whose key may list organizations but not read their links.
CREATE ROLE weak LOGIN;
GRANT USAGE ON SCHEMA cached TO weak;
GRANT SELECT ON cached.org_migration_links TO weak;
CREATE USER MAPPING FOR weak SERVER om_cached
  OPTIONS (public_key 'opsmigweak', private_key 'weak-PRIVATE-5678');
CREATE ROLE watcher LOGIN;
SQL

log "1. two sessions' work, read by a third"
sim reset-counters >/dev/null
q "SELECT opsmig_fdw_cluster_stats_reset()" >/dev/null
q "SELECT count(*) FROM org_migration_links" >/dev/null
q "SELECT status FROM org_migration_links WHERE org_id = '$ORG1'" >/dev/null
eq "a third session sees 7 requests (1 list + 6 status)" "1 6" \
	"$(q "SELECT sum(list_requests), sum(status_requests) FROM opsmig_fdw_cluster_stats WHERE server_name = 'om'" | tr '|' ' ')"
eq "the simulator counted the same" "1 6" "$(simstat list) $(simstat status)"
eq "a role without pg_read_all_stats sees none of it" "0" \
	"$(psql -X -At -U watcher -c "SELECT count(*) FROM opsmig_fdw_cluster_stats")"
eq "a member of pg_read_all_stats sees it" "7" \
	"$(q "GRANT pg_read_all_stats TO watcher" >/dev/null
	   psql -X -At -U watcher -c "SELECT sum(list_requests + status_requests) FROM opsmig_fdw_cluster_stats WHERE server_name = 'om'"
	   q "REVOKE pg_read_all_stats FROM watcher" >/dev/null)"
check "the README's queries run" psql -X -q -v ON_ERROR_STOP=1 -o /dev/null \
	-c "SELECT database, role, server_name, list_requests + status_requests AS reads,
       errors_429, retries, cache_hits, max_ms
  FROM opsmig_fdw_cluster_stats" \
	-c "SELECT pid, server_name, phase, requests_done, requests_planned, in_flight,
       waiting_until, now() - started_at AS running_for
  FROM opsmig_fdw_activity"
psql -X -q -U watcher -c "SELECT opsmig_fdw_cluster_stats_reset()" 2>"$WORK/reset.err" || true
check "the reset function is refused to other roles (42501)" grep -q "permission denied" "$WORK/reset.err"
# A finished statement shows at once, also inside a transaction block (a
# client that never commits its SELECTs, as psycopg2 by default).
in_block=$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL | tail -n 1
SELECT opsmig_fdw_cluster_stats_reset();
BEGIN;
SELECT status FROM org_migration_links WHERE org_id = '$ORG1';
\! psql -X -At -c "SELECT coalesce(sum(status_requests), 0) FROM opsmig_fdw_cluster_stats WHERE server_name = 'om'"
COMMIT;
SQL
)
eq "a statement done in a still open transaction shows to a third session" "1" "$in_block"
# max_ms after a reset is the slowest request since the reset, not the slowest
# this backend ever made: one session, a slow lookup, reset, a fast lookup.
max_after_reset=$(psql -X -At -v ON_ERROR_STOP=1 \
	-c "\\! python3 $SIM ctl latency 500 >/dev/null" \
	-c "SELECT status FROM org_migration_links WHERE org_id = '$ORG1'" \
	-c "\\! python3 $SIM ctl latency 0 >/dev/null" \
	-c "SELECT opsmig_fdw_cluster_stats_reset()" \
	-c "SELECT status FROM org_migration_links WHERE org_id = '$ORG1'" \
	-c "SELECT max_ms < 400 FROM opsmig_fdw_cluster_stats WHERE server_name = 'om'" | tail -n 1)
eq "max_ms after a reset does not show a request made before it" "t" "$max_after_reset"
# server_name is the server's name now, as database and role are.
q "CREATE SERVER om_ren FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url '$base_url');
   CREATE USER MAPPING FOR CURRENT_USER SERVER om_ren
     OPTIONS (public_key 'opsmigtest', private_key '$SIM_PRIVATE_KEY');
   CREATE SCHEMA ren;
   IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_ren INTO ren;" >/dev/null
q "SELECT status FROM ren.org_migration_links WHERE org_id = '$ORG1'" >/dev/null
q "ALTER SERVER om_ren RENAME TO om_renamed" >/dev/null
eq "after ALTER SERVER ... RENAME TO the counters show under the new name" "om_renamed" \
	"$(q "SELECT string_agg(server_name, ',') FROM opsmig_fdw_cluster_stats WHERE server_name LIKE 'om_ren%'")"

log "2. live progress of a slow scan"
sim latency 400 >/dev/null
# poll_activity PID SECONDS: print "done/planned phase" samples of PID's row
# every 0.1 s until it is gone (at most SECONDS).  Before the row first shows
# (the session may still be planning or connecting on a busy machine) it waits
# as long as the background session ($BG) runs.
poll_activity() {
	local pid=$1 i seen=0
	for i in $(seq 1 $(($2 * 10))); do
		local row
		row=$(q "SELECT requests_done || '/' || requests_planned || ' ' || phase || ' ' || (waiting_until IS NOT NULL) FROM opsmig_fdw_activity WHERE pid = $pid")
		if [ -n "$row" ]; then
			seen=1
			echo "$row"
		elif [ "$seen" = 1 ] || ! kill -0 "$BG" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
}
# bg_session SQL: a session running SQL in the background; sets BG and BGPID.
bg_session() {
	psql -X -At -v ON_ERROR_STOP=1 -c "SELECT pg_backend_pid()" -c "$1" >"$WORK/bg.out" 2>&1 &
	BG=$!
	local i
	for i in $(seq 1 100); do
		BGPID=$(head -n 1 "$WORK/bg.out" 2>/dev/null || true)
		[ -n "$BGPID" ] && return 0
		sleep 0.05
	done
	return 1
}
bg_session "SELECT count(*) FROM slow.org_migration_links"
poll_activity "$BGPID" 20 >"$WORK/progress"
wait "$BG" || true
echo "  samples (done/planned phase waiting):"; sort -u "$WORK/progress" | sed 's/^/    /'
check "requests_planned is known (6) while the scan runs" grep -q "^[0-9]*/6 " "$WORK/progress"
check "requests_done rises while it runs (3 or more distinct values of 6)" \
	test "$(grep "/6 " "$WORK/progress" | cut -d/ -f1 | sort -u | wc -l)" -ge 3
check "the phase shows listing, then status" \
	bash -c "grep -q ' listing ' '$WORK/progress' && grep -q ' status ' '$WORK/progress'"
eq "the row is gone when the statement ends" "0" "$(q "SELECT count(*) FROM opsmig_fdw_activity")"

ORG3=5e2211c17a3e5a48f5000003
bg_session "INSERT INTO slow.org_migration_links (org_id, link_token) VALUES ('$ORG3', 'tok')"
poll_activity "$BGPID" 10 >"$WORK/create"
wait "$BG" || true
check "an INSERT shows as create, 1 request planned" grep -q "/1 create " "$WORK/create"
bg_session "DELETE FROM slow.org_migration_links WHERE org_id = '$ORG3'"
poll_activity "$BGPID" 10 >"$WORK/delete"
wait "$BG" || true
check "a DELETE shows as delete, 1 request planned" grep -q "/1 delete " "$WORK/delete"

sim fault http --code 503 --retry-after 2 --on status --org "$ORG1" >/dev/null
bg_session "SELECT status FROM slow.org_migration_links WHERE org_id = '$ORG1'"
poll_activity "$BGPID" 10 >"$WORK/backoff"
wait "$BG" || true
check "a retry waiting on Retry-After shows as backoff with waiting_until" grep -q " backoff true" "$WORK/backoff"

for how in cancel terminate; do
	bg_session "SELECT count(*) FROM slow.org_migration_links"
	for _ in $(seq 1 50); do
		[ "$(q "SELECT count(*) FROM opsmig_fdw_activity WHERE pid = $BGPID")" = 1 ] && break
		sleep 0.1
	done
	if [ "$how" = cancel ]; then
		eq "another role without pg_read_all_stats does not see the row" "0" \
			"$(psql -X -At -U watcher -c "SELECT count(*) FROM opsmig_fdw_activity")"
	fi
	q "SELECT pg_${how}_backend($BGPID)" >/dev/null
	left=1
	for _ in $(seq 1 50); do
		left=$(q "SELECT count(*) FROM opsmig_fdw_activity WHERE pid = $BGPID")
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	wait "$BG" || true
	eq "the row goes when the statement is stopped by pg_${how}_backend" "0" "$left"
done
sim latency 0 >/dev/null
sim clear-faults >/dev/null

log "3. the shared cache"
sim reset-counters >/dev/null
q "SELECT count(*) FROM cached.org_migration_links" >/dev/null
q "SELECT status FROM cached.org_migration_links WHERE org_id = '$ORG1'" >/dev/null
eq "the first session pays one listing and 5 status calls" "1 5" "$(simstat list) $(simstat status)"
eq "a second session's scan and lookup make no request" "4 SYNCED" \
	"$(psql -X -At -c "SELECT count(*) FROM cached.org_migration_links" \
		-c "SELECT status FROM cached.org_migration_links WHERE org_id = '$ORG1'" | tr '\n' ' ' | sed 's/ $//')"
eq "the simulator saw nothing new" "1 5" "$(simstat list) $(simstat status)"
eq "cache hits: 1 in the first session, 6 in the second" "7" \
	"$(q "SELECT cache_hits FROM opsmig_fdw_cluster_stats WHERE server_name = 'om_cached' AND role = 'postgres'")"
psql -X -At -U weak -c "SELECT status FROM cached.org_migration_links WHERE org_id = '$ORG1'" \
	>/dev/null 2>"$WORK/weak.err" || true
check "another API key gets no cached answer: the API refuses it (NOT_ORG_ADMIN)" \
	grep -q "NOT_ORG_ADMIN" "$WORK/weak.err"
eq "... after asking the API" "6" "$(simstat status)"
eq "a DELETE through the FDW removes one link" "1" \
	"$(psql -X -At -c "WITH d AS (DELETE FROM cached.org_migration_links WHERE org_id = '$ORG1' RETURNING 1) SELECT count(*) FROM d")"
before=$(simstat status)
eq "another session no longer sees the deleted link's cached status" "3" \
	"$(q "SELECT count(*) FROM cached.org_migration_links")"
eq "... having asked the API for that organization only" "1" "$(( $(simstat status) - before ))"
eq "an INSERT through the FDW links it again" "1" \
	"$(psql -X -At -c "WITH i AS (INSERT INTO cached.org_migration_links (org_id, link_token) VALUES ('$ORG1', 'tok') RETURNING 1) SELECT count(*) FROM i")"
before=$(simstat status)
eq "another session sees the new link, not the cached \"no link\"" "4" \
	"$(q "SELECT count(*) FROM cached.org_migration_links")"
eq "... having asked the API for that organization only" "1" "$(( $(simstat status) - before ))"

# 100 organizations do not fit 64 entries: the listing is not cached, the
# statuses are evicted in turn, and every answer stays right.
sim reset --orgs 100 >/dev/null
eq "a scan larger than the shared cache: right rows (67 linked)" "67" \
	"$(q "SELECT count(*) FROM big.org_migration_links")"
before=$(simstat status)
eq "... and again from another session, partly from the cache" "67" \
	"$(q "SELECT count(*) FROM big.org_migration_links")"
asked=$(( $(simstat status) - before ))
check "... which asked the API for some ($asked of 100) organizations, not all" \
	test "$asked" -gt 0 -a "$asked" -lt 100
sim reset >/dev/null

# An answer asked before a DELETE and read after it must not be cached: a
# cursor has org 5's status in flight (dripping in slowly) while another
# session deletes that link.
ORG5=5e2211c17a3e5a48f5000005
sim fault drip --org "$ORG5" --interval-ms 100 >/dev/null
psql -X -At -v ON_ERROR_STOP=1 >"$WORK/race.out" 2>&1 <<SQL || true
BEGIN;
DECLARE c CURSOR FOR SELECT org_id FROM race.org_migration_links;
FETCH 1 FROM c;
\! psql -X -At -c "DELETE FROM race.org_migration_links WHERE org_id = '$ORG5'"
FETCH ALL FROM c;
COMMIT;
SQL
check "the cursor read org 5's stale answer after the DELETE (the race happened)" \
	grep -q "$ORG5" "$WORK/race.out"
eq "another session then gets the truth, not the stale answer (3 links)" "3" \
	"$(q "SELECT count(*) FROM race.org_migration_links")"
sim clear-faults >/dev/null

# Answers fetched without certificate verification are not served once the
# server verifies (as without preloading, where ALTER SERVER drops the cache).
q "CREATE SERVER om_verify FOREIGN DATA WRAPPER opsmig_fdw
     OPTIONS (base_url '$base_url', cache_ttl '300', ssl_verify 'false');
   CREATE USER MAPPING FOR CURRENT_USER SERVER om_verify
     OPTIONS (public_key 'opsmigtest', private_key '$SIM_PRIVATE_KEY');
   CREATE SCHEMA verify;
   IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_verify INTO verify;" >/dev/null
q "SELECT count(*) FROM verify.org_migration_links" >/dev/null
q "ALTER SERVER om_verify OPTIONS (SET ssl_verify 'true')" >/dev/null
before=$(simstat status)
q "SELECT count(*) FROM verify.org_migration_links" >/dev/null
eq "after ALTER SERVER ... ssl_verify 'true' another session asks the API again (5 organizations)" \
	"5" "$(( $(simstat status) - before ))"

eq "the shared cache holds at most its size" "t" \
	"$(q "SELECT size <= 64 * 1024 FROM pg_shmem_allocations WHERE name = 'opsmig_fdw shared cache'")"
sim reset >/dev/null

log "4. pgbench: $PGBENCH_CLIENTS sessions, scans and lookups, for $PGBENCH_SECONDS s"
cat >"$WORK/scan.sql" <<'SQL'
SELECT count(*) FROM org_migration_links;
SQL
cat >"$WORK/lookup.sql" <<'SQL'
\set n random(1, 5)
SELECT status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5' || lpad(to_hex(:n), 6, '0');
SQL
cat >"$WORK/cached.sql" <<'SQL'
SELECT count(*) FROM brief.org_migration_links;
SQL
sim reset-counters >/dev/null
q "SELECT opsmig_fdw_cluster_stats_reset()" >/dev/null
bench_rc=0
pgbench -n -c "$PGBENCH_CLIENTS" -j 4 -T "$PGBENCH_SECONDS" \
	-f "$WORK/scan.sql@4" -f "$WORK/lookup.sql@4" -f "$WORK/cached.sql@2" \
	>"$WORK/pgbench.out" 2>"$WORK/pgbench.err" || bench_rc=$?
sed 's/^/  /' "$WORK/pgbench.out"
eq "pgbench exits 0" "0" "$bench_rc"
check "pgbench reports no error" bash -c "! grep -qi 'error' '$WORK/pgbench.err'"
[ "$bench_rc" = 0 ] || head -n 20 "$WORK/pgbench.err" >&2
fdw=$(q "SELECT sum(list_requests) || ' ' || sum(status_requests) || ' ' || sum(connections_opened) FROM opsmig_fdw_cluster_stats")
other=$(q "SELECT sum(errors_404) || ' ' || sum(errors_401 + errors_403 + errors_409 + errors_429 + errors_4xx_other + errors_5xx + errors_transport) || ' ' || sum(retries) || ' ' || sum(cache_hits) FROM opsmig_fdw_cluster_stats")
simc="$(simstat list) $(simstat status) $(simstat connections)"
echo "  opsmig_fdw_cluster_stats: list status connections = $fdw"
echo "  simulator:                list status connections = $simc"
echo "  404s (organizations without a link), other errors, retries, cache hits = $other"
eq "the cluster's counters equal the simulator's (list, status, connections)" "$simc" "$fdw"
other=${other#* }
eq "... and no error other than the 404s of unlinked organizations, no retry" "0 0" "${other% *}"
check "no backend crashed" bash -c "! grep -q 'terminated by signal' '$WORK/data/postgres.log'"
check "the server is up" psql -X -q -c "SELECT 1" -o /dev/null

echo "cluster: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
