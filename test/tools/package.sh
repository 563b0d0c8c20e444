#!/usr/bin/env bash
# Builds the Debian package postgresql-15-opsmig-fdw (for the host's major)
# from the current work tree the way Debian builds its own PostgreSQL
# extensions (debian/, pg_buildext, dpkg-buildpackage -us -uc -b), installs
# it with dpkg -i, checks its file list
# and that it works -- CREATE EXTENSION, IMPORT FOREIGN SCHEMA and a SELECT
# against the API simulator in a throwaway cluster -- then purges it again.
# Why: a DBA installs extensions as packages, not with `make install`; this
# proves the package is complete and loads on a stock PostgreSQL 15.
#
# It also checks META.json (PGXN) and that the release version agrees across
# META.json, debian/changelog and the Makefile's `make dist`.
#
# Side effects, all undone or deliberate:
#  - apt installs the packaging tools that are missing (never upgrading an
#    installed package: postgresql-server-dev-all is pinned to the installed
#    postgresql-common, as test/tools/install-deps.sh pins the -dev headers);
#  - extension files that a `make install` had put in the system directories
#    are saved before dpkg -i overwrites them and put back after the purge, so
#    a developer's installed build is left exactly as it was;
#  - the .deb is left in dist/ (gitignored).
# Run as root or with sudo.  Last line: "package: N passed, M failed".
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "$0")/../lib.sh"

PKG=postgresql-15-opsmig-fdw

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok   - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$1"; }
# check NAME CMD...: one counted check.
check() {
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

as_root() { if [ -n "$SUDO" ]; then sudo "$@"; else "$@"; fi; }
pkg_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '/install ok installed/ {print $4}'; }

STAGE=
BACKUP=
INSTALLED=        # set once dpkg -i ran: the package must be purged on exit
RESTORE_PENDING=  # set while saved make-install files still need putting back
SUMMARY_DONE=

purge_package() {
	as_root dpkg --purge "$PKG" >/dev/null
	INSTALLED=
}
restore_make_install() {
	as_root cp -a "$BACKUP/root/." /
	RESTORE_PENDING=
}

