#!/bin/bash
# demo.sh: `make demo`. A real local cluster on loopback: four supervisors
# (ideal size 3) and an agent per host, then a deploy of
# examples/hostname-deploy.yaml, then `mgmt-supervisor status`: members, the
# coordinator and its plan, each host's deploy status. Runs until Ctrl-C, then stops everything it
# started and removes its temp dir.
#
#   MGMT_BIN=DIR   where the programs are (default: build)
#   DEMO_ONCE=1    print the table and exit: 0 if 3 voting members and every
#                  host converged on the deploy, else 1
#   DEMO_HOSTS=N   number of hosts (default 4); DEMO_IDEAL=N ideal size (3)
#   DEMO_KEEP=1    keep the temp dir (logs) after stopping
set -u

cd "$(dirname "$0")/.."
BIN=${MGMT_BIN:-build}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
HOSTS=${DEMO_HOSTS:-4}
IDEAL=${DEMO_IDEAL:-3}
export ETCDCTL_API=3
# the demo runs its own MGMT_* settings; don't inherit an operator's
unset MGMT_SEEDS MGMT_PREFIX MGMT_HOSTNAME MGMT_CONFIG MGMT_CLIENT_URLS MGMT_SERVER_URLS \
        MGMT_ADVERTISE_CLIENT_URLS MGMT_ADVERTISE_SERVER_URLS MGMT_NO_SERVER MGMT_TMP_PREFIX \
        MGMT_FILE MGMT_ONCE NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
export MGMT_LOG_LEVEL=${MGMT_LOG_LEVEL:-info}

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for p in mgmt-supervisor mgmt-agent mgmt-deploy; do
        [ -x "$BIN/$p" ] || die "'$BIN/$p' not found: run 'make' first (or set MGMT_BIN)"
done
for p in etcd etcdctl ss; do
        command -v "$p" >/dev/null || die "'$p' not found: run 'make deps'"
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/mgmt-demo.XXXXXX") || die "cannot create a temp dir"
PIDS=()
CREATED=()
STOPPED=0

