#!/usr/bin/env bash
# test/tools/mutants.sh: planted defects that the test suite must catch.
#
# Each mutant is a one-line change to the C code of the kind that would hurt a
# user (a wrong SQLSTATE, a retried POST, a key in a log line...).  For each,
# one at a time, this copies the work tree's tracked files into a temp dir,
# makes that one change (a literal replacement that must match exactly once),
# and runs `bash test/run-tests.sh regress` there.  The suite must fail: the
# mutant is then "killed", and the failing tests are named.  A mutant that
# survives is a missing test.  Ends with
#   mutants: N killed, M survived, U unclear, K not applied (T s)
# and exits non-zero unless every mutant was applied and killed by a named
# test or check ("unclear": the run failed, but no test did, e.g. the build).
#
# Usage: bash test/tools/mutants.sh [NAME...]      (no NAME: all of them; --list lists them)
#        bash test/tools/mutants.sh --check        (each mutant still applies to the code:
#        seconds, run by `run-tests.sh regress` so a refactor cannot leave one behind)
# The mutants build and install into their own private PostgreSQL copy,
# OPSMIG_MUTANT_PG_ROOT (default /tmp/pgroot-mutants), never the system's or
# the developer's.  About 70 s a mutant on 2 cores: not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MUTANT_PG_ROOT=${OPSMIG_MUTANT_PG_ROOT:-/tmp/pgroot-mutants}

NAMES=() FILES=() OLDS=() NEWS=() WHYS=()
# mutant NAME FILE OLD NEW WHY: OLD must occur exactly once in FILE.
mutant() { NAMES+=("$1") FILES+=("$2") OLDS+=("$3") NEWS+=("$4") WHYS+=("$5"); }

mutant sqlstate-409-delete api_error.c \
	'ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;' \
	'ERRCODE_UNIQUE_VIOLATION;' \
	'a 409 on DELETE (migration running) reported as 23505, as if already linked'
mutant retry-after-ignored api_batch.c \
	'delay = Max(delay, Min(req->retry_after, RETRY_AFTER_MAX_S) * 1000.0);' \
	'delay = delay;' \
	"the server's Retry-After ignored: retries after the backoff alone"
mutant post-retried-on-5xx api_batch.c \
	'retryable = idempotent && code >= 500 && code != 501;' \
	'retryable = code >= 500 && code != 501;' \
	'POST and DELETE retried on a 5xx, when the API may have acted'
mutant changes-keep-cache cache.c \
	"$(printf 'if ((c = cache_if_any(conn)) == NULL)\n\t\treturn;\t\t\t\t\t/* nothing cached, nor any older scan to fear */')" \
	"$(printf 'if (true)\n\t\treturn;\t\t\t\t\t/* nothing cached, nor any older scan to fear */')" \
	'INSERT and DELETE leave the cached answer: the next SELECT shows the old state'
mutant duplicate-ids-asked-twice opsmig_fdw.c \
	'if ((i == 0 || strcmp(ids[i], ids[i - 1]) != 0) && parse_valid_org_id(ids[i]))' \
	'if (parse_valid_org_id(ids[i]))' \
	'IN (a, a): the same organization asked twice'
mutant envelope-code-ignored api_parse.c \
	'reply->code = (long) json_object_get_int64(status);' \
	'reply->code = http_code;' \
	"envelope=true: the envelope's status ignored, HTTP 200 believed"
mutant private-key-in-debug connection.c \
	'conn->server_name, conn->public_key);' \
	'conn->server_name, conn->private_key);' \
	'the private key printed in the DEBUG1 "new HTTP session" line'
mutant paging-stops-after-page-1 api_scan.c \
	'if (nresults >= ORGS_PER_PAGE && has_next)' \
	'if (false)' \
	'GET /orgs read one page only'
mutant rollback-warning-drops-a-change connection.c \
	'remote_changes = lappend(remote_changes, rc);' \
	'if (remote_changes == NIL) remote_changes = lappend(remote_changes, rc);' \
	'the rollback warning lists only the first remote change'
mutant stale-nonce-not-rechallenged api_batch.c \
	'if (code == 401 && req->challenges == 0 && !call->reauth_done)' \
	'if (false && code == 401 && req->challenges == 0 && !call->reauth_done)' \
	'an expired nonce (401 to a request with credentials) reported, not re-challenged'
mutant org-id-not-validated api_error.c \
	'if (!parse_valid_org_id(org_id))' \
	'if (false)' \
	'a malformed org id put into a URL'
