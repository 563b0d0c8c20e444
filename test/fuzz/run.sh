#!/usr/bin/env bash
# test/fuzz/run.sh [seconds-per-target]: builds the libFuzzer targets of
# opsmig_fdw (fuzz_*.c here, each linking ../../api_parse.c, the reply
# parsers the extension runs) with ASan and UBSan into test/fuzz/build/,
# runs each for a bounded time (default 20 s), and prints one line per
# target with its executions and findings, then "fuzz: N passed, M failed".
# Exits non-zero on any crash, leak, UB, timeout or broken invariant.
#
# Why: the parsers read whatever the API, or a proxy in front of it, sends;
# a fuzzer finds the inputs nobody writes tests for.  The time is bounded
# so that CI can afford it; run longer locally, e.g. `run.sh 600`.
#
# Layout: seeds are read from corpus/<target>/ (tracked, never written);
# new inputs go to build/corpus/<target>/ and crash, leak and timeout
# inputs to build/artifacts/<target>/.  Reproduce one with
#   test/fuzz/build/fuzz_<target> test/fuzz/build/artifacts/<target>/crash-...
# Installs nothing, except clang and its sanitizer runtimes via apt-get
# when they are missing (as root or via sudo).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD="$HERE/build"
SECS=${1:-20}
TARGETS=(status orgs error envelope printable create_body)

case "$SECS" in
	'' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }

# -fsanitize=fuzzer needs clang and libclang-rt; json-c is what the parsers
# use.  Probe by compiling a trivial target: that also catches a clang
# without its runtime libraries, which `command -v` would not.
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
FUZZ_FLAGS=(-g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
toolchain_ok() {
	command -v clang >/dev/null 2>&1 &&
		pkg-config --exists json-c 2>/dev/null &&
		printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n' |
		clang "${FUZZ_FLAGS[@]}" -x c - -o /dev/null >/dev/null 2>&1
}
if ! toolchain_ok; then
	if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
	log "installing clang, libclang-rt-14-dev and json-c headers with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends \
		clang libclang-rt-14-dev libjson-c-dev pkg-config >/dev/null
	toolchain_ok || { log "clang cannot build a libFuzzer target"; exit 1; }
fi

# Build every target first.  A target that does not compile (a harness
# out of step with api_parse.h, say) is a failure of its own: it is
# reported in the summary and the others still run.
mkdir -p "$BUILD/logs"
JSONC_LIBS=$(pkg-config --libs json-c)
log "building ${#TARGETS[@]} fuzz targets into $BUILD"
declare -A BUILT=()
for t in "${TARGETS[@]}"; do
	rm -f "$BUILD/fuzz_$t"
	# shellcheck disable=SC2086 # JSONC_LIBS is a list of flags
	if clang "${FUZZ_FLAGS[@]}" -Wall -I"$ROOT" -I"$HERE" \
		"$HERE/fuzz_$t.c" "$ROOT/api_parse.c" $JSONC_LIBS -o "$BUILD/fuzz_$t" \
		2>"$BUILD/logs/$t.build.log"; then
		BUILT[$t]=1
	else
		cat "$BUILD/logs/$t.build.log" >&2
	fi
done

# Run the targets concurrently, one per core: the CI budget is tight and
# each libFuzzer process is single-threaded.
JOBS=$(nproc 2>/dev/null || echo 1)
# On an early exit, stop the fuzzers this script started (their pids are
# in build/logs/*.pid), then the subshells waiting for them.
PIDS=()
kill_jobs() {
	local p f
	for f in "$BUILD"/logs/*.pid; do
		if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap kill_jobs EXIT
trap 'exit 130' INT TERM

run_target() {
	local t=$1 rc=0
	# Old artifacts belong to old runs: only this run's findings count.
	rm -rf "$BUILD/artifacts/$t"
	rm -f "$BUILD/logs/$t.rc"
	mkdir -p "$BUILD/artifacts/$t" "$BUILD/corpus/$t"
	# -timeout: one input running 10 s is a hang, a finding of its own.
	# -max_len: replies are small; 16 kB leaves room for deep nesting.
	# libFuzzer turns LeakSanitizer on by itself; say so, in case the
	# caller's ASAN_OPTIONS said otherwise.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		"$BUILD/fuzz_$t" \
		-max_total_time="$SECS" -timeout=10 -max_len=16384 \
		-dict="$HERE/json.dict" -print_final_stats=1 \
		-artifact_prefix="$BUILD/artifacts/$t/" \
		"$BUILD/corpus/$t" "$HERE/corpus/$t" \
		>"$BUILD/logs/$t.log" 2>&1 &
	echo $! >"$BUILD/logs/$t.pid"
	wait $! || rc=$?
	rm -f "$BUILD/logs/$t.pid"
	echo "$rc" >"$BUILD/logs/$t.rc"
}

log "fuzzing each target for $SECS s, $JOBS at a time; logs in $BUILD/logs"
for t in "${TARGETS[@]}"; do
	[ -n "${BUILT[$t]:-}" ] || continue
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
	run_target "$t" &
	PIDS+=($!)
done
wait
PIDS=()

passed=0 failed=0
for t in "${TARGETS[@]}"; do
	if [ -z "${BUILT[$t]:-}" ]; then
		printf 'fuzz_%-12s %-4s does not build (see %s)\n' "$t" FAIL "$BUILD/logs/$t.build.log"
		failed=$((failed + 1))
		continue
	fi
	logf="$BUILD/logs/$t.log"
	rc=$(cat "$BUILD/logs/$t.rc" 2>/dev/null || echo 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -n 1)
	# "Done N runs in T second(s)" only comes when the time ran out.
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logf" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -n 1 | cut -d' ' -f2 || true)
	corp=$(grep -o 'corp: [0-9]*' "$logf" | tail -n 1 | cut -d' ' -f2 || true)
	findings=$(find "$BUILD/artifacts/$t" -type f | wc -l)
	if [ "$rc" -eq 0 ] && [ "$findings" -eq 0 ]; then
		verdict=ok
		passed=$((passed + 1))
	else
		verdict=FAIL
		failed=$((failed + 1))
	fi
	printf 'fuzz_%-12s %-4s %10s execs in %s s  cov %s  corpus %s  findings %d  exit %d\n' \
		"$t" "$verdict" "${execs:-?}" "${secs:-?}" "${cov:-?}" "${corp:-?}" "$findings" "$rc"
	if [ "$verdict" = FAIL ]; then
		# Enough of the report to act on; the whole log stays in build/logs.
		grep -E -m 20 'ERROR: |runtime error:|invariant failed|SUMMARY:|Test unit written|Seed:' \
			"$logf" | sed 's/^/    /' >&2 || true
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
