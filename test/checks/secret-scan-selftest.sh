#!/usr/bin/env bash
# test/checks/secret-scan-selftest.sh: the secret scan (secret_scan in test/lib.sh)
# must fail on what proves nothing, or it passes whatever the code does: a
# missing or empty log, an output directory nobody wrote to, and a file that
# holds any one of the suite's private keys.  It must pass a clean file.
# Prints "secret-scan selftest: N passed, M failed"; exit 1 on failure.
set -uo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "$0")/../lib.sh"
d=$(mktemp -d /tmp/opsmig-scan-selftest.XXXXXX)
trap 'rm -rf "$d"' EXIT
passed=0 failed=0
expect() {	# expect pass|fail WHAT PATH...
	local want=$1 what=$2 got=pass
	shift 2
	secret_scan "selftest: $what" "$@" >/dev/null 2>&1 || got=fail
	if [ "$got" = "$want" ]; then passed=$((passed + 1))
	else failed=$((failed + 1)); log "FAIL: secret_scan should $want on $what, but did $got"; fi
}
mkdir "$d/empty-dir" "$d/dir-of-empties" "$d/clean-dir"
: >"$d/empty.log"; : >"$d/dir-of-empties/a.out"
echo "no secret here" >"$d/clean.log"; echo "no secret here" >"$d/clean-dir/a.out"
expect fail "a missing file" "$d/missing.log"
expect fail "an empty file" "$d/empty.log"
expect fail "an empty directory" "$d/empty-dir"
expect fail "a directory of empty files" "$d/dir-of-empties"
expect fail "no path at all"
expect pass "a clean file and directory" "$d/clean.log" "$d/clean-dir"
for k in "${SUITE_PRIVATE_KEYS[@]}"; do
	mkdir -p "$d/leak"; printf 'x %s y\n' "$k" >"$d/leak/a.out"
	expect fail "a key (${k%%-*}-...) in a file of a directory" "$d/clean.log" "$d/leak"
done
EXTRA_SECRETS="extra-SECRET-1 extra-SECRET-2"
echo "x extra-SECRET-2 y" >"$d/leak/a.out"
expect fail "a word of EXTRA_SECRETS" "$d/leak"
unset EXTRA_SECRETS
echo "secret-scan selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