# Stop what we started, agents first (newest first), by PID only.
cleanup() {
        [ "$STOPPED" = 1 ] && return
        STOPPED=1
        local i pid
        say "stopping..."
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
                kill -TERM "${PIDS[i]}" 2>/dev/null
        done
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
                pid=${PIDS[i]}
                for _ in $(seq 1 200); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        for d in "${CREATED[@]}"; do rm -rf "$d"; done
        if [ -n "${DEMO_KEEP:-}" ]; then
                say "logs kept in $DIR"
        else
                rm -rf "$DIR"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports from 23790 upward, checked with ss.
NEXT_PORT=23790
next_port() {
        while ss -Htln "sport = :$NEXT_PORT" 2>/dev/null | grep -q .; do
                NEXT_PORT=$((NEXT_PORT + 1))
        done
        PORT=$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
}

start() {
        local name=$1
        shift
        "$@" > "$DIR/$name.log" 2>&1 &
        PIDS+=($!)
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.5 s.
wait_for() {
        local t=$1 what=$2 deadline
        shift 2
        deadline=$(($(date +%s) + t))
        until "$@" >/dev/null 2>&1; do
                if [ "$(date +%s)" -ge "$deadline" ]; then
                        say "timed out after ${t}s waiting for $what"
                        return 1
                fi
                sleep 0.5
        done
}

URLS=()
for i in $(seq 1 "$HOSTS"); do
        next_port; cport=$PORT
        next_port; pport=$PORT
        URLS+=("http://127.0.0.1:$cport")
        eval "PPORT_$i=$pport"
done
ALL_URLS=$(IFS=,; echo "${URLS[*]}")
SEED=${URLS[0]}

ectl() { etcdctl --endpoints "$ALL_URLS" --dial-timeout 2s --command-timeout 5s "$@" 2>/dev/null; }

say "temp dir $DIR; logs in $DIR/*.log"
for i in $(seq 1 "$HOSTS"); do
        pport=PPORT_$i
        seeds=()
        [ "$i" -gt 1 ] && seeds=(--seeds "$SEED")
        say "starting supervisor h$i: client ${URLS[i-1]}, peer http://127.0.0.1:${!pport}"
        start "h$i" "$BIN/mgmt-supervisor" --hostname "h$i" --prefix "$DIR/h$i" \
                --client-urls "${URLS[i-1]}" --server-urls "http://127.0.0.1:${!pport}" \
                --ideal-cluster-size "$IDEAL" "${seeds[@]}"
        if [ "$i" = 1 ]; then
                wait_for 30 "the seed h1 to serve" curl -fsS --max-time 2 "$SEED/health" ||
                        { tail -n 20 "$DIR/h1.log" >&2; exit 1; }
        fi
done

voting_started() {
        local list
        list=$(ectl member list) || return 1
        [ "$(echo "$list" | awk -F', ' '$2 == "started" && $6 == "false"' | wc -l)" -eq "$IDEAL" ] &&
                [ "$(echo "$list" | grep -c .)" -eq "$IDEAL" ]
}
say "waiting for $IDEAL voting members..."
ok=1
wait_for 120 "$IDEAL voting members" voting_started || ok=0

for i in $(seq 1 "$HOSTS"); do
        # files of the example graph land in /tmp/mgmt-hN: remove them afterwards if we made them
        [ -e "/tmp/mgmt-h$i" ] || CREATED+=("/tmp/mgmt-h$i")
        start "agent-h$i" "$BIN/mgmt-agent" --hostname "h$i" --seeds "${URLS[i-1]},$ALL_URLS" \
                --prefix "$DIR/agent-h$i"
done
# --wait waits for the agents that report a status: let them all report first
agents_reporting() { [ "$(ectl get --prefix /_mgmt/converged/ --keys-only | grep -c converged/)" -eq "$HOSTS" ]; }
wait_for 30 "$HOSTS agents to report" agents_reporting || ok=0

GRAPH=examples/hostname-deploy.yaml
if [ ! -f "$GRAPH" ]; then
        GRAPH=$DIR/demo.yaml
        cat > "$GRAPH" <<'EOF'
graph: demo
resources:
  file:
  - name: motd
    path: "/tmp/mgmt-${hostname}/motd"
    content: "this is ${hostname}, configured by mgmt\n"
    state: exists
  print:
  - name: ready
    msg: "${hostname} applied the demo graph"
edges:
- name: motd-ready
  from: {kind: file, name: motd}
  to: {kind: print, name: ready}
EOF
fi
say "deploying $GRAPH"
"$BIN/mgmt-deploy" --seeds "$ALL_URLS" --wait --timeout 60 yaml "$GRAPH" >&2 || ok=0
DEPLOY=$(ectl get --prefix /_mgmt/deploy/ --keys-only | sed -n 's|^/_mgmt/deploy/\([0-9]*\)/payload$|\1|p' |
        sort -n | tail -n 1)

# The table, on stdout: `mgmt-supervisor status` (latest deploy in the header line of the demo).
print_table() {
        echo
        printf 'latest deploy: %s\n' "${DEPLOY:-none}"
        "$BIN/mgmt-supervisor" status --seeds "$ALL_URLS" || say "mgmt-supervisor status failed"
        echo
}
all_converged() {
        local i st
        [ -n "$DEPLOY" ] || return 1
        for i in $(seq 1 "$HOSTS"); do
                st=$(ectl get "/_mgmt/status/h$i" --print-value-only)
                [ "$(printf '%s' "$st" | jq -r '"\(.deploy) \(.state)"' 2>/dev/null)" = "$DEPLOY converged" ] ||
                        return 1
        done
}

print_table
voting_started || ok=0
all_converged || ok=0

if [ -n "${DEMO_ONCE:-}" ]; then
        # under a sanitizer build, any report fails the demo
        if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$DIR"/*.log >&2 2>/dev/null; then
                say "sanitizer report in the logs above"
                ok=0
        fi
        if [ "$ok" = 1 ]; then
                say "ok: $IDEAL voting members, every host converged on deploy $DEPLOY"
                exit 0
        fi
        say "FAILED: see the table above; last lines of the logs:"
        for f in "$DIR"/*.log; do
                echo "--- $f" >&2
                tail -n 15 "$f" >&2
        done
        exit 1
fi

cat >&2 <<EOF
demo: the cluster is running. Try, in another terminal:
  export ETCDCTL_API=3
  $BIN/mgmt-supervisor status --seeds $ALL_URLS --watch
  etcdctl --endpoints $SEED put /_mgmt/idealClusterSize 1
  $BIN/mgmt-deploy --seeds $SEED status
  cat /tmp/mgmt-h1/motd
  kill <pid> of a supervisor (ps -o pid,args -p ${PIDS[*]}) and watch it being replaced
demo: press Ctrl-C to stop everything.
EOF
sleep infinity &
PIDS+=($!)
wait $!
