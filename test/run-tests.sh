#!/usr/bin/env bash
# Runs every test of opsmig_fdw: installs what is missing (apt), builds and
# installs the extension, starts a throwaway cluster and the API simulator,
# runs the pg_regress suite (make installcheck), checks that the README's
# examples are in it and that the private key reached no output and no
# server log line; then throws random SQLsmith queries at the foreign
# tables, fuzzes the reply parsers, runs the suite again under
# ASan/UBSan, checks TLS and the shared rate limit, runs the extension against Apache's digest auth,
# cancels a request stuck in the DNS resolver, and builds,
# installs and smoke-tests the Debian package.  Every step tears down what
# it started.  Exits non-zero when anything fails.
#
# Usage: bash test/run-tests.sh [PART...]   (no PART: all of them, as CI runs)
#   simtest   the API simulator's unit tests (python3 -m unittest)
#   regress   pg_regress, the README examples check, the expected-output rules
#             (test/checks/expected.py), the crash check, the DEBUG5 log check and the
#             secret check, on each PostgreSQL major of OPSMIG_MAJORS (default
#             "15 17 18"): the host's own (Debian 12: 15) directly, the others
#             in a Debian root that has them (test/tools/majors.sh); and that
#             every planted defect of test/tools/mutants.sh still applies
#   sqlsmith  a bounded SQLsmith run (fixed seed, about 30 s): no backend crash
#   fuzz      libFuzzer on the reply parsers
#   sanitize  the pg_regress suite under ASan/UBSan
#   tls       HTTPS against a throwaway CA
#   ratelimit the rate limit shared by three backends of a preloaded cluster
#   apache    Apache's mod_auth_digest
#   resolver  cancel during a DNS lookup that never ends (root: unshare)
#   sockets   a socket-table overflow is one error, not the session's end
#   cluster   shared_preload_libraries: cluster views, shared cache, pgbench
#             (test/checks/cluster.sh; PGBENCH_SECONDS=60 for the full run), on
#             each major of OPSMIG_MAJORS like regress: its shared memory
#             code differs between majors (compat.h's opsmig_proc_index)
#   package   the Debian package
#   quick     not in the default run: pg_regress alone, on the host's major, against
#             the build already installed (no apt, no build, no install, none of
#             regress's other checks); it refuses an installed build older than the
#             source. OPSMIG_TESTS="scan faults" runs init and those tests only.
# OPSMIG_PG_ROOT=DIR installs into a private copy of PostgreSQL (test/lib.sh).
# OPSMIG_MAJORS="17" (say) runs the regress and cluster parts on that major
# only; the other parts always run on the host's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ALL_PARTS="simtest regress sqlsmith fuzz sanitize tls apache resolver sockets cluster ratelimit package"
PARTS="${*:-$ALL_PARTS}"
for p in $PARTS; do
	case " $ALL_PARTS quick " in *" $p "*) ;; *) log "unknown part '$p' (parts: $ALL_PARTS quick)"; exit 2 ;; esac
done
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

rc=0
# run_check NAME SCRIPT: a check whose full log goes to a file; its last line
# (the "NAME: N passed, M failed" summary) is printed, its tail on failure.
run_check() {
	local logf="${TMPDIR:-/tmp}/opsmig-$1.log"
	bash "$2" >"$logf" 2>&1 || { rc=1; tail -n 40 "$logf" >&2; }
	tail -n 1 "$logf"
}

# installcheck [MAKE ARGS...]: pg_regress against the running cluster; on
# failure, the start of regression.diffs.
installcheck() {
	make -C "$ROOT" -s with_llvm=no installcheck "$@" && return 0
	if [ -f "$ROOT/regression.diffs" ]; then
		log "regression.diffs (first 200 lines):"
		head -n 200 "$ROOT/regression.diffs" >&2
	fi
	return 1
}

