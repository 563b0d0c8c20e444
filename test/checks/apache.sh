#!/usr/bin/env bash
# Interoperability check against a real HTTP Digest server that is not our
# Python simulator: Apache httpd with mod_auth_digest.
#
# Installs apache2 and apache2-utils with apt if missing; writes a throwaway
# Apache configuration in a temp dir (own ServerRoot, PidFile, logs, Listen on
# a free 127.0.0.1 port; the system apache2 service and /etc/apache2 are never
# touched) that serves, under AuthType Digest / realm "MMS Public API" /
# Require valid-user, a static file at
#   /api/public/v1.0/orgs/5e2211c17a3e5a48f5497de3/liveExport/migrationLink/status
# containing {"status":"SYNCED"} as application/json.  Then builds and
# installs the extension (test/lib.sh), starts a throwaway cluster (plus the
# simulator, unused here) and checks in psql that:
#   - a SELECT through the FDW returns SYNCED;
#   - Apache's access log shows the digest handshake: 401, then 200;
#   - a second query in the same session reuses the nonce (same nonce,
#     nc incremented, no further 401);
#   - a wrong private key fails with SQLSTATE 28000;
#   - the private key reaches no psql output and no log line.
# Prints "apache: N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ORG=5e2211c17a3e5a48f5497de3
REALM="MMS Public API"
AP_USER=opsmigtest
# A throwaway private key for this run only (UUID-shaped, like Ops Manager's).
AP_KEY=$(cat /proc/sys/kernel/random/uuid)
AP_BAD_KEY=$(cat /proc/sys/kernel/random/uuid)

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'ok   - %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL - %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# --- Apache: install if missing -------------------------------------------
pkg_installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if ! pkg_installed apache2 || ! pkg_installed apache2-utils; then
	log "installing apache2 and apache2-utils with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends apache2 apache2-utils >/dev/null
fi
HTTPD=$(command -v apache2 || echo /usr/sbin/apache2)
MODDIR=/usr/lib/apache2/modules
if [ ! -x "$HTTPD" ] || [ ! -d "$MODDIR" ]; then log "apache2 not found"; exit 1; fi

# --- extension, cluster (and the simulator, which this check ignores) -------
build_and_install
start_services

