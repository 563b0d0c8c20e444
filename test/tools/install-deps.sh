#!/usr/bin/env bash
# Installs everything opsmig_fdw needs on Debian 12 (bookworm) with apt-get, as root or via sudo:
# the PostgreSQL 15 server, its server-dev headers pinned to the *installed* server's version (so apt
# never upgrades the running server behind our back), libcurl and json-c headers, pkg-config and
# python3 for the simulator.  Idempotent: when everything is present it returns without touching apt.
set -euo pipefail

# test/tools/majors.sh runs the suite in a Debian root it has provisioned itself,
# with another PostgreSQL major: nothing to install there.
[ -z "${OPSMIG_DEPS_PREINSTALLED:-}" ] || exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
	SUDO=sudo
fi

pkg_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '/install ok installed/ {print $4}'; }

server_ver=$(pkg_version postgresql-15 || true)
dev_ver=$(pkg_version postgresql-server-dev-15 || true)
wanted=(libcurl4-openssl-dev libjson-c-dev pkg-config python3 make gcc)
missing=()
for p in "${wanted[@]}"; do
	[ -n "$(pkg_version "$p" || true)" ] || missing+=("$p")
done

if [ -n "$server_ver" ] && [ "$dev_ver" = "$server_ver" ] && [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing packages with apt-get" >&2
$SUDO apt-get update -qq
if [ -z "$server_ver" ]; then
	$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
	server_ver=$(pkg_version postgresql-15)
fi
# Pin the headers to the server we run: a newer -dev would pull a server upgrade with it.
$SUDO apt-get install -y -qq --no-install-recommends \
	"postgresql-server-dev-15=${server_ver}" "${wanted[@]}" >/dev/null
echo "install-deps: PostgreSQL ${server_ver} with matching server-dev headers" >&2
