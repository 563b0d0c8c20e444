#!/usr/bin/env bash
# test/bench/cancel.sh: measures how fast a request in flight is stopped, and
# that stopping it leaks nothing.  Prints figures (not a pass/fail timing
# test): statement_timeout reaction over 100 stalled requests (median, max),
# pg_cancel_backend() and pg_terminate_backend() from another session, and a
# backend's RSS and open fds before and after 1,000 cancelled requests.
#
#   test/bench/cancel.sh [--cancels 1000] [--samples 100]
#
# Runs on a throwaway cluster and the API simulator on 127.0.0.1 (lib.sh);
# the measuring is test/bench/cancel.py.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

CANCELS=1000
SAMPLES=100
while [ $# -gt 0 ]; do
	case "$1" in
		--cancels) CANCELS=$2; shift 2 ;;
		--samples) SAMPLES=$2; shift 2 ;;
		*) echo "cancel.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[[ "$CANCELS" =~ ^[0-9]+$ && "$CANCELS" -le 100000 && "$SAMPLES" =~ ^[0-9]+$ && "$SAMPLES" -le 10000 ]] ||
	{ echo "cancel.sh: counts must be whole numbers (at most 100000 / 10000)" >&2; exit 2; }

build_and_install
start_services --orgs 5
export CANCEL_COUNT=$CANCELS CANCEL_SAMPLES=$SAMPLES CANCEL_SIM="$SIM"
python3 "$ROOT/test/bench/cancel.py"