# --- Apache: throwaway configuration ----------------------------------------
AP=$(mktemp -d /tmp/opsmig_apache.XXXXXX)
AP_PID=
stop_apache() {
	if [ -n "$AP_PID" ] && kill -0 "$AP_PID" 2>/dev/null; then
		kill -TERM "$AP_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$AP_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$AP_PID" 2>/dev/null || true
		wait "$AP_PID" 2>/dev/null || true
	fi
	AP_PID=
	[ -n "$AP" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$AP"
	return 0
}
# lib.sh's teardown (cluster + simulator) keeps its EXIT trap; Apache goes first.
cleanup_all() {
	local rc=$?
	stop_apache
	(exit $rc)
	teardown
}
trap cleanup_all EXIT

chmod 755 "$AP"
mkdir -p "$AP/run" "$AP/logs" "$AP/htdocs/api/public/v1.0/orgs/$ORG/liveExport/migrationLink"
printf '{"status":"SYNCED"}' >"$AP/htdocs/api/public/v1.0/orgs/$ORG/liveExport/migrationLink/status"
mkdir -p "$AP/htdocs/short"
cp -a "$AP/htdocs/api" "$AP/htdocs/short/"
chmod -R a+rX "$AP/htdocs"

# htdigest reads the password from the terminal, or from stdin when there is
# none (setsid): the key goes through a pipe, never onto a command line.
printf '%s\n%s\n' "$AP_KEY" "$AP_KEY" |
	setsid htdigest -c "$AP/htdigest" "$REALM" "$AP_USER" >/dev/null 2>&1 || true
if ! grep -q "^$AP_USER:$REALM:[0-9a-f]\{32\}\$" "$AP/htdigest" 2>/dev/null; then
	# Same format, computed directly: user:realm:MD5(user:realm:password).
	printf '%s:%s:%s\n' "$AP_USER" "$REALM" \
		"$(printf '%s:%s:%s' "$AP_USER" "$REALM" "$AP_KEY" | md5sum | cut -d' ' -f1)" >"$AP/htdigest"
fi

RUN_AS=
if [ "$(id -u)" -eq 0 ]; then
	RUN_AS=www-data
	id -u "$RUN_AS" >/dev/null 2>&1 || RUN_AS=nobody
	chgrp "$(id -gn "$RUN_AS")" "$AP/htdigest"
fi
chmod 640 "$AP/htdigest"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_conf() {
	cat >"$AP/httpd.conf" <<EOF
ServerRoot "$AP"
ServerName 127.0.0.1
Listen 127.0.0.1:$AP_PORT
PidFile "$AP/run/httpd.pid"
DefaultRuntimeDir "$AP/run"
ErrorLog "$AP/logs/error.log"
LogLevel warn auth_digest:info
$( [ -n "$RUN_AS" ] && printf 'User %s\nGroup %s\n' "$RUN_AS" "$(id -gn "$RUN_AS")" )

LoadModule mpm_event_module   $MODDIR/mod_mpm_event.so
LoadModule authn_core_module  $MODDIR/mod_authn_core.so
LoadModule authn_file_module  $MODDIR/mod_authn_file.so
LoadModule authz_core_module  $MODDIR/mod_authz_core.so
LoadModule authz_user_module  $MODDIR/mod_authz_user.so
LoadModule auth_digest_module $MODDIR/mod_auth_digest.so
LoadModule mime_module        $MODDIR/mod_mime.so
LoadModule setenvif_module    $MODDIR/mod_setenvif.so

StartServers 1
ServerLimit 2
ThreadsPerChild 4
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 100
TypesConfig /dev/null
ServerTokens Prod

# Log the digest nonce and nc the client sent (never the response hash), the
# client port, the connection's keep-alive request count and the challenge.
SetEnvIf Authorization "[ ,]nonce=\"([^\"]+)\"" DIGEST_NONCE=\$1
SetEnvIf Authorization "[ ,]nc=([0-9a-fA-F]+)" DIGEST_NC=\$1
LogFormat "%>s\t%m\t%U\t%{remote}p\t%k\t%{DIGEST_NC}e\t%{DIGEST_NONCE}e\t%u\t%{WWW-Authenticate}o" opsmig
CustomLog "$AP/logs/access.log" opsmig

DocumentRoot "$AP/htdocs"
<Directory />
	Options None
	AllowOverride None
	Require all denied
</Directory>
<Directory "$AP/htdocs">
	Options None
	AllowOverride None
	AuthType Digest
	AuthName "$REALM"
	AuthDigestProvider file
	AuthUserFile "$AP/htdigest"
	# Refuse a replayed or out-of-order nonce count (off by default).
	AuthDigestNcCheck On
	Require valid-user
</Directory>
# Same files under /short/, where a nonce expires after 1 second: the
# server-side expiry of FACTS.md ("401 with stale=true on a request that
# already carried credentials, retry once with a fresh challenge").
<Directory "$AP/htdocs/short">
	AuthDigestNonceLifetime 1
</Directory>
<LocationMatch "^(/short)?/api/public/v1\.0/">
	ForceType application/json
</LocationMatch>
EOF
}

start_apache() {
	local try
	for try in 1 2 3 4 5; do
		AP_PORT=$(free_port)
		write_conf
		"$HTTPD" -t -f "$AP/httpd.conf" >"$AP/logs/configtest.log" 2>&1 ||
			{ cat "$AP/logs/configtest.log" >&2; return 1; }
		"$HTTPD" -f "$AP/httpd.conf" -DFOREGROUND >>"$AP/logs/stdout.log" 2>&1 &
		AP_PID=$!
		for _ in $(seq 1 100); do
			kill -0 "$AP_PID" 2>/dev/null || break
			if (exec 3<>"/dev/tcp/127.0.0.1/$AP_PORT") 2>/dev/null; then
				return 0
			fi
			sleep 0.1
		done
		wait "$AP_PID" 2>/dev/null || true
		AP_PID=
		log "apache did not start on port $AP_PORT (try $try)"
	done
	cat "$AP/logs/error.log" "$AP/logs/stdout.log" >&2 2>/dev/null || true
	return 1
}

log "starting Apache httpd ($("$HTTPD" -v | sed -n 's/^Server version: //p')) in $AP"
start_apache
AP_URL="http://127.0.0.1:$AP_PORT"
ACCESS_LOG="$AP/logs/access.log"
STATUS_PATH="/api/public/v1.0/orgs/$ORG/liveExport/migrationLink/status"
log "Apache listens on $AP_URL (pid $AP_PID)"

# --- control: Apache really demands digest auth ------------------------------
# Plain request without credentials: must be 401 with a Digest challenge.
challenge=$(python3 - "$AP_URL$STATUS_PATH" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    print("status=%d" % r.status)
except urllib.error.HTTPError as e:
    print("status=%d" % e.code)
    print("www-authenticate=%s" % e.headers.get("WWW-Authenticate", ""))
PY
)
printf '%s\n' "$challenge" | sed 's/^/    control: /'
check "Apache answers an unauthenticated GET with 401 and a Digest challenge, realm \"$REALM\", qop auth" \
	grep -q "^www-authenticate=Digest realm=\"$REALM\".*qop=\"auth\"" <<<"$challenge"

# Apache writes an access log line after it has sent the response, so a
# client may see the answer before the line exists: wait until the log has
# not grown for 300 ms (at most 5 s) before counting its lines.
cat >"$AP/mark.sh" <<'EOF'
#!/usr/bin/env bash
# mark.sh ACCESS_LOG [OUT]: settled line count of ACCESS_LOG, to OUT or stdout.
prev=-1 same=0
for _ in $(seq 1 50); do
	n=$(wc -l <"$1")
	if [ "$n" = "$prev" ]; then same=$((same + 1)); [ $same -ge 3 ] && break; else same=0; fi
	prev=$n
	sleep 0.1
done
if [ -n "${2:-}" ]; then echo "$n" >"$2"; else echo "$n"; fi
EOF
chmod 755 "$AP/mark.sh"

# nonce-expired.py ACCESS_LOG LIFETIME_S OUT: waits (at most 5 s) until the
# nonce of the access log's last authenticated line has outlived LIFETIME_S by
# Apache's own clock.  mod_auth_digest's nonce starts with the base64 of the
# apr_time_t (microseconds, host byte order) it was issued at, so this waits
# for that condition, not for a guessed number of seconds.  Writes "expired"
# or the reason it could not tell to OUT.
cat >"$AP/nonce-expired.py" <<'EOF'
import base64, struct, sys, time
log, lifetime, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
fields = [l.rstrip("\n").split("\t") for l in open(log)]
nonces = [f[6] for f in fields if len(f) > 6 and f[6] not in ("-", "")]
try:
    issued = struct.unpack("<q", base64.b64decode(nonces[-1][:12])[:8])[0] / 1e6
except (IndexError, ValueError, struct.error) as e:
    open(out, "w").write(f"cannot read the nonce's time: {e!r}\n")
    sys.exit(1)
deadline = time.time() + 5
while time.time() <= issued + lifetime + 0.05 and time.time() < deadline:
    time.sleep(0.05)
open(out, "w").write("expired\n" if time.time() > issued + lifetime else "not expired after 5 s\n")
EOF
lines() { "$AP/mark.sh" "$ACCESS_LOG"; }
# log_slice FROM TO: access log lines FROM+1..TO (nothing when TO <= FROM)
log_slice() { [ "$2" -gt "$1" ] || return 0; sed -n "$(($1 + 1)),$2p" "$ACCESS_LOG"; }
show_slice() {
	log_slice "$1" "$2" | awk -F'\t' '{
		stale = "";
		if ($9 ~ /stale=/) { stale = $9; sub(/.*stale=/, "", stale); sub(/[,; ].*/, "", stale);
			stale = " challenge-stale=" stale }
		else if ($9 ~ /^Digest/) stale = " challenge-stale=(absent)";
		printf "    %s %s %s  client-port=%s keepalive#=%s nc=%s nonce=%s user=%s%s\n",
			$1, $2, $3, $4, $5, ($6 == "-" ? "-" : $6), ($7 == "-" ? "-" : substr($7, 1, 16) "..."), $8, stale }'
}

