#!/usr/bin/env bash
# Runs parts of test/run-tests.sh (default: regress, the pg_regress suite)
# against another PostgreSQL major than the host's, inside a Debian root that has it:
# 17 from Debian 13 (trixie), 18 from Debian sid.  Why a root and not the
# host: Debian ships one major per release, and a root made from Debian's
# own packages is what a DBA on that major runs.
#
# Usage: bash test/tools/majors.sh MAJOR [PART...]   (as root; test/run-tests.sh
#        calls it for each major of OPSMIG_MAJORS, with regress or cluster)
#
# The root is made once with debootstrap and kept in $OPSMIG_ROOTS (default
# /var/cache/opsmig-roots/pgMAJOR-SUITE); later runs reuse it when it is
# complete (it holds the marker written after its last install step) and
# make it anew otherwise.  A run never writes to it: it sees the root
# through an overlay on a tmpfs, in mount and PID namespaces of its own, and
# works on a copy of the work tree there.  So runs of several work trees can
# share the root, and when a run ends -- pass, fail, Ctrl-C or kill -9 of the
# namespace -- the kernel stops every process started inside (cluster,
# simulator) and drops the mounts and everything the run wrote.  Results of a
# failed run are copied to results/pgMAJOR/ in the tree first.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/../lib.sh"

MAJOR=${1:?usage: test/tools/majors.sh MAJOR [PART...]}
shift
PARTS="${*:-regress}"
case $MAJOR in
	17) SUITE=trixie ;;
	18) SUITE=sid ;;
	*) log "no Debian root for PostgreSQL $MAJOR (known: 17 trixie, 18 sid)"; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { log "test/tools/majors.sh: run as root (debootstrap, chroot and mounts need it)"; exit 1; }

MIRROR=${OPSMIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTS=${OPSMIG_ROOTS:-/var/cache/opsmig-roots}
DIR="$ROOTS/pg$MAJOR-$SUITE"
PACKAGES="postgresql-$MAJOR postgresql-server-dev-$MAJOR libcurl4-openssl-dev libjson-c-dev pkg-config make gcc python3"
# The marker holds the package list: a root made for another list is made anew.
MARKER="$DIR/.opsmig-root-complete"

# apt_deps PKG...: install host packages that are missing.
apt_deps() {
	local p missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]} on the host"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# in_namespace ROOT CMD...: run CMD chrooted in ROOT, in new mount, IPC and
