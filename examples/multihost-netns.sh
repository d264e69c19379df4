#!/bin/bash
# multihost-netns.sh: three "hosts" in network namespaces on one machine, each
# running mgmt-supervisor on the standard ports 2379 (clients) and 2380 (peers)
# at its own address. The seed listens on 0.0.0.0 and advertises its address;
# the others join with --seeds http://<seed-address>:2379. Prints the member
# list, waits for Enter (or Ctrl-C), and removes everything it created.
#
# The hosts are joined by a bridge inside a fourth, private namespace: nothing
# is added to or routed through this machine's own network. Needs root.
#
#   sudo MGMT_BIN=build examples/multihost-netns.sh [SUBNET]   # SUBNET default 10.213.7
set -euo pipefail

MGMT_BIN=${MGMT_BIN:-build}
SUBNET=${1:-10.213.7}
ID=mgmt-demo-$$
BR=$ID-br
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mgmt-netns-demo.XXXXXX")
PIDS=()

cleanup() {
        trap - EXIT INT TERM
        echo "cleaning up"
        for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
        for i in 1 2 3; do ip netns del "$ID-h$i" 2>/dev/null || true; done
        ip netns del "$BR" 2>/dev/null || true
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "multihost-netns.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$MGMT_BIN/mgmt-supervisor" ] || { echo "multihost-netns.sh: no $MGMT_BIN/mgmt-supervisor (make, or set MGMT_BIN)" >&2; exit 1; }

# the network: br0 in its own namespace, one veth per host
ip netns add "$BR"
ip -n "$BR" link set lo up
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
for i in 1 2 3; do
        ns=$ID-h$i
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$BR" link add "v$i" type veth peer name eth0 netns "$ns"
        ip -n "$BR" link set "v$i" master br0 up
        ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        echo "host h$i: namespace $ns, address $SUBNET.$i"
done

# start_host I [flags...]: the supervisor of host I, logging to $WORK/hI.log
start_host() {
        local i=$1
        shift
        ip netns exec "$ID-h$i" "$MGMT_BIN/mgmt-supervisor" --hostname "h$i" --prefix "$WORK/h$i" \
                --client-urls http://0.0.0.0:2379 --server-urls http://0.0.0.0:2380 "$@" \
                > "$WORK/h$i.log" 2>&1 &
        PIDS+=($!)
}

members() {
        ip netns exec "$ID-h$1" etcdctl --endpoints "http://$SUBNET.$1:2379" --dial-timeout 2s member list -w table
}

start_host 1
echo "waiting for the seed h1"
until members 1 > /dev/null 2>&1; do sleep 0.5; done
start_host 2 --seeds "http://$SUBNET.1:2379"
start_host 3 --seeds "http://$SUBNET.1:2379"
echo "waiting for h2 and h3 to be nominated and join (up to 2 minutes)"
for _ in $(seq 1 240); do
        n=$(ip netns exec "$ID-h1" etcdctl --endpoints "http://$SUBNET.1:2379" member list 2>/dev/null |
                awk -F', ' '$2 == "started" && $6 == "false"' | wc -l)
        [ "$n" -eq 3 ] && break
        sleep 0.5
done
echo "member list as h3 sees it (every URL is the member's own address):"
members 3
echo
echo "logs: $WORK/h{1,2,3}.log"
echo "try: ip netns exec $ID-h2 etcdctl --endpoints http://$SUBNET.2:2379 put hello world"
if [ -t 0 ]; then
        read -r -p "press Enter to stop the cluster and remove the namespaces "
fi
