#!/usr/bin/env bash
# test/checks/sanitize.sh: runs the whole pg_regress suite of opsmig_fdw against a
# build of the extension compiled with AddressSanitizer and UBSan, and fails
# on any sanitizer report in the server log.  Prints one line per check and
# then "sanitize: N passed, M failed"; exits non-zero when any check fails.
#
# Why: the regression suite proves behaviour, not memory safety; a heap
# overrun or a use after free in the HTTP or API code may pass every test.
# Under ASan the first bad access aborts the backend with a report.
#
# How, without touching what others run concurrently:
#   * build_and_install (test/lib.sh) installs the normal build as usual:
#     the control file and SQL script come from there;
#   * the sanitizer build is made in a throwaway copy of the tree, never
#     installed; the cluster finds it first on dynamic_library_path (the
#     control file's module_pathname is a bare 'opsmig_fdw' for this);
#   * the postmaster starts with the sanitizer runtime in LD_PRELOAD (via
#     PG_EXTRA_ENV of start_services), because postgres itself is not
#     instrumented and ASan must be the first library loaded; a small
#     "initfirst" library, built here, makes ASan initialize before any
#     library constructor (asan_initfirst.c below says which hang that
#     avoids);
#   * pg_regress writes its results under the throwaway cluster's directory,
#     not into the tree's results/.
# KEEP_WORK=1 keeps the cluster directory and the sanitizer build.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/../lib.sh"

# PGXS compiles with PostgreSQL's own -fwrapv, under which signed overflow
# is defined, so UBSan does not check it here; the other UB checks (shifts,
# bounds, null, alignment, bool/enum loads...) stay.  The fuzzers check
# signed overflow in api_parse.c, built without -fwrapv.
SANITIZE_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g"

# ASAN_OPTIONS for the postmaster and its backends:
#   detect_leaks=0       PostgreSQL frees memory contexts wholesale and leaves
#                        the rest to process exit, by design: LeakSanitizer
#                        would report every backend.
#   abort_on_error=1     abort() after a report, so the postmaster logs the
#                        backend as "terminated by signal 6", restarts, and
#                        the suite fails loudly as well.
#   allocator_may_return_null=1  PostgreSQL checks malloc() for NULL and
#                        reports "out of memory"; ASan's default dies.
#   disable_coredump=1   a core with ASan's shadow memory is terabytes.
#   print_summary=1      the one-line SUMMARY that this script greps for.
# UBSAN_OPTIONS: print_stacktrace=1 for a usable report; UBSan recovers
# (gcc's default), so one run reports every UB it meets; the log check
# below is what fails the run.
ASAN_OPTS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:disable_coredump=1:print_summary=1"
UBSAN_OPTS="print_stacktrace=1:halt_on_error=0"

passed=0 failed=0
check() {					# check NAME OK|FAIL [detail]
	if [ "$2" = ok ]; then
		passed=$((passed + 1))
		echo "sanitize check: $1: ok${3:+ ($3)}"
	else
		failed=$((failed + 1))
		echo "sanitize check: $1: FAIL${3:+ ($3)}"
	fi
}

# The sanitizer build lives in a throwaway copy of the tree.  lib.sh's
# start_services installs `trap teardown EXIT`, replacing any trap of ours:
# wrap teardown itself (as lib_teardown) so the copy goes too, whenever
# and however the script ends.
ASAN_TREE=
cleanup_tree() { [ -n "${KEEP_WORK:-}" ] || [ -z "$ASAN_TREE" ] || rm -rf "$ASAN_TREE"; }
eval "lib_$(declare -f teardown)"
teardown() {
	local rc=$?
	cleanup_tree
	# lib_teardown reads and returns $?: hand it ours.  set +e first, or a
	# failing (exit) would end the trap before the cluster is stopped.
	set +e
	(exit "$rc")
	lib_teardown
}
trap teardown EXIT

build_and_install

# The copy: sources only, no objects of the normal build (make would take
# them as up to date), no results, no git.  Fresh each run, because PGXS
# does not track header dependencies.
ASAN_TREE=$(mktemp -d /tmp/opsmig-asan.XXXXXX)
chmod 755 "$ASAN_TREE"			# the postgres user must read the library
tar -C "$ROOT" --exclude=./.git --exclude=./results --exclude=./log \
	--exclude=./test --exclude=./dist --exclude='*.o' --exclude='*.so' \
	--exclude='*.bc' -cf - . | tar -C "$ASAN_TREE" -xf -
log "building opsmig_fdw with $SANITIZE_FLAGS in $ASAN_TREE"
# COPT reaches both compiling and linking in PGXS, so the library is linked
# against gcc's libasan and libubsan.
make -C "$ASAN_TREE" -s -j"$(nproc)" with_llvm=no COPT="$SANITIZE_FLAGS" >/dev/null
SO="$ASAN_TREE/opsmig_fdw.so"

# Preload exactly the runtimes the library was linked with.  (grep -c, not
# grep -q: an early exit would kill nm with SIGPIPE and fail the pipeline.)
ASAN_RT=$(ldd "$SO" | awk '/libasan\.so/ {print $3}')
UBSAN_RT=$(ldd "$SO" | awk '/libubsan\.so/ {print $3}')
probes=$(nm -D --undefined-only "$SO" | grep -c '__asan_report_' || true)
if [ -z "$ASAN_RT" ] || [ -z "$UBSAN_RT" ] || [ "$probes" -eq 0 ]; then
	log "$SO is not instrumented (libasan: '${ASAN_RT}', libubsan: '${UBSAN_RT}')"
	exit 1
fi

