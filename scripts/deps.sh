#!/bin/sh
# deps.sh: install the Debian packages this project needs to build, test and
# run its demo, only those missing (idempotent). Run as root, or with sudo.
# Then fetch etcd 3.5 (Debian 13's) into a cache for the tests, without
# installing it (scripts/etcd35.sh); a failure there is only reported here:
# scripts/check.sh counts it.
#   MGMT_ETCD_VERSIONS="3.4 3.5"   the etcd versions the tests run on;
#                                  without 3.5 nothing is fetched
set -eu
PKGS="gcc make pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libsystemd-dev libbsd-dev
check bats clang-format libmicrohttpd-dev etcd-server etcd-client openssl curl iproute2 procps clang libclang-rt-14-dev systemd python3 jq
debian-archive-keyring debootstrap systemd-container"
# the status page test drives a headless browser
PKGS="$PKGS chromium"
[ -n "${MGMT_EXTRA_PKGS:-}" ] && PKGS="$PKGS $MGMT_EXTRA_PKGS"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
etcd35() {
        case " ${MGMT_ETCD_VERSIONS:-3.4 3.5} " in
        *" 3.5 "*)
                "$(dirname "$0")/etcd35.sh" >/dev/null ||
                        echo "deps: etcd 3.5 could not be fetched (see above); the tests on etcd 3.5 will fail" >&2
                ;;
        esac
        return 0
}
if [ -z "$missing" ]; then
        echo "deps: all packages present"
        etcd35
        exit 0
fi
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps Debian's own etcd.service from starting on 2379/2380:
# the supervisor runs etcd itself.
if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 0755 /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
etcd35