# regress_here: the regress part on the PostgreSQL that pg_config names.
regress_here() {
	local rrc=0
	build_and_install
	start_services --weak-key "opsmigweak:$SIM_WEAK_PRIVATE_KEY"

	log "running pg_regress (make installcheck) on $(pg_config --version)"
	installcheck || rrc=1

	# A backend that died (SIGSEGV, abort) fails the suite even where its
	# test's expected output would not show it (the postmaster restarts).
	log "checking that no backend crashed"
	if grep -E "terminated by signal|was terminated by exception" \
		"$WORK/data/postgres.log" >&2; then
		log "FAIL: a backend crashed (see above)"
		rrc=1
	else
		echo "crash check: 1 passed, 0 failed"
	fi

	log "checking that the README's tested examples are in the suite"
	python3 "$ROOT/test/checks/readme.py" || rrc=1
	log "checking that every expected ERROR shows its SQLSTATE and every write its row count"
	python3 "$ROOT/test/checks/expected.py" || rrc=1

	log "checking that no private key appears in any output or log line (the log at DEBUG5)"
	secret_scan "secret check" "$ROOT/results" "$WORK/data/postgres.log" "$WORK/sim.log" || rrc=1
	# The scan proves something only if the tests really logged at DEBUG5 and
	# every test left its output.
	local debug_lines debug5_lines sessions requests outs tests
	debug_lines=$(grep -c '\] DEBUG:  ' "$WORK/data/postgres.log" || true)
	# Every level from DEBUG1 on logs as "DEBUG:", and debug2 alone gives
	# thousands of lines: only a DEBUG5 message (xact.c's transaction state at
	# each commit) proves the sessions logged at DEBUG5.
	debug5_lines=$(grep -c '\] DEBUG:  CommitTransaction([0-9]*) name: ' "$WORK/data/postgres.log" || true)
	sessions=$(grep -c 'opsmig_fdw: new HTTP session' "$WORK/data/postgres.log" || true)
	# The README's "debug2 logs each request's method, URL, code and time".
	requests=$(grep -c 'DEBUG:  opsmig_fdw: GET /orgs[^ ]*: HTTP 200 in [0-9.]* ms' "$WORK/data/postgres.log" || true)
	outs=$(find "$ROOT/results" -maxdepth 1 -name '*.out' | wc -l)
	tests=$(make -C "$ROOT" -s --no-print-directory --eval 'print-regress: ; @echo $(REGRESS)' print-regress | wc -w)
	if [ "$debug_lines" -ge 1000 ] && [ "$debug5_lines" -ge 100 ] && [ "$sessions" -ge 10 ] && [ "$requests" -ge 10 ] && [ "$outs" -eq "$tests" ]; then
		echo "debug log check: $debug_lines DEBUG lines ($debug5_lines at DEBUG5), $sessions HTTP sessions, $requests request lines, $outs of $tests outputs: 1 passed, 0 failed"
	else
		log "FAIL: the log has $debug_lines DEBUG lines ($debug5_lines at DEBUG5, 100 needed), $sessions HTTP sessions, $requests request lines; $outs of $tests test outputs"
		echo "debug log check: 0 passed, 1 failed"
		rrc=1
	fi
	teardown_services
	return $rrc
}

# regress_quick: part quick (see the usage above).
regress_quick() {
	local so stale rrc=0
	so="${OPSMIG_PG_ROOT:-}$(pg_config --pkglibdir)/opsmig_fdw.so"
	if [ ! -f "$so" ]; then
		log "quick: opsmig_fdw is not installed at $so: run 'bash test/run-tests.sh regress' once"
		return 1
	fi
	# Another tree's build may be installed in the same place (several
	# worktrees, one PostgreSQL): only this tree's own, up-to-date build counts.
	if ! make -C "$ROOT" -q with_llvm=no >/dev/null 2>&1 || ! cmp -s "$ROOT/opsmig_fdw.so" "$so"; then
		log "quick: the installed opsmig_fdw.so is not this tree's current build: run 'bash test/run-tests.sh regress' (or make install) first"
		return 1
	fi
	stale=$(find "$ROOT" -maxdepth 1 \( -name '*.[ch]' -o -name '*.sql' -o -name '*.control' \) \
		-newer "$so" -printf '%f' -quit)
	if [ -n "$stale" ]; then
		log "quick: the installed build is older than $stale: run 'bash test/run-tests.sh regress' (or make install) first"
		return 1
	fi
	start_services --weak-key "opsmigweak:$SIM_WEAK_PRIVATE_KEY"
	local -a only=()
	[ -z "${OPSMIG_TESTS:-}" ] || only=(REGRESS="init $OPSMIG_TESTS")
	log "running pg_regress on the installed build (part quick${OPSMIG_TESTS:+: init $OPSMIG_TESTS})"
	installcheck "${only[@]}" || rrc=1
	teardown_services
	return $rrc
}