# --- the FDW against Apache ---------------------------------------------------
export AP_MARKS="$AP/marks"
mkdir -p "$AP_MARKS"
lines >"$AP_MARKS/m0"
echo "access log, control request:"
show_slice 0 "$(cat "$AP_MARKS/m0")"
log "psql session 1: right key, three queries"
out1="$AP/psql1.out"
rc1=0
psql -X -v ON_ERROR_STOP=1 -v base_url="$AP_URL/api/public/v1.0" -v private_key="$AP_KEY" \
	--echo-all >"$out1" 2>&1 <<'SQL' || rc1=$?
SET log_min_messages = debug5;
CREATE EXTENSION opsmig_fdw;
CREATE SERVER apache FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER apache
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links (org_id text, status text) SERVER apache;
SET client_min_messages = debug1;
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/q1.before"
SELECT org_id, status FROM links WHERE org_id = '5e2211c17a3e5a48f5497de3';
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/q1.after"
SELECT org_id, status FROM links WHERE org_id = '5e2211c17a3e5a48f5497de3';
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/q2.after"
SELECT org_id, status FROM links WHERE org_id = '5e2211c17a3e5a48f5497de3';
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/q3.after"
RESET client_min_messages;
SQL
echo "--- psql session 1 (exit $rc1) ---"
cat "$out1"
echo "---"
check "psql session 1 ran without error" test "$rc1" -eq 0
nsynced=$(grep -cE "^ *$ORG +\| SYNCED *\$" "$out1" || true)
check "SELECT ... WHERE org_id = '$ORG' returns SYNCED from Apache (3 queries, got $nsynced rows)" \
	test "$nsynced" -eq 3

