#!/bin/sh
# etcd35.sh: fetch Debian 13 (trixie)'s etcd 3.5 (packages etcd-server and
# etcd-client) as .debs from Debian's archive through a private apt
# configuration, and unpack them into a cache directory, so that the tests can
# run against etcd 3.5 beside the system's etcd 3.4. Nothing is installed:
# the system's apt state, sources and etcd stay as they are.
#
# On success prints the directory holding etcd, etcdctl and etcdutl 3.5 (for
# MGMT_TEST_ETCD_DIR) on stdout and exits 0; progress and errors go to stderr.
# A present cache is reused without touching the network.
#
#   MGMT_ETCD35_CACHE=DIR   cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/mgmt/etcd-3.5)
#   MGMT_DEBIAN_MIRROR=URL  Debian archive (default http://deb.debian.org/debian)
#   MGMT_ETCD35_SUITE=NAME  suite (default trixie)
set -eu
SUITE=${MGMT_ETCD35_SUITE:-trixie}
MIRROR=${MGMT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
CACHE=${MGMT_ETCD35_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mgmt/etcd-3.5}
BIN=$CACHE/bin

say() { echo "etcd35: $*" >&2; }
die() { say "$*"; exit 1; }

# a present, working cache is reused
cached() {
        [ -x "$BIN/etcd" ] && [ -x "$BIN/etcdctl" ] && [ -x "$BIN/etcdutl" ] &&
                "$BIN/etcd" --version 2>/dev/null | grep -q '^etcd Version: 3\.5\.'
}
if cached; then
        echo "$BIN"
        exit 0
fi

command -v apt-get >/dev/null || die "'apt-get' not found: cannot fetch etcd 3.5 from Debian's archive"
command -v dpkg-deb >/dev/null || die "'dpkg-deb' not found: cannot unpack etcd 3.5"
[ -r "$KEYRING" ] || die "'$KEYRING' not readable (package debian-archive-keyring): cannot verify Debian's archive"

mkdir -p "$CACHE" || die "cannot create cache '$CACHE'"
# one fetch at a time (two test runs sharing the cache)
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock '$CACHE/.lock'"
if cached; then
        echo "$BIN"
        exit 0
fi
APT=$CACHE/apt
mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" "$APT/etc/trusted.gpg.d" \
        "$APT/state/lists/partial" "$APT/cache/archives/partial" || die "cannot create '$APT'"
: >"$APT/state/status"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$APT/etc/sources.list"
# Private sources, lists, package cache and (empty) dpkg status: apt sees
# only trixie and leaves the system's own lists alone. As root, apt would
# drop to user _apt for downloads, which cannot write into a private cache
# under root's home.
set -- -q -o "Dir::Etc::sourcelist=$APT/etc/sources.list" \
        -o "Dir::Etc::sourceparts=$APT/etc/sources.list.d" \
        -o "Dir::Etc::preferences=$APT/etc/preferences" \
        -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d" \
        -o "Dir::Etc::trustedparts=$APT/etc/trusted.gpg.d" \
        -o "Dir::State=$APT/state" -o "Dir::State::status=$APT/state/status" \
        -o "Dir::Cache=$APT/cache" -o "APT::Sandbox::User=$(id -un)" \
        -o "Acquire::Retries=3" -o "Acquire::http::Timeout=30"

say "fetching the package lists of Debian '$SUITE' from '$MIRROR' into '$APT'"
apt-get "$@" update >"$APT/update.log" 2>&1 || {
        cat "$APT/update.log" >&2
        die "apt-get update of Debian '$SUITE' failed (no network, or '$MIRROR' unreachable): cannot test etcd 3.5"
}
# apt-get update exits 0 even when a list could not be fetched
grep -qE '^(W|E): ' "$APT/update.log" && { cat "$APT/update.log" >&2; }

DEBS=$APT/debs
rm -rf "$DEBS"
mkdir -p "$DEBS"
say "downloading etcd-server and etcd-client from Debian '$SUITE'"
(cd "$DEBS" && apt-get "$@" download etcd-server etcd-client) >"$APT/download.log" 2>&1 || {
        cat "$APT/download.log" >&2
        die "apt-get download of etcd-server, etcd-client from Debian '$SUITE' failed (no network, or '$MIRROR' unreachable?): cannot test etcd 3.5"
}

# unpack beside the cache, then move into place: an interrupted run leaves
# no half cache behind
NEW=$CACHE/root.new
rm -rf "$NEW"
for d in "$DEBS"/etcd-server_*.deb "$DEBS"/etcd-client_*.deb; do
        [ -f "$d" ] || die "no '$(basename "$d")' after apt-get download (see '$APT/download.log')"
        dpkg-deb -x "$d" "$NEW" || die "dpkg-deb -x '$d' failed"
done
for b in etcd etcdctl etcdutl; do
        [ -x "$NEW/usr/bin/$b" ] || die "'usr/bin/$b' missing from the unpacked packages in '$NEW'"
done
v=$("$NEW/usr/bin/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p')
case "$v" in
3.5.*) ;;
*) die "the unpacked etcd from Debian '$SUITE' reports version '${v:-none}', not 3.5.x" ;;
esac
rm -rf "$CACHE/root" "$BIN"
mv "$NEW" "$CACHE/root"
mkdir -p "$BIN"
for b in etcd etcdctl etcdutl; do
        ln -s "../root/usr/bin/$b" "$BIN/$b"
done
rm -rf "$DEBS"
say "etcd $v unpacked into '$BIN'"
echo "$BIN"