if want simtest; then
	# Named, not discovered: discovery that finds nothing runs 0 tests and exits 0.
	sim_modules=$(cd "$ROOT/test/sim" && ls test_*.py | sed 's/\.py$//')
	log "unit-testing the API simulator (python3 -m unittest in test/sim:" $sim_modules")"
	simlog="${TMPDIR:-/tmp}/opsmig-simtest.log"
	# shellcheck disable=SC2086
	(cd "$ROOT/test/sim" && python3 -m unittest -v $sim_modules) >"$simlog" 2>&1 || { rc=1; tail -n 40 "$simlog" >&2; }
	ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$simlog")
	bad=$(grep -cE '^(FAIL|ERROR): ' "$simlog" || true)
	echo "simtest: $(( ${ran:-0} - bad )) passed, $bad failed"
	# Fewer than the three modules' tests of today means a module went missing.
	if [ "${ran:-0}" -lt 25 ]; then
		log "FAIL: simtest ran ${ran:-0} tests (at least 25 expected: test/sim/test_*.py)"
		rc=1
	fi
fi

# on_majors PART CMD...: PART on each major of OPSMIG_MAJORS, CMD on the
# host's, test/tools/majors.sh in a Debian root for the others.
on_majors() {
	local part=$1 major start host_major
	shift
	bash "$ROOT/test/tools/install-deps.sh"
	# The secret scans below prove something only if the scan itself fails on
	# a leak, a missing log and an output directory nobody wrote to.
	bash "$ROOT/test/checks/secret-scan-selftest.sh" || rc=1
	host_major=$(pg_config --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
	for major in ${OPSMIG_MAJORS:-15 17 18}; do
		start=$SECONDS
		# A subshell stops at a failed step (set -e): a function called
		# from `||` would run on past a failed build.
		set +e
		if [ "$major" = "$host_major" ]; then
			(set -e; "$@")
		else
			bash "$ROOT/test/tools/majors.sh" "$major" "$part"
		fi
		[ $? -eq 0 ] || rc=1
		set -e
		log "PostgreSQL $major: $part took $((SECONDS - start)) s"
	done
}

if want regress; then
	# The planted defects of test/tools/mutants.sh (not run here: ~35 min)
	# must still apply, or the next mutant run proves nothing about them.
	bash "$ROOT/test/tools/mutants.sh" --check || rc=1
	on_majors regress regress_here
fi

if want quick; then
	start=$SECONDS
	set +e
	(set -e; regress_quick)
	[ $? -eq 0 ] || rc=1
	set -e
	log "quick took $((SECONDS - start)) s"
fi

if want sqlsmith; then
	log "random queries on the foreign tables with SQLsmith (bounded; no backend may crash)"
	run_check sqlsmith "$ROOT/test/checks/sqlsmith.sh"
fi

if want fuzz; then
	log "fuzzing the reply parsers (libFuzzer with ASan and UBSan, 10 s a target)"
	bash "$ROOT/test/fuzz/run.sh" 10 || rc=1
fi

if want sanitize; then
	log "running the whole pg_regress suite again under AddressSanitizer and UBSan"
	bash "$ROOT/test/checks/sanitize.sh" || rc=1
fi

if want tls; then
	log "checking TLS: an unknown CA refused, ca_file trusted, ssl_verify off"
	run_check tls "$ROOT/test/checks/tls.sh"
fi

if want ratelimit; then
	log "checking the rate limit shared by three backends (shared_preload_libraries)"
	run_check ratelimit "$ROOT/test/checks/ratelimit.sh"
fi

if want apache; then
	log "checking the extension against a real digest server (Apache mod_auth_digest)"
	run_check apache "$ROOT/test/checks/apache.sh"
fi

if want resolver; then
	log "checking that statement_timeout ends a request stuck in the DNS resolver"
	run_check resolver "$ROOT/test/checks/resolver.sh"
fi

if want sockets; then
	log "checking that a socket-table overflow fails one query, not the session"
	run_check sockets "$ROOT/test/checks/sockets.sh"
fi

if want cluster; then
	log "checking a preloaded cluster: cluster-wide views, shared cache, pgbench"
	on_majors cluster bash "$ROOT/test/checks/cluster.sh"
fi

# Last, because it swaps the installed extension files for the package's
# while it runs (and puts them back).
if want package; then
	log "building, installing and smoke-testing the Debian package"
	bash "$ROOT/test/tools/package.sh" || rc=1
fi
exit $rc
