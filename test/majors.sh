#!/usr/bin/env bash
# Runs the pg_regress suite (test/run-tests.sh regress) against another
# PostgreSQL major than the host's, inside a Debian root that has it:
# 17 from Debian 13 (trixie), 18 from Debian sid.  Why a root and not the
# host: Debian ships one major per release, and a root built from Debian's
# own packages is the closest thing to what a DBA on that major runs.
#
# Usage: bash test/majors.sh MAJOR        (as root; CI runs it through run-tests.sh)
#
# The root is made once with debootstrap and kept in $OPSMIG_ROOTS
# (default /var/cache/opsmig-roots/pgMAJOR-SUITE); a later run reuses it when
# it is complete (it holds the marker written after its last install step)
# and makes it anew otherwise.  Each run copies the work tree into the root
# (so a host build's objects never reach the other major's build), and runs
# in a mount and PID namespace of its own: the mounts and every process
# started inside (the cluster, the simulator) end with the run, whatever
# ends it, Ctrl-C and kill -9 included.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MAJOR=${1:?usage: test/majors.sh MAJOR}
case $MAJOR in
	17) SUITE=trixie ;;
	18) SUITE=sid ;;
	*) log "no Debian root for PostgreSQL $MAJOR (known: 17 trixie, 18 sid)"; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { log "test/majors.sh: run as root (debootstrap, chroot and mounts need it)"; exit 1; }

MIRROR=${OPSMIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTS=${OPSMIG_ROOTS:-/var/cache/opsmig-roots}
DIR="$ROOTS/pg$MAJOR-$SUITE"
PACKAGES="postgresql-$MAJOR postgresql-server-dev-$MAJOR libcurl4-openssl-dev libjson-c-dev pkg-config make gcc python3"
# The marker holds the package list: a root made for another list is made anew.
MARKER="$DIR/.opsmig-root-complete"

# make_root: debootstrap into a scratch dir beside the root, install the
# packages, write the marker, then move it into place; a run that dies half
# way leaves only the scratch dir, which the next run removes.
make_root() {
	local tmp="$DIR.new"
	rm -rf "$DIR" "$tmp"
	apt_deps debootstrap
	log "debootstrap --variant=minbase $SUITE into $tmp (log: $ROOTS/debootstrap-$MAJOR.log)"
	debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$ROOTS/debootstrap-$MAJOR.log" 2>&1 ||
		{ tail -n 30 "$ROOTS/debootstrap-$MAJOR.log" >&2; return 1; }
	# No service starts inside the root (policy-rc.d 101 = "not allowed"), and
	# installing postgresql-NN creates no cluster: the suite makes its own.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 755 "$tmp/usr/sbin/policy-rc.d"
	# The mirror may be a snapshot older than sid's one-week Valid-Until.
	echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99opsmig-snapshot"
	mkdir -p "$tmp/etc/postgresql-common"
	echo 'create_main_cluster = false' >"$tmp/etc/postgresql-common/createcluster.conf"
	log "installing $PACKAGES in the $SUITE root"
	in_namespace "$tmp" bash -c "export DEBIAN_FRONTEND=noninteractive &&
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null &&
		apt-get clean" || return 1
	echo "$PACKAGES" >"$tmp/.opsmig-root-complete"
	mv "$tmp" "$DIR"
}

# apt_deps PKG...: install host packages that are missing.
apt_deps() {
	local p missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]} on the host"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# in_namespace ROOT CMD...: run CMD chrooted in ROOT, in new mount and PID
# namespaces, with a fresh /proc, the host's /dev and /dev/shm bound in.  When
# CMD ends (or the run is killed) the kernel ends every process left in the
# PID namespace and drops its mounts; the unmounts below are for tidiness.
in_namespace() {
	local root=$1; shift
	unshare --mount --propagation private --pid --fork --kill-child -- \
		bash -c '
			set -e
			root=$1; shift
			trap "umount -l \"\$root/dev/shm\" \"\$root/dev/pts\" \"\$root/dev\" \"\$root/proc\" 2>/dev/null || true" EXIT
			mount -t proc proc "$root/proc"
			mount --bind /dev "$root/dev"
			mount --bind /dev/pts "$root/dev/pts"
			mount --bind /dev/shm "$root/dev/shm"
			cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
			chroot "$root" "$@"
		' in_namespace "$root" "$@"
}

mkdir -p "$ROOTS"
# One run at a time makes or checks a given root; runs of several work
# trees then share the finished root (each in its own copy of the tree).
exec 7>"$ROOTS/pg$MAJOR-$SUITE.lock"
flock 7
if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$PACKAGES" ]; then
	make_root
fi
flock -u 7

BUILD=$(mktemp -d "$DIR/tmp/opsmig-src.XXXXXX")
cleanup() { rm -rf "$BUILD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# What git would see (tracked and new files, no build products), as
# test/package.sh stages it.
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done |
	tar -C "$ROOT" --null -T - -cf - | tar -C "$BUILD" -xf -
chmod 755 "$BUILD"

log "PostgreSQL $MAJOR ($SUITE root $DIR): test/run-tests.sh regress"
rc=0
in_namespace "$DIR" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 OPSMIG_DEPS_PREINSTALLED=1 OPSMIG_MAJORS="$MAJOR" \
	${OPSMIG_PG_ROOT:+OPSMIG_PG_ROOT="$OPSMIG_PG_ROOT"} \
	bash "/${BUILD#"$DIR"/}/test/run-tests.sh" regress || rc=$?
# Keep what failed where the tree's own results go (gitignored), to read and,
# where only PostgreSQL prints differently, to turn into expected/NAME_N.out.
if [ $rc -ne 0 ] && [ -d "$BUILD/results" ]; then
	rm -rf "$ROOT/results/pg$MAJOR"
	mkdir -p "$ROOT/results/pg$MAJOR"
	cp -a "$BUILD/results/." "$BUILD"/regression.* "$ROOT/results/pg$MAJOR/" 2>/dev/null || true
	log "PostgreSQL $MAJOR: results and regression.diffs kept in results/pg$MAJOR/"
fi
exit $rc