# lib.sh's start_services sets `trap teardown EXIT`, replacing any EXIT trap of
# ours, and a signal could come before or after it.  So lib.sh's teardown is
# kept as lib_teardown and `teardown` becomes this script's whole cleanup,
# whichever of the two traps is in force: stop the cluster and the simulator,
# undo the install, print the summary line.
eval "lib_$(declare -f teardown)"
# A trap runs under the redirections of the command it interrupted (initdb's
# >initdb.log, say), so the real stdout and stderr are kept in fds 8 and 9.
exec 8>&1 9>&2
teardown() {
	local rc=$?
	exec 1>&8 2>&9
	set +e
	if [ -n "$WORK" ]; then lib_teardown; WORK='' SIM_PID=''; fi
	[ -n "$INSTALLED" ] && purge_package
	[ -n "$RESTORE_PENDING" ] && restore_make_install
	[ -n "$STAGE" ] && rm -rf "$STAGE"
	if [ -z "$SUMMARY_DONE" ]; then
		# A step that died outside check() still has to show as a failure.
		[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && fail "unexpected error (exit $rc)"
		echo "package: $passed passed, $failed failed"
	fi
	[ "$failed" -ne 0 ] && [ "$rc" -eq 0 ] && rc=1
	exit "$rc"
}
trap teardown EXIT
# Without a trap a signal would end bash without running the EXIT trap.
trap 'exit 130' INT TERM

# --- 1. tools ---------------------------------------------------------------
# install-deps.sh: PostgreSQL 15, its pinned -dev headers, libcurl/json-c, ...
bash "$ROOT/test/tools/install-deps.sh"

server_before=$(pkg_version postgresql-15)
common_ver=$(pkg_version postgresql-common)
# dpkg-dev: dpkg-buildpackage; build-essential: implied by every Build-Depends;
# debhelper: dh and the pgxs addon's debhelper-compat 13.  devscripts is not
# needed (dpkg-buildpackage is dpkg-dev's), so its many perl modules are not
# pulled in.
missing=()
for p in dpkg-dev build-essential debhelper fakeroot; do
	[ -n "$(pkg_version "$p")" ] || missing+=("$p")
done
# postgresql-server-dev-all (pg_buildext's dh addon) depends on
# postgresql-common of *exactly* its own version: its newest candidate would
# upgrade postgresql-common, postgresql and postgresql-contrib with it.
# Taking the version of the installed postgresql-common changes nothing.
[ -n "$(pkg_version postgresql-server-dev-all)" ] ||
	missing+=("postgresql-server-dev-all=$common_ver")
if [ ${#missing[@]} -gt 0 ]; then
	log "installing packaging tools: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq
	# Dry run first: refuse rather than upgrade anything already installed.
	upgrades=$(as_root apt-get -s install --no-install-recommends "${missing[@]}" |
		awk '/^Inst [^ ]+ \[/ {print $2}')
	if [ -n "$upgrades" ]; then
		log "refusing: installing ${missing[*]} would upgrade: ${upgrades//$'\n'/ }"
		exit 1
	fi
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
check "packaging tools installed, PostgreSQL 15 server not upgraded ($server_before)" \
	test "$(pkg_version postgresql-15)" = "$server_before" -a -n "$(pkg_version postgresql-server-dev-all)"

# --- 2. metadata ------------------------------------------------------------
changelog_ver=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
upstream_ver=${changelog_ver%-*}
dist_ver=$(sed -n 's/^DIST_VERSION *= *//p' "$ROOT/Makefile")
meta_ok() {
	python3 - "$ROOT" "$upstream_ver" "$dist_ver" <<'EOF'
import json, os, re, sys
root, upstream, dist = sys.argv[1:]
m = json.load(open(os.path.join(root, "META.json")))
problems = []
# Required keys of PGXN meta-spec 1.0.0.
for k in ("name", "abstract", "maintainer", "version", "license", "provides", "meta-spec"):
    if k not in m:
        problems.append("missing key " + k)
semver = re.compile(r"^\d+\.\d+\.\d+$")
if not semver.match(m.get("version", "")):
    problems.append("version is not x.y.z")
if m.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("meta-spec version is not 1.0.0")
for ext, p in m.get("provides", {}).items():
    if not os.path.isfile(os.path.join(root, p.get("file", ""))):
        problems.append("provides.%s.file %r is not in the tree" % (ext, p.get("file")))
    if not semver.match(p.get("version", "")):
        problems.append("provides.%s.version is not x.y.z" % ext)
if m.get("version") != upstream or m.get("version") != dist:
    problems.append("versions differ: META.json %s, debian/changelog %s, Makefile DIST_VERSION %s"
                    % (m.get("version"), upstream, dist))
for p in problems:
    print("META.json: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}
check "META.json is PGXN meta-spec 1.0.0; version $upstream_ver in META.json, debian/changelog, make dist" meta_ok

# debian/control is what `pg_buildext updatecontrol` makes of control.in when
# every major of debian/pgversions is supported: one package for each.
control_ok() {
	local t rc=0
	t=$(mktemp -d)
	cp -a "$ROOT/debian" "$t/"
	(cd "$t" && PG_SUPPORTED_VERSIONS="$(grep -v '^#' debian/pgversions)" \
		pg_buildext updatecontrol) >&2 &&
		diff -u "$ROOT/debian/control" "$t/debian/control" >&2 || rc=1
	rm -rf "$t"
	return $rc
}
check "debian/control names every major of debian/pgversions (pg_buildext updatecontrol)" control_ok

# --- 3. build ---------------------------------------------------------------
# Build in a copy, never in the tree: no stale objects of a `make` there, and
# the tree gets no debian/ build litter.  The copy is what git would see --
# tracked files plus new ones not yet added, without ignored build products
# (*.o, *.so, results/) -- so it is the work tree as it is now, in CI's fresh
# clone as on a developer's machine.
STAGE=$(mktemp -d /tmp/opsmig_fdw-pkg.XXXXXX)
# The build-time check (debian/rules) runs a server as "postgres", which must
# reach the staged extension files.
chmod 755 "$STAGE"
SRC="$STAGE/opsmig-fdw-$upstream_ver"
mkdir "$SRC"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		# Skip files deleted but not yet `git rm`ed, and pg_buildext's
		# build-NN dirs if someone built in the tree.
		[ -e "$ROOT/$f" ] || continue
		case $f in build-[0-9]*/*) continue ;; esac
		printf '%s\0' "$f"
	done | tar -C "$ROOT" --null -T - -cf - | tar -C "$SRC" -xf -

log "dpkg-buildpackage -us -uc -b (log: $STAGE/build.log)"
# For the majors this host's Debian supports (12: 15 only), as pg_buildext
# itself does for a backports build: its clean step refuses a debian/control
# that names majors the host cannot build.
build_ok() {
	(cd "$SRC" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b) >"$STAGE/build.log" 2>&1 && return 0
	tail -n 40 "$STAGE/build.log" >&2
	return 1
}
check "dpkg-buildpackage -us -uc -b builds $PKG $changelog_ver" build_ok

DEB_NAME="${PKG}_${changelog_ver}_$(dpkg --print-architecture).deb"
[ -f "$STAGE/$DEB_NAME" ] || { log "no $DEB_NAME was built"; exit 1; }
mkdir -p "$ROOT/dist"
cp "$STAGE/$DEB_NAME" "$ROOT/dist/"
DEB="$ROOT/dist/$DEB_NAME"
log "built dist/$DEB_NAME"

deb_depends=$(dpkg-deb -f "$DEB" Depends)
log "Depends: $deb_depends"
depends_ok() {
	local d=", $deb_depends,"
	[[ $d == *", postgresql-15,"* || $d == *", postgresql-15 "* ]] &&
		[[ $d == *", libcurl4 "* && $d == *", libjson-c5 "* ]]
}
check "the package depends on postgresql-15, libcurl4 and libjson-c5" depends_ok

# --- 4. install -------------------------------------------------------------
PKGLIB=$(pg_config --pkglibdir)
EXTDIR="$(pg_config --sharedir)/extension"
# Save what a `make install` left (files no package owns): dpkg -i overwrites
# them and the purge deletes them.
if [ -n "$(pkg_version "$PKG")" ]; then
	log "$PKG was already installed (an earlier run that was killed?): it is purged at the end"
fi
BACKUP="$STAGE/backup"
mkdir -p "$BACKUP/root"
saved=()
for f in "$PKGLIB/opsmig_fdw.so" "$EXTDIR"/opsmig_fdw.control "$EXTDIR"/opsmig_fdw--*.sql \
	"$PKGLIB/bitcode/opsmig_fdw.index.bc" "$PKGLIB"/bitcode/opsmig_fdw/*.bc; do
	[ -f "$f" ] || continue
	dpkg -S "$f" >/dev/null 2>&1 && continue
	mkdir -p "$BACKUP/root${f%/*}"
	cp -a "$f" "$BACKUP/root$f"
	saved+=("$f")
done
if [ ${#saved[@]} -gt 0 ]; then
	log "saved ${#saved[@]} files of an earlier make install, to put back after the purge"
	RESTORE_PENDING=1
fi

INSTALLED=1
# dpkg's progress goes to stderr with the other logs; stdout keeps the checks.
install_ok() { as_root dpkg -i "$DEB" >&2; }
check "dpkg -i dist/$DEB_NAME" install_ok
# Its output, not only its status: it lists each file that differs.
verify_ok() {
	local out
	if out=$(as_root dpkg --verify "$PKG") && [ -z "$out" ]; then return 0; fi
	echo "$out" >&2
	return 1
}
check "dpkg --verify: the installed files are the package's" verify_ok

files=$(dpkg -L "$PKG")
log "dpkg -L $PKG:"
printf '    %s\n' "${files//$'\n'/$'\n'    }" >&2
listed() { grep -qxF -- "$1" <<<"$files"; }
check "dpkg -L lists $PKGLIB/opsmig_fdw.so" listed "$PKGLIB/opsmig_fdw.so"
check "dpkg -L lists $EXTDIR/opsmig_fdw.control" listed "$EXTDIR/opsmig_fdw.control"
# Every SQL script of the tree: the install script and any upgrade scripts.
sql_ok() {
	local f ok=0 n=0
	for f in "$SRC"/opsmig_fdw--*.sql; do
		n=$((n + 1))
		listed "$EXTDIR/$(basename "$f")" || { log "not in the package: $(basename "$f")"; ok=1; }
	done
	[ "$n" -gt 0 ] && return $ok
}
check "dpkg -L lists every opsmig_fdw--*.sql of the tree" sql_ok

# --- 5. smoke test ----------------------------------------------------------
start_services --orgs 5   # 5 organizations, 4 of them linked
# The private key goes in as a psql variable, is never echoed (no -e/-a), and
# is masked in anything printed, errors included.
mask() { sed "s/$SIM_PRIVATE_KEY/<private key>/g"; }
setup_ok() {
	local out
	out=$(psql -X -q -v ON_ERROR_STOP=1 -v base_url="$SIM_URL/api/public/v1.0" \
		-v public_key="$SIM_PUBLIC_KEY" -v private_key="$SIM_PRIVATE_KEY" 2>&1 <<'SQL'
CREATE EXTENSION opsmig_fdw;
CREATE SERVER opsmanager FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER opsmanager
  OPTIONS (public_key :'public_key', private_key :'private_key');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER opsmanager INTO public;
SQL
	) && return 0
	mask <<<"$out" >&2
	return 1
}
check "CREATE EXTENSION, SERVER, USER MAPPING, IMPORT FOREIGN SCHEMA opsmig" setup_ok

count=$(psql -X -At -v ON_ERROR_STOP=1 -c 'SELECT count(*) FROM org_migration_links' 2>&1 | mask || true)
check "SELECT count(*) FROM org_migration_links = 4 (got: $count)" test "$count" = 4

# shellcheck disable=SC2034 # lib_teardown reads SIM_PID
lib_teardown; WORK='' SIM_PID=''

# --- 6. purge ---------------------------------------------------------------
purged_ok() {
	purge_package || return 1
	[ -z "$(pkg_version "$PKG")" ] || return 1
	local f
	while IFS= read -r f; do
		[ -f "$f" ] && { log "still there after the purge: $f"; return 1; }
	done <<<"$files"
	return 0
}
check "dpkg --purge removes the package and its files" purged_ok

if [ -n "$RESTORE_PENDING" ]; then
	restored_ok() {
		restore_make_install || return 1
		local f
		for f in "${saved[@]}"; do cmp -s "$BACKUP/root$f" "$f" || return 1; done
	}
	check "the earlier make install's ${#saved[@]} files are back" restored_ok
fi

rm -rf "$STAGE"; STAGE=
echo "package: $passed passed, $failed failed"
SUMMARY_DONE=1
[ "$failed" -eq 0 ]
