# shellcheck shell=bash
# Shared by test/run-tests.sh, test/tools/demo.sh and test/bench/run.sh: build and install
# the extension, start a throwaway PostgreSQL cluster (owned by "postgres",
# Unix socket only, in a temp dir) and the API simulator on 127.0.0.1, and
# tear both down on exit, whatever happens.  Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIM="$ROOT/test/opsmig_sim.py"
# The simulator's API key pair (its defaults); tests and demo use the same.
SIM_PUBLIC_KEY=opsmigtest
export SIM_PRIVATE_KEY=sim-PRIVATE-9f8e7d6c5b4a
# The other private keys the suite sends: the weak key (no Organization Owner role, given
# to the simulator with --weak-key) and a wrong one.  The sql files read all three with
# \getenv, so no key is echoed into a result file, and the secret scans grep for each.
export SIM_WEAK_PRIVATE_KEY=weak-PRIVATE-5678
export SIM_WRONG_PRIVATE_KEY=wrong-PRIVATE-3c2b1a0f
SUITE_PRIVATE_KEYS=("$SIM_PRIVATE_KEY" "$SIM_WEAK_PRIVATE_KEY" "$SIM_WRONG_PRIVATE_KEY")

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi

# PostgreSQL must not run as root: run cluster commands as "postgres".
as_postgres() {
	if [ "$(id -un)" = postgres ]; then "$@"
	elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
	else sudo -u postgres -- "$@"; fi
}

log() { printf '==> %s\n' "$*" >&2; }

# check "what" command...: the checks' tally; a script ends with
# echo "NAME: $passed passed, $failed failed".
passed=0 failed=0
check() {
	local what=$1; shift
	if "$@"; then passed=$((passed + 1)); echo "ok   - $what"
	else failed=$((failed + 1)); echo "FAIL - $what"; fi
}

# OPSMIG_PG_ROOT=DIR (opt-in, for developers running several trees at once):
# install into a private copy of the PostgreSQL installation under DIR
# instead of the system's.  PostgreSQL finds its share and lib directories
# relative to its own binary, so the copy's server loads this tree's build
# and SQL scripts, and two trees never overwrite each other's files.
private_pg_root() {
	local bindir sharedir
	bindir=$(pg_config --bindir) sharedir=$(pg_config --sharedir)
	if [ ! -x "$OPSMIG_PG_ROOT$bindir/postgres" ]; then
		log "copying the PostgreSQL installation into $OPSMIG_PG_ROOT"
		mkdir -p "$OPSMIG_PG_ROOT$(dirname "$bindir")" "$OPSMIG_PG_ROOT$(dirname "$sharedir")"
		cp -a "$(dirname "$bindir")/." "$OPSMIG_PG_ROOT$(dirname "$bindir")/"
		cp -a "$sharedir" "$OPSMIG_PG_ROOT$(dirname "$sharedir")/"
		chmod -R a+rX "$OPSMIG_PG_ROOT"
	fi
}

build_and_install() {
	bash "$ROOT/test/tools/install-deps.sh"
	log "building and installing opsmig_fdw"
	# -Werror: the tree builds without warnings on every major it supports.
	make -C "$ROOT" -s with_llvm=no COPT=-Werror >/dev/null
	if [ -n "${OPSMIG_PG_ROOT:-}" ]; then
		private_pg_root
		make -C "$ROOT" -s with_llvm=no install DESTDIR="$OPSMIG_PG_ROOT" >/dev/null
	else
		$SUDO make -C "$ROOT" -s with_llvm=no install >/dev/null
	fi
}

WORK=
SIM_PID=
# teardown_services: stop the cluster and the simulator, remove the scratch
# directory; safe to call twice (the EXIT trap calls it again).
teardown_services() {
	if [ -n "$WORK" ] && [ -f "$WORK/data/postmaster.pid" ]; then
		as_postgres "$PG_BINDIR/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "$SIM_PID" ]; then
		kill "$SIM_PID" 2>/dev/null || true
		wait "$SIM_PID" 2>/dev/null || true
	fi
	[ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ] && $SUDO rm -rf "$WORK"
	WORK= SIM_PID=
}
teardown() {
	local rc=$?
	teardown_services
	return $rc
}

