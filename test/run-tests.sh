#!/usr/bin/env bash
# Runs every test of opsmig_fdw: installs what is missing (apt), builds and
# installs the extension, starts a throwaway cluster and the API simulator,
# runs the pg_regress suite (make installcheck), checks that the README's
# examples are in it and that the private key reached no output and no
# server log line; then fuzzes the reply parsers, runs the suite again under
# ASan/UBSan, checks TLS, runs the extension against Apache's digest auth, and builds,
# installs and smoke-tests the Debian package.  Every step tears down what
# it started.  Exits non-zero when anything fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

build_and_install
start_services --weak-key opsmigweak:weak-PRIVATE-5678

log "running pg_regress (make installcheck)"
rc=0
make -C "$ROOT" -s with_llvm=no installcheck || rc=$?
if [ $rc -ne 0 ] && [ -f "$ROOT/regression.diffs" ]; then
	log "regression.diffs (first 200 lines):"
	head -n 200 "$ROOT/regression.diffs" >&2
fi

log "checking that the README's tested examples are in the suite"
python3 "$ROOT/test/check-readme.py" || rc=1

log "checking that the private key appears in no output and no log line"
leaks=$(grep -rl -- "$SIM_PRIVATE_KEY" "$ROOT/results" "$WORK/data/postgres.log" 2>/dev/null || true)
if [ -n "$leaks" ]; then
	log "FAIL: the private key appears in: $leaks"
	rc=1
else
	echo "secret check: 1 passed, 0 failed"
fi

log "fuzzing the reply parsers (libFuzzer with ASan and UBSan, 10 s a target)"
bash "$ROOT/test/fuzz/run.sh" 10 || rc=1

log "running the whole pg_regress suite again under AddressSanitizer and UBSan"
bash "$ROOT/test/sanitize.sh" || rc=1

log "checking TLS: an unknown CA refused, ca_file trusted, ssl_verify off"
bash "$ROOT/test/tls-check.sh" >"${TMPDIR:-/tmp}/opsmig-tls-check.log" 2>&1 || {
	rc=1; tail -n 40 "${TMPDIR:-/tmp}/opsmig-tls-check.log" >&2; }
tail -n 1 "${TMPDIR:-/tmp}/opsmig-tls-check.log"

log "checking the extension against a real digest server (Apache mod_auth_digest)"
bash "$ROOT/test/apache-check.sh" >"${TMPDIR:-/tmp}/opsmig-apache-check.log" 2>&1 || {
	rc=1; tail -n 40 "${TMPDIR:-/tmp}/opsmig-apache-check.log" >&2; }
tail -n 1 "${TMPDIR:-/tmp}/opsmig-apache-check.log"

# Last, because it swaps the installed extension files for the package's
# while it runs (and puts them back).
log "building, installing and smoke-testing the Debian package"
bash "$ROOT/test/package.sh" || rc=1
exit $rc
