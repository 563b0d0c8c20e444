#!/usr/bin/env bash
# test/checks/tls.sh: the extension against the API simulator over HTTPS with
# a certificate from a throwaway CA.  Checks that a certificate nobody vouches
# for is refused (08001, with a hint naming ca_file), that ca_file makes it
# trusted, that ssl_verify 'false' skips the check, that a certificate the
# CA signed for another host name is refused, and that an http:// base URL
# pointed at the HTTPS port fails cleanly.  The private key only goes
# through psql -v.  Prints "tls: N passed, M failed"; non-zero on failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"


build_and_install
start_services

log "making a throwaway CA and a certificate for 127.0.0.1"
tls="$WORK/tls"
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=opsmig test CA" \
	-keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/ext.cnf"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
	-CAcreateserial -days 2 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
# The same CA vouches for another name only: the host-name check must refuse it.
openssl req -newkey rsa:2048 -nodes -subj "/CN=other.example" \
	-keyout "$tls/other.key" -out "$tls/other.csr" 2>/dev/null
printf 'subjectAltName=DNS:other.example\n' >"$tls/other.cnf"
openssl x509 -req -in "$tls/other.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
	-CAcreateserial -days 2 -extfile "$tls/other.cnf" -out "$tls/other.pem" 2>/dev/null
chmod 755 "$tls"
chmod 644 "$tls/ca.pem"		# the backend (user postgres) reads it

# start_tls_sim NAME CERT KEY: an HTTPS simulator; sets ${NAME}_port and ${NAME}_pid.
start_tls_sim() {
	python3 "$SIM" serve --host 127.0.0.1 --port 0 --port-file "$tls/$1.port" \
		--tls-cert "$2" --tls-key "$3" >"$tls/$1.log" 2>&1 &
	printf -v "${1}_pid" %s $!
	for _ in $(seq 1 100); do [ -s "$tls/$1.port" ] && break; sleep 0.1; done
	[ -s "$tls/$1.port" ] || { cat "$tls/$1.log" >&2; exit 1; }
	printf -v "${1}_port" %s "$(cat "$tls/$1.port")"
}
tls_pid= other_pid=
trap 'kill $tls_pid $other_pid 2>/dev/null || true; teardown' EXIT
start_tls_sim tls "$tls/server.pem" "$tls/server.key"
start_tls_sim other "$tls/other.pem" "$tls/other.key"
port=$tls_port

out=$(psql -X -v ON_ERROR_STOP=0 -v https_url="https://127.0.0.1:$port/api/public/v1.0" \
	-v http_url="http://127.0.0.1:$port/api/public/v1.0" -v ca="$tls/ca.pem" \
	-v other_url="https://127.0.0.1:$other_port/api/public/v1.0" \
	-v pk="$SIM_PRIVATE_KEY" 2>&1 <<'SQL'
\set VERBOSITY default
SET log_min_messages = debug5;
CREATE EXTENSION opsmig_fdw;
CREATE SERVER tls_default FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'https_url', max_retries '0');
CREATE SERVER tls_ca FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'https_url', ca_file :'ca');
CREATE SERVER tls_off FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'https_url', ssl_verify 'false');
CREATE SERVER tls_other FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'other_url', ca_file :'ca', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_other OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE FOREIGN TABLE l_other (org_id text, status text) SERVER tls_other;
CREATE SERVER tls_plain FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'http_url', max_retries '0', request_timeout '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_default OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_ca OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_off OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_plain OPTIONS (public_key 'opsmigtest', private_key :'pk');
CREATE FOREIGN TABLE l_default (org_id text, status text) SERVER tls_default;
CREATE FOREIGN TABLE l_ca (org_id text, status text) SERVER tls_ca;
CREATE FOREIGN TABLE l_off (org_id text, status text) SERVER tls_off;
CREATE FOREIGN TABLE l_plain (org_id text, status text) SERVER tls_plain;
SELECT 'default:' || status FROM l_default WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo default_state=:LAST_ERROR_SQLSTATE
SELECT 'ca:' || status FROM l_ca WHERE org_id = '5e2211c17a3e5a48f5000001';
SELECT 'ca-scan:' || count(*) FROM l_ca;
SELECT 'off:' || status FROM l_off WHERE org_id = '5e2211c17a3e5a48f5000001';
SELECT 'other:' || status FROM l_other WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo other_state=:LAST_ERROR_SQLSTATE
SELECT 'plain:' || status FROM l_plain WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo plain_state=:LAST_ERROR_SQLSTATE
SQL
)
echo "$out" | sed 's/^/    /'
printf '%s\n' "$out" >"$WORK/tls-check.out"

check "an unknown CA is refused with 08001" grep -q '^default_state=08001$' <<<"$out"
check "the refusal's hint names ca_file" grep -q 'set ca_file of server "tls_default"' <<<"$out"
check "ca_file makes the certificate trusted" grep -q 'ca:SYNCED' <<<"$out"
check "a full scan over HTTPS with ca_file" grep -q 'ca-scan:4' <<<"$out"
check "ssl_verify false skips the check" grep -q 'off:SYNCED' <<<"$out"
check "a certificate from the trusted CA for another host name is refused with 08001" \
	grep -q '^other_state=08001$' <<<"$out"
check "the refusal's detail says the name does not match" \
	grep -q "subject name matches target host name '127.0.0.1'" <<<"$out"
check "its hint is about the host name in base_url, not ca_file (ca_file is set)" \
	grep -q 'not issued for the host name in base_url of server "tls_other"' <<<"$out"
check "http:// to an HTTPS port fails with an SQLSTATE, not a crash" \
	grep -Eq '^plain_state=(08001|08006|HV00M|HV000)$' <<<"$out"
check "no private key in the psql output, the server log or the simulators' logs" \
	secret_scan "tls secret scan" "$WORK/tls-check.out" "$WORK/data/postgres.log" "$tls/tls.log" "$tls/other.log"

echo "tls: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
