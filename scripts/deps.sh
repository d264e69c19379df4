#!/bin/sh
# deps.sh: install the Debian packages this project needs to build, test and
# run its demo, only those missing (idempotent). Run as root, or with sudo.
set -eu
PKGS="gcc make pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libsystemd-dev libbsd-dev
check bats libmicrohttpd-dev etcd-server etcd-client openssl curl iproute2 procps clang libclang-rt-14-dev systemd python3 jq"
# the status page test drives a headless browser
PKGS="$PKGS chromium"
[ -n "${MGMT_EXTRA_PKGS:-}" ] && PKGS="$PKGS $MGMT_EXTRA_PKGS"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
        echo "deps: all packages present"
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
