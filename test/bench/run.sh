#!/usr/bin/env bash
# test/bench/run.sh: prints a table of figures (not a pass/fail test) comparing, for
# each organization count N, the documented "one curl --digest process per
# organization" loop, the same calls from one reused libcurl handle, and
# opsmig_fdw's scans, lookups, joins, INSERTs and DELETEs, each against the
# physical limit (pages + ceil(N / C)) x L of an API with round trip L; then
# a backend's memory and open fds before and after 5,000 scans.
#
#   test/bench/run.sh [--latency-ms L] [--orgs "100 1000"] [--quick]
#   test/bench/run.sh --rate-limit [--latency-ms L]
#
# --rate-limit measures instead the targets of the API's rate limit (a
# preloaded cluster, the simulator's token bucket): test/bench/ratelimit.py.
#
# Everything runs on a throwaway cluster and the bundled API simulator on
# 127.0.0.1 (test/lib.sh).  Progress goes to stderr; the report (Markdown)
# to stdout, so `test/bench/run.sh > bench.md` keeps just the report.  The measuring
# itself is test/bench/bench.py.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

LATENCY=50
ORGS="100 1000"
QUICK=0
RATELIMIT=0
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
		--latency-ms) [ $# -ge 2 ] || usage; LATENCY=$2; shift 2 ;;
		--latency-ms=*) LATENCY=${1#*=}; shift ;;
		--orgs) [ $# -ge 2 ] || usage; ORGS=$2; shift 2 ;;
		--orgs=*) ORGS=${1#*=}; shift ;;
		--quick) QUICK=1; shift ;;
		--rate-limit) RATELIMIT=1; shift ;;
		-h|--help) usage ;;
		*) echo "bench: unknown argument: $1" >&2; usage ;;
	esac
done
[[ "$LATENCY" =~ ^[0-9]+$ ]] || { echo "bench: --latency-ms must be a whole number" >&2; exit 2; }
for n in $ORGS; do
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 100000 ] ||
		{ echo "bench: --orgs takes counts from 1 to 100000" >&2; exit 2; }
done
if [ "$QUICK" = 1 ] && [ "$ORGS" = "100 1000" ]; then ORGS="20"; fi

build_and_install
if ! command -v curl >/dev/null; then
	log "installing the curl command-line tool (apt)"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends curl >/dev/null
fi

first_n=${ORGS%% *}
if [ "$RATELIMIT" = 1 ]; then
	export PG_EXTRA_OPTS="-c shared_preload_libraries=opsmig_fdw"
fi
start_services --latency-ms "$LATENCY" --orgs "$first_n"

log "building test/bench/bench_curl.c"
cc -O2 -Wall -o "$WORK/bench_curl" "$ROOT/test/bench/bench_curl.c" $(pkg-config --cflags --libs libcurl)

export BENCH_LATENCY_MS=$LATENCY BENCH_ORGS=$ORGS BENCH_QUICK=$QUICK \
	BENCH_CURL_BIN="$WORK/bench_curl" BENCH_SIM="$SIM" BENCH_PUBLIC_KEY="$SIM_PUBLIC_KEY" \
	BENCH_ROOT="$ROOT"
# The scratch dir belongs to postgres (lib.sh); our own files go in a subdir
# that psql (run as root) can write.
mkdir -p "$WORK/bench"
export BENCH_DIR="$WORK/bench"
if [ "$RATELIMIT" = 1 ]; then
	python3 "$ROOT/test/bench/ratelimit.py"
else
	python3 "$ROOT/test/bench/bench.py"
fi