# start_services [sim args...]: cluster + simulator; exports PGHOST, PGPORT,
# PGUSER, PGDATABASE and SIM_URL for psql, pg_regress and the tests.
start_services() {
	PG_BINDIR=${OPSMIG_PG_ROOT:-}$(pg_config --bindir)
	WORK=$(mktemp -d /tmp/opsmig_fdw.XXXXXX)
	chmod 755 "$WORK"
	trap teardown EXIT
	trap 'exit 130' INT TERM
	# The cluster lives in $WORK, so postgres must own it (root or via sudo).
	$SUDO chown postgres: "$WORK"

	export PGHOST="$WORK" PGPORT=$((50000 + RANDOM % 10000)) PGUSER=postgres PGDATABASE=postgres
	log "starting a throwaway PostgreSQL cluster in $WORK"
	as_postgres "$PG_BINDIR/initdb" -D "$WORK/data" -U postgres --auth=trust \
		--no-sync -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log" >&2; return 1; }
	# PG_EXTRA_ENV (opt-in; test/checks/sanitize.sh sets it): NAME=value words, no
	# blanks in a value, put in the postmaster's environment through env(1)
	# inside as_postgres, so that sudo's env_reset cannot drop them.
	local -a pg_env=()
	[ -z "${PG_EXTRA_ENV:-}" ] || read -ra pg_env <<<"$PG_EXTRA_ENV"
	# The README promises that no proxy is taken from the environment: give the
	# postmaster proxies that refuse every connection (port 9 on loopback), so
	# that a backend which used them would fail every test that reaches the API.
	pg_env+=(http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
		HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9
		no_proxy= NO_PROXY=)
	# PG_EXTRA_OPTS (opt-in; test/checks/cluster.sh and
	# test/checks/ratelimit.sh set it): more server
	# options, e.g. "-c shared_preload_libraries=opsmig_fdw".
	as_postgres env "${pg_env[@]}" "$PG_BINDIR/pg_ctl" -D "$WORK/data" -l "$WORK/data/postgres.log" -w \
		-o "-k $WORK -p $PGPORT -c listen_addresses= -c fsync=off ${PG_EXTRA_OPTS:-}" start >/dev/null

	log "starting the API simulator on 127.0.0.1"
	python3 "$SIM" serve --host 127.0.0.1 --port 0 --port-file "$WORK/sim.port" "$@" \
		>"$WORK/sim.log" 2>&1 &
	SIM_PID=$!
	local i
	for i in $(seq 1 100); do
		[ -s "$WORK/sim.port" ] && break
		kill -0 "$SIM_PID" 2>/dev/null || { cat "$WORK/sim.log" >&2; return 1; }
		sleep 0.1
	done
	[ -s "$WORK/sim.port" ] || { log "the simulator did not start"; return 1; }
	export SIM_URL="http://127.0.0.1:$(cat "$WORK/sim.port")"
	export PG_BINDIR WORK
}

# secret_scan LABEL PATH...: fails loudly unless every PATH (a file or a
# directory) exists and is readable, and no file under them holds any of
# SUITE_PRIVATE_KEYS or of the words in EXTRA_SECRETS.  An empty regular file
# is an error too, and so is a directory with no non-empty file in it (an
# output directory the tests never wrote to): what says nothing proves nothing.
# Prints one line,
# "LABEL: K keys in P paths: 1 passed, 0 failed" (or the failure).
secret_scan() {
	local label=$1 f status=0 failed=0 hits
	shift
	local -a keys=("${SUITE_PRIVATE_KEYS[@]}") extra=() pat=()
	[ -z "${EXTRA_SECRETS:-}" ] || read -ra extra <<<"$EXTRA_SECRETS"
	keys+=(${extra[@]+"${extra[@]}"})
	for f in "${keys[@]}"; do pat+=(-e "$f"); done
	[ $# -gt 0 ] || { log "FAIL: $label: nothing to scan"; failed=1; }
	for f in "$@"; do
		if [ ! -r "$f" ] || { [ -f "$f" ] && [ ! -s "$f" ]; }; then
			log "FAIL: $label: cannot read $f (missing, unreadable or empty)"
			failed=$((failed + 1))
		elif [ -d "$f" ] && [ -z "$(find "$f" -type f -size +0 -print -quit)" ]; then
			log "FAIL: $label: $f holds no non-empty file (nothing was written there)"
			failed=$((failed + 1))
		fi
	done
	[ $# -gt 0 ] || status=1
	[ $# -eq 0 ] || hits=$(grep -rlF "${pat[@]}" -- "$@") || status=$?
	case $status in
	0) log "FAIL: $label: a private key appears in: $(tr '\n' ' ' <<<"$hits")"
		failed=$((failed + 1)) ;;
	1) ;;
	*) log "FAIL: $label: grep could not read everything (exit $status)"
		failed=$((failed + 1)) ;;
	esac
	if [ $failed -eq 0 ]; then
		echo "$label: ${#keys[@]} keys in $# paths: 1 passed, 0 failed"
	else
		echo "$label: ${#keys[@]} keys in $# paths: 0 passed, 1 failed"
	fi
	[ $failed -eq 0 ]
}