# PID namespaces, with a fresh /proc and the host's /dev, /dev/pts and /dev/shm
# bound in.  With NS_OVERLAY=DIR (an empty directory) the chroot is an
# overlay of ROOT on a tmpfs mounted on DIR, and ROOT is left untouched;
# NS_SRC=PATH then copies the host's PATH (listed NUL-separated on standard
# NS_LIST) to /src first, and NS_KEEP=PATH gets /src's results on failure.
# The kernel ends the namespaces with CMD (or with unshare, through
# --kill-child): every process left inside is killed, every mount dropped,
# the cluster's System V memory freed; nothing needs unmounting by hand.
in_namespace() {
	local root=$1; shift
	NS_ROOT=$root NS_OVERLAY=${NS_OVERLAY:-} NS_SRC=${NS_SRC:-} NS_LIST=${NS_LIST:-} \
		NS_KEEP=${NS_KEEP:-} unshare --mount --propagation private --ipc --pid --fork --kill-child -- \
		bash -c '
			set -e
			root=$NS_ROOT
			if [ -n "${NS_OVERLAY:-}" ]; then
				mount -t tmpfs -o mode=755 opsmig-run "$NS_OVERLAY"
				mkdir "$NS_OVERLAY/upper" "$NS_OVERLAY/work" "$NS_OVERLAY/root"
				mount -t overlay overlay -o "lowerdir=$root,upperdir=$NS_OVERLAY/upper,workdir=$NS_OVERLAY/work" \
					"$NS_OVERLAY/root"
				root=$NS_OVERLAY/root
			fi
			mount -t proc proc "$root/proc"
			mount --bind /dev "$root/dev"
			mount --bind /dev/pts "$root/dev/pts"
			mount --bind /dev/shm "$root/dev/shm"
			cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
			if [ -n "${NS_SRC:-}" ]; then
				mkdir -m 755 "$root/src"
				tar -C "$NS_SRC" --null -T "$NS_LIST" -cf - | tar -C "$root/src" -xf -
			fi
			rc=0
			chroot "$root" "$@" </dev/null || rc=$?
			if [ $rc -ne 0 ] && [ -n "${NS_KEEP:-}" ] && [ -d "$root/src/results" ]; then
				rm -rf "$NS_KEEP" && mkdir -p "$NS_KEEP"
				cp -a "$root/src/results/." "$root/src"/regression.* "$NS_KEEP/" 2>/dev/null || true
			fi
			exit $rc
		' in_namespace "$@" &
	NS_PID=$!
	wait "$NS_PID"
}

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
	mkdir -p "$tmp/etc/postgresql-common"
	echo 'create_main_cluster = false' >"$tmp/etc/postgresql-common/createcluster.conf"
	# A mirror that is a snapshot may be older than sid's one-week Valid-Until.
	echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99opsmig-snapshot"
	log "installing $PACKAGES in the $SUITE root (log: $ROOTS/apt-$MAJOR.log)"
	in_namespace "$tmp" bash -c "export DEBIAN_FRONTEND=noninteractive &&
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $PACKAGES &&
		apt-get clean" >"$ROOTS/apt-$MAJOR.log" 2>&1 ||
		{ tail -n 30 "$ROOTS/apt-$MAJOR.log" >&2; return 1; }
	echo "$PACKAGES" >"$tmp/.opsmig-root-complete"
	mv "$tmp" "$DIR"
}

NS_PID=
MNT=
LIST=
# unshare blocks SIGINT and SIGTERM while it waits for its child, and the
# namespace's first process ignores signals it has no handler for: SIGKILL
# to unshare is what ends the run (--kill-child passes it on).
cleanup() {
	if [ -n "$NS_PID" ]; then
		kill -KILL "$NS_PID" 2>/dev/null || true
		wait "$NS_PID" 2>/dev/null || true
	fi
	[ -z "$MNT" ] || rmdir "$MNT" 2>/dev/null || true
	[ -z "$LIST" ] || rm -f "$LIST"
}
trap cleanup EXIT
# Die of the signal, so that a caller's loop over majors stops too.
trap 'cleanup; trap - INT; kill -INT $$' INT
trap 'cleanup; trap - TERM; kill -TERM $$' TERM

mkdir -p "$ROOTS"
# The lock file: exclusive while the root is checked or made, shared while
# runs use it, so the root is never made anew under a running suite.
exec 7>"$ROOTS/pg$MAJOR-$SUITE.lock"
flock -x 7
if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$PACKAGES" ]; then
	start=$SECONDS
	make_root
	log "PostgreSQL $MAJOR: the $SUITE root took $((SECONDS - start)) s to make"
fi
flock -s 7

MNT=$(mktemp -d /tmp/opsmig-major.XXXXXX)
LIST=$(mktemp /tmp/opsmig-major-files.XXXXXX)
# What git would see (tracked and new files, no build products), as
# test/tools/package.sh stages it: a host build's objects never reach this major.
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done >"$LIST"
log "PostgreSQL $MAJOR ($SUITE root $DIR): test/run-tests.sh $PARTS"
NS_OVERLAY=$MNT NS_SRC=$ROOT NS_LIST=$LIST NS_KEEP="$ROOT/results/pg$MAJOR" \
	in_namespace "$DIR" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 OPSMIG_DEPS_PREINSTALLED=1 OPSMIG_MAJORS="$MAJOR" \
	bash /src/test/run-tests.sh $PARTS && rc=0 || rc=$?
NS_PID=
[ $rc -eq 0 ] || log "PostgreSQL $MAJOR: results and regression.diffs kept in results/pg$MAJOR/"
exit $rc
