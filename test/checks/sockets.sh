#!/usr/bin/env bash
# test/checks/sockets.sh: a socket-table overflow in the HTTP transport is one
# error, not the end of the session.  The table (http.c, HTTP_MAX_SOCKETS)
# is sized for all curl can ask, so no query fills it; this check builds a
# copy of the extension with a table of 4 sockets, loads it through
# dynamic_library_path, overflows it with 5 concurrent status calls, and then
# asks for one organization in the same session: that must work.  (Before,
# the overflow flag was never cleared, so every later query in the session
# failed with HV014 too.)  Prints "sockets: N passed, M
# failed"; non-zero on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"


build_and_install
TREE=$(mktemp -d /tmp/opsmig-sockets.XXXXXX)
chmod 755 "$TREE"				# the postgres user must read the library
eval "lib_$(declare -f teardown)"
teardown() { local rc=$?; rm -rf "$TREE"; (exit "$rc"); lib_teardown; }
trap teardown EXIT
tar -C "$ROOT" --exclude=./.git --exclude=./results --exclude=./test --exclude=./dist \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$TREE" -xf -
log "building opsmig_fdw with a socket table of 4 in $TREE"
make -C "$TREE" -s with_llvm=no COPT="-DHTTP_MAX_SOCKETS=4" >/dev/null

start_services --latency-ms 300
trap teardown EXIT
psql -X -q -v ON_ERROR_STOP=1 \
	-c "ALTER SYSTEM SET dynamic_library_path = '$TREE:\$libdir'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 50); do
	[ "$(psql -X -Atc 'SHOW dynamic_library_path')" = "$TREE:\$libdir" ] && break
	sleep 0.1
done

out=$(psql -X -v ON_ERROR_STOP=0 -v url="$SIM_URL/api/public/v1.0" -v pk="$SIM_PRIVATE_KEY" 2>&1 <<'SQL'
CREATE EXTENSION opsmig_fdw;
SELECT 'library=' || (regexp_match(pg_read_file('/proc/self/maps'), '\S*opsmig_fdw\.so'))[1];
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'url', max_concurrent_requests '8', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE FOREIGN TABLE l (org_id text, status text) SERVER om;
SELECT count(*) FROM l;
\echo overflow_state=:LAST_ERROR_SQLSTATE
SELECT 'after=' || status FROM l WHERE org_id = '5e2211c17a3e5a48f5000001';
SELECT 'again=' || status FROM l WHERE org_id = '5e2211c17a3e5a48f5000002';
SQL
)
echo "$out"
check "the backend runs the build with 4 sockets" grep -qF "library=$TREE/opsmig_fdw.so" <<<"$out"
check "5 requests in flight overflow it: HV014" grep -q '^overflow_state=HV014$' <<<"$out"
check "the next query in the session works" grep -q '^ *after=SYNCED$' <<<"$out"
check "and the one after it" grep -q '^ *again=NOT_SYNCED$' <<<"$out"

echo "sockets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