cat >"$ASAN_TREE/asan_initfirst.c" <<'EOF'
/*
 * asan_initfirst.c: preloaded after the sanitizer runtimes by
 * test/checks/sanitize.sh.  Linked with -z initfirst, its constructor runs before
 * every other library's, and its malloc() makes ASan initialize there,
 * with no lock held.
 *
 * Without it, ASan initializes inside the first malloc() it intercepts:
 * libgpg-error's constructor (postgres links it through LDAP and GnuTLS)
 * calls bindtextdomain(), which mallocs while holding glibc's gettext
 * lock; ASan's initialization calls dlerror(), which takes and releases
 * that same lock, leaving it broken, and postgres then hangs for good in
 * its own bindtextdomain() -- even "postgres -V", which pg_ctl runs first.
 */
#include <stdlib.h>

static void __attribute__((constructor))
asan_initfirst(void)
{
	void	   *volatile p = malloc(1);	/* volatile: not optimized away */

	free(p);
}
EOF
gcc -shared -fPIC -O1 -Wl,-z,initfirst -o "$ASAN_TREE/asan_initfirst.so" \
	"$ASAN_TREE/asan_initfirst.c"

export PG_EXTRA_ENV="LD_PRELOAD=$ASAN_RT:$UBSAN_RT:$ASAN_TREE/asan_initfirst.so ASAN_OPTIONS=$ASAN_OPTS UBSAN_OPTIONS=$UBSAN_OPTS"
start_services --weak-key "opsmigweak:$SIM_WEAK_PRIVATE_KEY"
LOGFILE="$WORK/data/postgres.log"

# dynamic_library_path is superuser-settable and reloadable: put the copy
# first for every backend, then wait until a new backend sees it.
psql -X -q -v ON_ERROR_STOP=1 \
	-c "ALTER SYSTEM SET dynamic_library_path = '$ASAN_TREE:\$libdir'" \
	-c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 50); do
	[ "$(psql -X -Atc 'SHOW dynamic_library_path')" = "$ASAN_TREE:\$libdir" ] && break
	sleep 0.1
done

# Proof that a backend loads the sanitizer build: LOAD resolves the bare
# name exactly as the extension's functions do ('MODULE_PATHNAME' becomes
# 'opsmig_fdw'), and the backend's own /proc/self/maps says which file was
# mapped, and that the ASan runtime is in the process.
maps=$(psql -X -q -At -v ON_ERROR_STOP=1 -c "LOAD 'opsmig_fdw'" \
	-c "SELECT DISTINCT regexp_replace(l, '^.* ', '')
	      FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\\n') AS l
	     WHERE l ~ '(opsmig_fdw|libasan|libubsan)[^/]*\$'")
mapped=$(grep opsmig_fdw <<<"$maps" || true)
if [ "$mapped" = "$SO" ] && grep -q libasan <<<"$maps"; then
	check "backend maps the sanitizer build" ok "$SO"
else
	check "backend maps the sanitizer build" FAIL "$(tr '\n' ' ' <<<"$maps")"
fi

log "running pg_regress (make installcheck) against the sanitizer build"
OUT="$WORK/regress"
mkdir -p "$OUT"
rc=0
make -C "$ROOT" -s with_llvm=no installcheck EXTRA_REGRESS_OPTS="--outputdir=$OUT" || rc=$?
if [ $rc -eq 0 ]; then
	check "pg_regress suite" ok
else
	check "pg_regress suite" FAIL "make installcheck exited with $rc"
	if [ -f "$OUT/regression.diffs" ]; then
		log "regression.diffs (first 200 lines):"
		head -n 200 "$OUT/regression.diffs" >&2
	fi
fi

# The suite's own functions must resolve through dynamic_library_path too:
# a '$libdir/...' in the catalog would have bypassed the sanitizer build.
# (After a crashed backend the server is recovering for a moment: wait.)
for _ in $(seq 1 100); do
	"$PG_BINDIR/pg_isready" -q && break
	sleep 0.1
done
probin=$(psql -X -At -d contrib_regression \
	-c "SELECT string_agg(DISTINCT probin, ',') FROM pg_proc WHERE probin ~ 'opsmig'" 2>&1 || true)
if [ "$probin" = opsmig_fdw ]; then
	check "extension functions load through dynamic_library_path" ok "probin '$probin'"
else
	check "extension functions load through dynamic_library_path" FAIL "probin '$probin'"
fi

# Sanitizer reports go to the backends' stderr, which is the server log.
reports=$(grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined)' \
	"$LOGFILE" || true)
if [ -z "$reports" ]; then
	check "no sanitizer report in the server log" ok
else
	check "no sanitizer report in the server log" FAIL "$(wc -l <<<"$reports") lines"
	log "sanitizer reports (first 100 lines around each):"
	# (|| true: head may close the pipe early, and pipefail would end us.)
	grep -E -B2 -A40 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOGFILE" |
		head -n 100 >&2 || true
fi

# The secret scan of the outputs and the log of this run too (at DEBUG5, as
# test/run-tests.sh regress): it fails when any of them cannot be read.
if secret_scan "sanitize secret scan" "$OUT" "$LOGFILE"; then
	check "no private key in any output or log line" ok
else
	check "no private key in any output or log line" FAIL "see above"
fi

crashes=$(grep -E 'terminated by signal|exited with exit code|was terminated by exception' \
	"$LOGFILE" || true)
if [ -z "$crashes" ]; then
	check "no backend crashed" ok
else
	check "no backend crashed" FAIL "$(head -n 3 <<<"$crashes" | tr '\n' ' ')"
fi

echo "sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