mutant proxy-from-environment http.c \
	'curl_easy_setopt(e, CURLOPT_PROXY, o->proxy ? o->proxy : "");' \
	'if (o->proxy) curl_easy_setopt(e, CURLOPT_PROXY, o->proxy);' \
	'http_proxy/https_proxy/ALL_PROXY from the environment used'
mutant redirects-followed http.c \
	'curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);' \
	'curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);' \
	'redirects followed (credentials sent where the server points)'
mutant wrong-base-url-404-is-no-link api_batch.c \
	'if (code == 404 && !not_api &&' \
	'if (code == 404 &&' \
	'a 404 from a wrong base_url (not the API) read as "no link": every query empty'

# plant FILE OLD NEW: replace the one occurrence of OLD in FILE, or fail.
plant() {
	python3 - "$@" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) != 1:
    print(f"    the line to change occurs {text.count(old)} times in {path}", file=sys.stderr)
    sys.exit(1)
open(path, "w").write(text.replace(old, new))
EOF
}

if [ "${1:-}" = --check ]; then
	bad=0
	for i in "${!NAMES[@]}"; do
		copy=$(mktemp)
		{ cp "$ROOT/${FILES[$i]}" "$copy" && plant "$copy" "${OLDS[$i]}" "${NEWS[$i]}"; } ||
			{ echo "NOT APPLICABLE  ${NAMES[$i]} (${FILES[$i]}): update test/tools/mutants.sh"; bad=$((bad + 1)); }
		rm -f "$copy"
	done
	echo "mutants applicable: $(( ${#NAMES[@]} - bad )) passed, $bad failed"
	[ "$bad" -eq 0 ]
	exit
fi

if [ "${1:-}" = --list ]; then
	for i in "${!NAMES[@]}"; do printf '%-32s %-14s %s\n' "${NAMES[$i]}" "${FILES[$i]}" "${WHYS[$i]}"; done
	exit 0
fi
want() { [ $# -eq 0 ] && return 0; local n; for n in "${SELECTED[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }
SELECTED=("$@")
for n in "${SELECTED[@]}"; do
	case " ${NAMES[*]} " in *" $n "*) ;; *) echo "unknown mutant '$n' (--list lists them)" >&2; exit 2 ;; esac
done

TMP=$(mktemp -d /tmp/opsmig-mutants.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
killed=0 survived=0 unapplied=0 unclear=0
start=$(date +%s)
for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]}
	[ ${#SELECTED[@]} -eq 0 ] || want "$name" || continue
	tree="$TMP/$name"
	mkdir -p "$tree"
	# The tracked files as they are in the work tree (uncommitted edits included).
	(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$tree")
	if ! plant "$tree/${FILES[$i]}" "${OLDS[$i]}" "${NEWS[$i]}"; then
		echo "NOT APPLIED  $name (${FILES[$i]}): the code changed; update test/tools/mutants.sh"
		unapplied=$((unapplied + 1))
		rm -rf "$tree"
		continue
	fi
	t0=$(date +%s)
	logf="$TMP/$name.log"
	if (cd "$tree" && OPSMIG_PG_ROOT="$MUTANT_PG_ROOT" bash test/run-tests.sh regress) >"$logf" 2>&1; then
		echo "SURVIVED     $name: ${WHYS[$i]} ($(( $(date +%s) - t0 )) s)"
		survived=$((survived + 1))
	else
		# Which tests and checks caught it (pg_regress 15 and 16 print "test NAME
		# ... FAILED", 17 and on "not ok N - NAME").
		by=$(sed -n -e 's/^test \([a-z_0-9]*\) .*FAILED.*/\1/p' \
			-e 's/^not ok [0-9]* *[-+] \([a-z_0-9]*\) .*/\1/p' "$logf" | sort -u | paste -sd' ')
		for c in simtest readme expected-rules 'secret check' 'debug log check'; do
			grep -q "^$c: .* [1-9][0-9]* failed" "$logf" && by="$by, $c"
		done
		if [ -n "$by" ]; then
			echo "killed       $name by: $by ($(( $(date +%s) - t0 )) s)"
			killed=$((killed + 1))
		else
			# A failed build, a missing tool or a cluster that did not start fails
			# every mutant alike: that proves no test catches the defect.
			echo "UNCLEAR      $name: the run failed, but no test or check did (see below)"
			tail -n 15 "$logf" | sed 's/^/    /'
			unclear=$((unclear + 1))
		fi
	fi
	rm -rf "$tree"
done
echo "mutants: $killed killed, $survived survived, $unclear unclear, $unapplied not applied ($(( $(date +%s) - start )) s)"
[ "$survived" -eq 0 ] && [ "$unapplied" -eq 0 ] && [ "$unclear" -eq 0 ]
