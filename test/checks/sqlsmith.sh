#!/usr/bin/env bash
# test/checks/sqlsmith.sh: a bounded SQLsmith run against a database holding
# the foreign table (on the API simulator) and a local table to join it with.
# Random queries may fail with errors; what must not happen is a backend
# crash.  The run is reproducible (fixed --seed) and bounded: at most
# SQLSMITH_QUERIES queries (default 1500), SQLSMITH_SECONDS seconds (default
# 60) in all, and 2 s per statement.  SQLsmith connects as a role that is not
# a superuser, so its random function calls cannot reach files, signals or
# settings of the cluster.  Checks: sqlsmith ran, no server process was
# terminated by a signal, the postmaster is still up, and the queries did
# reach the API (the simulator counted status calls).  Prints
# "sqlsmith: N passed, M failed"; non-zero on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

SEED=${SQLSMITH_SEED:-20261128}
QUERIES=${SQLSMITH_QUERIES:-5000}
SECONDS_MAX=${SQLSMITH_SECONDS:-60}


if ! command -v sqlsmith >/dev/null; then
	log "installing sqlsmith with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends sqlsmith >/dev/null
fi

build_and_install
start_services --orgs 12

log "creating the database sqlsmith plays in"
psql -X -q -v ON_ERROR_STOP=1 -v base_url="$SIM_URL/api/public/v1.0" \
	-v pk="$SIM_PRIVATE_KEY" <<'SQL'
CREATE ROLE smith LOGIN;
CREATE DATABASE smith OWNER smith;
\c smith
CREATE EXTENSION opsmig_fdw;
GRANT USAGE ON FOREIGN DATA WRAPPER opsmig_fdw TO smith;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', max_retries '0', request_timeout '2', cache_ttl '5');
ALTER SERVER om OWNER TO smith;
CREATE USER MAPPING FOR smith SERVER om OPTIONS (public_key 'opsmigtest', private_key :'pk');
SET ROLE smith;
CREATE FOREIGN TABLE org_migration_links
  (org_id text NOT NULL, org_name text, status text, link_token text) SERVER om;
CREATE FOREIGN TABLE links_short (org_id varchar(24), status varchar) SERVER om
  OPTIONS (cache_ttl '0');
CREATE TABLE inventory (org_id text PRIMARY KEY, team text, migrated boolean, wave int);
INSERT INTO inventory
  SELECT '5e2211c17a3e5a48f5' || lpad(to_hex(i), 6, '0'), 'team-' || (i % 3), i % 2 = 0, i % 4
    FROM generate_series(1, 15) AS i;
ANALYZE inventory;
RESET ROLE;
ALTER ROLE smith SET statement_timeout = '2s';
SQL

log "running sqlsmith: seed $SEED, at most $QUERIES queries and $SECONDS_MAX s"
smith_log="$WORK/sqlsmith.log"
start=$(date +%s)
set +e
timeout --signal=INT --kill-after=10 "$SECONDS_MAX" \
	sqlsmith --target="host=$PGHOST port=$PGPORT dbname=smith user=smith" \
	--seed="$SEED" --max-queries="$QUERIES" --exclude-catalog --verbose >"$smith_log" 2>&1
smith_rc=$?
set -e
elapsed=$(($(date +%s) - start))
tail -n 25 "$smith_log" | tr '\r' '\n' | grep -v '^[.eSC ]*$' | tail -n 15 || true
queries=$(tr '\r' '\n' <"$smith_log" | grep -o 'queries: [0-9]*' | tail -n 1 | grep -o '[0-9]*' || echo "?")
echo "sqlsmith ran ${elapsed} s, exit status $smith_rc, queries: $queries"
api_counts=$(python3 "$SIM" ctl counts)
echo "API requests it caused: $api_counts"

server_log="$WORK/data/postgres.log"
echo "errors that name opsmig_fdw's objects or the API, by message:"
grep -E 'ERROR: ' "$server_log" |
	grep -E 'organization|migration link|org_migration_links|links_short|opsmig|API' |
	sed -e 's/.*ERROR: *//' -e 's/ at character [0-9]*//' | sort | uniq -c | sort -rn | head -n 20 || true
# 0: max-queries reached; 124/130: the time bound (timeout sends SIGINT).
check "sqlsmith ran to its bound (exit $smith_rc)" \
	test "$smith_rc" -eq 0 -o "$smith_rc" -eq 124 -o "$smith_rc" -eq 130
check "no server process terminated by a signal" \
	bash -c "! grep -E 'terminated by signal|server process .* was terminated|was terminated by exception' '$server_log'"
check "the postmaster is still up" \
	as_postgres "$PG_BINDIR/pg_ctl" -D "$WORK/data" status >/dev/null
# Otherwise the run proves nothing about the foreign tables.
check "its queries reached the API through the foreign tables" \
	bash -c "[[ '$api_counts' =~ status=([0-9]+) ]] && [ \"\${BASH_REMATCH[1]}\" -gt 0 ]"
if [ "$failed" -ne 0 ]; then
	log "server log lines about terminated processes:"
	grep -E -B2 -A8 'terminated by signal|was terminated' "$server_log" | head -n 60 >&2 || true
fi
echo "sqlsmith: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
