#!/usr/bin/env bash
# test/checks/resolver.sh: cancel while libcurl resolves a host name.  The
# tests elsewhere use 127.0.0.1 and resolve nothing, so they cannot see that
# removing a transfer which is still resolving joined libcurl's resolver
# thread, and so blocked the backend until getaddrinfo() gave up.
#
# How: as root, in a new mount and network namespace (unshare), a UDP stub
# on 127.0.0.1:53 that reads DNS queries and never answers, a resolv.conf
# naming it bind-mounted over /etc/resolv.conf, and a throwaway cluster
# (test/lib.sh) started inside.  A server whose base_url is on a host name
# then hangs in the resolver; statement_timeout '200ms' must end the
# statement within a second (57014), three times (a lookup, a scan, an
# INSERT whose POST never left, so no "may have created" warning), and the
# backend must still answer.  Nothing leaves the namespace.  Prints "resolver: N passed,
# M failed"; non-zero on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

# getaddrinfo() waits this long for the stub before it gives up: the time a
# backend that joins the resolver thread is blocked.
RESOLVER_WAIT_S=4
LIMIT_MS=1000

if [ -z "${OPSMIG_IN_RESOLVER_NS:-}" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "resolver check: needs root (unshare --mount --net); run it as root or with sudo"
		exit 1
	fi
	build_and_install
	log "entering a new mount and network namespace"
	exec unshare --mount --net env OPSMIG_IN_RESOLVER_NS=1 bash "$0" "$@"
fi


ip link set lo up
start_services

log "starting a DNS stub on 127.0.0.1:53 that never answers"
python3 - "$WORK/dns.ready" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(1.0)
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 300      # bounded, whatever happens to the check
while time.monotonic() < deadline:
	try:
		s.recvfrom(4096)                # read the query, say nothing
	except socket.timeout:
		pass
PY
dns_pid=$!
trap 'kill $dns_pid 2>/dev/null || true; teardown' EXIT
for _ in $(seq 1 100); do [ -e "$WORK/dns.ready" ] && break; sleep 0.1; done
[ -e "$WORK/dns.ready" ] || { log "the DNS stub did not start"; exit 1; }

printf 'nameserver 127.0.0.1\noptions timeout:%d attempts:1\n' "$RESOLVER_WAIT_S" >"$WORK/resolv.conf"
chmod 644 "$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf

host=om.opsmig-resolver.test
check "the host name hangs in the resolver (getent waits for the stub)" \
	bash -c "! timeout 1 getent hosts $host >/dev/null"

port=${SIM_URL##*:}
out=$(psql -X -v ON_ERROR_STOP=0 -v url="http://$host:$port/api/public/v1.0" \
	-v pk="$SIM_PRIVATE_KEY" 2>&1 <<'SQL'
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om_dns FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'url', connect_timeout '60', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_dns OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE FOREIGN TABLE l_dns (org_id text, status text, link_token text) SERVER om_dns;
SELECT pg_backend_pid() AS pid0 \gset
SET statement_timeout = '200ms';
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM l_dns WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo first_state=:LAST_ERROR_SQLSTATE
SELECT 'first_ms=' || round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) FROM l_dns;
\echo second_state=:LAST_ERROR_SQLSTATE
SELECT 'second_ms=' || round(extract(epoch FROM clock_timestamp() - :'t1') * 1000);
SELECT clock_timestamp() AS t2 \gset
INSERT INTO l_dns (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
\echo insert_state=:LAST_ERROR_SQLSTATE
SELECT 'insert_ms=' || round(extract(epoch FROM clock_timestamp() - :'t2') * 1000);
RESET statement_timeout;
SELECT 'alive=' || (pg_backend_pid() = :pid0);
SQL
)
echo "$out"
ms() { echo "$out" | sed -n "s/^ *$1_ms=\([0-9]*\).*/\1/p"; }
first=$(ms first) second=$(ms second)
log "statement ended ${first:-?} ms and ${second:-?} ms after it began (statement_timeout 200 ms; the resolver waits ${RESOLVER_WAIT_S} s)"
check "statement_timeout during a lookup gives 57014" grep -q '^first_state=57014$' <<<"$out"
check "it ends within $LIMIT_MS ms" test "${first:-99999}" -lt "$LIMIT_MS"
check "a scan cancelled during a lookup gives 57014 too" grep -q '^second_state=57014$' <<<"$out"
check "and ends within $LIMIT_MS ms" test "${second:-99999}" -lt "$LIMIT_MS"
check "an INSERT cancelled during a lookup gives 57014" grep -q '^insert_state=57014$' <<<"$out"
check "and ends within $LIMIT_MS ms" test "$(ms insert)" -lt "$LIMIT_MS"
# The POST never left: no warning that a link may have been created.
check "and warns of no change (nothing was sent)" bash -c '! grep -q "may have created" <<<"$0"' "$out"
check "the same backend still answers" grep -q '^ *alive=true$' <<<"$out"
check "no private key in the output" bash -c '! grep -qF -- "$SIM_PRIVATE_KEY" <<<"$0"' "$out"

echo "resolver: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