q1b=$(cat "$AP_MARKS/q1.before" 2>/dev/null || echo 0)
q1a=$(cat "$AP_MARKS/q1.after" 2>/dev/null || echo 0)
q2a=$(cat "$AP_MARKS/q2.after" 2>/dev/null || echo 0)
q3a=$(cat "$AP_MARKS/q3.after" 2>/dev/null || echo 0)
m0=$(cat "$AP_MARKS/m0")
echo "access log, before the first query (CREATE ...; expected: nothing):"
show_slice "$m0" "$q1b"
echo "access log, query 1:"
show_slice "$q1b" "$q1a"
echo "access log, query 2 (same session):"
show_slice "$q1a" "$q2a"
echo "access log, query 3 (same session):"
show_slice "$q2a" "$q3a"

codes() { log_slice "$1" "$2" | cut -f1 | paste -sd' '; }
field() { log_slice "$1" "$2" | sed -n "${3}p" | cut -f"$4"; }
check "no request before the first query" test "$q1b" -eq "$m0"
c1=$(codes "$q1b" "$q1a")
check "query 1: digest challenge then success, access log codes \"401 200\" (got \"$c1\")" test "$c1" = "401 200"
check "query 1: the 401 request carried no Authorization, the 200 one nc=00000001 as $AP_USER" \
	test "$(field "$q1b" "$q1a" 1 6)|$(field "$q1b" "$q1a" 2 6)|$(field "$q1b" "$q1a" 2 8)" = "-|00000001|$AP_USER"
nonce1=$(field "$q1b" "$q1a" 2 7)
c2=$(codes "$q1a" "$q2a")
c3=$(codes "$q2a" "$q3a")
check "query 2: no new challenge, access log codes \"200\" (got \"$c2\")" test "$c2" = "200"
check "query 3: no new challenge, access log codes \"200\" (got \"$c3\")" test "$c3" = "200"
check "queries 2 and 3 reuse query 1's nonce with nc=00000002 and nc=00000003" \
	test "$(field "$q1a" "$q2a" 1 7)|$(field "$q1a" "$q2a" 1 6)|$(field "$q2a" "$q3a" 1 7)|$(field "$q2a" "$q3a" 1 6)" \
	= "$nonce1|00000002|$nonce1|00000003"
p1=$(field "$q1b" "$q1a" 1 4); p2=$(field "$q1b" "$q1a" 2 4)
p3=$(field "$q1a" "$q2a" 1 4); p4=$(field "$q2a" "$q3a" 1 4)
check "all four requests of the session used one TCP connection (client ports $p1 $p2 $p3 $p4)" \
	test "$p1" = "$p2" -a "$p2" = "$p3" -a "$p3" = "$p4"
no_reauth() { ! grep -q "fresh digest challenge" "$1"; }
check "no 'retrying with a fresh digest challenge' in the session (nonce accepted as is)" no_reauth "$out1"

# --- wrong private key -------------------------------------------------------
log "psql session 2: wrong key"
lines >"$AP_MARKS/b0"
out2="$AP/psql2.out"
rc2=0
psql -X -v ON_ERROR_STOP=0 -v base_url="$AP_URL/api/public/v1.0" -v private_key="$AP_BAD_KEY" \
	--echo-all >"$out2" 2>&1 <<'SQL' || rc2=$?
SET log_min_messages = debug5;
CREATE SERVER apache_badkey FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER apache_badkey
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_badkey (org_id text, status text) SERVER apache_badkey;
\set VERBOSITY verbose
SELECT org_id, status FROM links_badkey WHERE org_id = '5e2211c17a3e5a48f5497de3';
\echo SQLSTATE=:SQLSTATE
SQL
b1=$(lines)
echo "--- psql session 2 (exit $rc2) ---"
cat "$out2"
echo "---"
echo "access log, wrong-key query:"
show_slice "$(cat "$AP_MARKS/b0")" "$b1"
check "wrong private key fails with SQLSTATE 28000" grep -qx 'SQLSTATE=28000' "$out2"
cb=$(codes "$(cat "$AP_MARKS/b0")" "$b1")
check "wrong key: challenge, then the digest answer refused, access log codes \"401 401\" (got \"$cb\")" \
	test "$cb" = "401 401"

# --- nonce expired by the server --------------------------------------------------
log "psql session 3: right key, the server expires the nonce between two queries"
out3="$AP/psql3.out"
rc3=0
psql -X -v ON_ERROR_STOP=1 -v base_url="$AP_URL/short/api/public/v1.0" -v private_key="$AP_KEY" \
	--echo-all >"$out3" 2>&1 <<'SQL' || rc3=$?
SET log_min_messages = debug5;
CREATE SERVER apache_short FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER apache_short
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_short (org_id text, status text) SERVER apache_short;
SET client_min_messages = debug1;
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/s1.before"
SELECT org_id, status FROM links_short WHERE org_id = '5e2211c17a3e5a48f5497de3';
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/s1.after"
\! python3 "$AP_MARKS/../nonce-expired.py" "$AP_MARKS/../logs/access.log" 1 "$AP_MARKS/s1.expired"
SELECT org_id, status FROM links_short WHERE org_id = '5e2211c17a3e5a48f5497de3';
\! "$AP_MARKS/../mark.sh" "$AP_MARKS/../logs/access.log" "$AP_MARKS/s2.after"
RESET client_min_messages;
SQL
echo "--- psql session 3 (exit $rc3) ---"
cat "$out3"
echo "---"
s1b=$(cat "$AP_MARKS/s1.before" 2>/dev/null || echo 0)
s1a=$(cat "$AP_MARKS/s1.after" 2>/dev/null || echo 0)
s2a=$(cat "$AP_MARKS/s2.after" 2>/dev/null || echo 0)
echo "access log, /short/ query 1:"
show_slice "$s1b" "$s1a"
echo "access log, /short/ query 2, after the nonce expired (lifetime 1 s): $(cat "$AP_MARKS/s1.expired")"
show_slice "$s1a" "$s2a"
nshort=$(grep -cE "^ *$ORG +\| SYNCED *\$" "$out3" || true)
check "expired nonce: both queries return SYNCED (got $nshort rows, psql exit $rc3)" \
	test "$nshort" -eq 2 -a "$rc3" -eq 0
check "expired nonce: waited until Apache's nonce outlived its 1 s lifetime" \
	grep -qx expired "$AP_MARKS/s1.expired"
cs1=$(codes "$s1b" "$s1a")
cs2=$(codes "$s1a" "$s2a")
check "expired nonce: query 1 codes \"401 200\" (got \"$cs1\")" test "$cs1" = "401 200"
snonce1=$(field "$s1b" "$s1a" 2 7)
check "expired nonce: query 2 sent the old nonce (nc=00000002), got 401, then 200 with a new nonce (nc=00000001); codes \"401 200\" (got \"$cs2\")" \
	test "$cs2|$(field "$s1a" "$s2a" 1 7)|$(field "$s1a" "$s2a" 1 6)|$(field "$s1a" "$s2a" 2 6)" = "401 200|$snonce1|00000002|00000001" -a \
	"$(field "$s1a" "$s2a" 2 7)" != "$snonce1"
if grep -q 'fresh digest challenge' "$out3"; then
	echo "    (the retry after the stale 401 was made by opsmig_fdw's own once-only reauth: see its DEBUG line)"
else
	echo "    (the retry after the stale 401 was made inside libcurl; opsmig_fdw logged no reauth)"
fi

# --- secrets -------------------------------------------------------------------
# This run's two keys as well as the suite's; every file must be readable.
scan_apache_secrets() { EXTRA_SECRETS="$AP_KEY $AP_BAD_KEY" secret_scan "apache secret scan" "$@"; }
check "neither private key appears in psql output, the PostgreSQL log or Apache's logs (all must be readable)" \
	scan_apache_secrets "$out1" "$out2" "$out3" "$WORK/data/postgres.log" "$ACCESS_LOG" "$AP/logs/error.log"

if [ -s "$AP/logs/error.log" ]; then
	echo "Apache error log (auth_digest at info):"
	sed 's/^/    /' "$AP/logs/error.log"
fi

echo "apache: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
