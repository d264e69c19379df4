# lib.bash: shared bats helpers. Every process a test starts is recorded by PID
# and killed in teardown; etcd and our daemons run on free loopback ports in a
# per-test temp dir.
#
#   load lib
#   setup()    { mgmt_setup; }
#   teardown() { mgmt_teardown; }
#   start_etcd NAME           -> ETCD_ENDPOINT, ETCD_PEER, ETCD_PID_<NAME>
#   start_bg NAME CMD...      -> background process, log in $TMP/NAME.log, PID in $TMP/NAME.pid
#   stop_bg NAME [SIG]        -> kill one we started, and wait for it
#   wait_until SECONDS CMD... -> poll CMD until it succeeds (fails the test on timeout)
#   free_port                 -> a free loopback TCP port

: "${MGMT_BIN:=$BATS_TEST_DIRNAME/../../build}"
export MGMT_BIN
export ETCDCTL_API=3

# MGMT_TEST_ETCD_DIR=DIR: etcd and etcdctl from DIR (scripts/check.sh sets it
# for etcd 3.5, see scripts/etcd35.sh), else from PATH. Everything the tests
# start, the supervisors' etcd children included, finds them through PATH.
if [ -n "${MGMT_TEST_ETCD_DIR:-}" ]; then
        if [ ! -x "$MGMT_TEST_ETCD_DIR/etcd" ]; then
                echo "MGMT_TEST_ETCD_DIR: no executable 'etcd' in '$MGMT_TEST_ETCD_DIR'" >&2
                return 1
        fi
        case ":$PATH:" in
        "$MGMT_TEST_ETCD_DIR:"*) ;;
        *) PATH="$MGMT_TEST_ETCD_DIR:$PATH" ;;
        esac
        export PATH
fi

mgmt_setup() {
        TMP=$(mktemp -d "${BATS_TMPDIR:-/tmp}/mgmt-test.XXXXXX")
        export TMP
        : > "$TMP/.pids"
        export MGMT_LOG_LEVEL=${MGMT_LOG_LEVEL:-debug}
}

mgmt_teardown() {
        local pid
        if [ -n "${TMP:-}" ] && [ -f "$TMP/.pids" ]; then
                # newest first: daemons before the etcd they talk to
                tac "$TMP/.pids" | while read -r pid; do
                        kill -TERM "$pid" 2>/dev/null || true
                done
                tac "$TMP/.pids" | while read -r pid; do
                        for _ in $(seq 1 100); do
                                kill -0 "$pid" 2>/dev/null || break
                                sleep 0.1
                        done
                        kill -KILL "$pid" 2>/dev/null || true
                done
                # fail on sanitizer reports in any log we produced
                if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP"/*.log 2>/dev/null; then
                        echo "sanitizer report in logs above" >&2
                        grep -h -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP"/*.log >&2
                        [ -n "${MGMT_KEEP_TMP:-}" ] || rm -rf "$TMP"
                        return 1
                fi
                [ -n "${MGMT_KEEP_TMP:-}" ] || rm -rf "$TMP"
        fi
}

# A free TCP port on 127.0.0.1, not handed out before in this test run,
# drawn below the kernel's ephemeral range (ip_local_port_range) so that no
# outgoing loopback connection holds it, and not in use in any state.
free_port() {
        local p lo
        lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
        [ "${lo:-0}" -gt 21000 ] || lo=32768
        while :; do
                p=$(( (RANDOM % (lo - 20000)) + 20000 ))
                if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q . &&
                   ! grep -qx "$p" "${BATS_RUN_TMPDIR:-/tmp}/.mgmt-ports" 2>/dev/null; then
                        echo "$p" >> "${BATS_RUN_TMPDIR:-/tmp}/.mgmt-ports"
                        echo "$p"
                        return
                fi
        done
}

start_bg() {
        local name=$1
        shift
        "$@" > "$TMP/$name.log" 2>&1 &
        local pid=$!
        echo "$pid" >> "$TMP/.pids"
        echo "$pid" > "$TMP/$name.pid"
}

stop_bg() {
        local name=$1 sig=${2:-TERM} pid
        pid=$(cat "$TMP/$name.pid")
        kill -"$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
                kill -0 "$pid" 2>/dev/null || return 0
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
}

# start_etcd NAME [extra etcd flags...]: a one-member etcd on free ports.
start_etcd() {
        local name=$1
        shift
        local cport pport
        cport=$(free_port)
        pport=$(free_port)
        ETCD_ENDPOINT=http://127.0.0.1:$cport
        ETCD_PEER=http://127.0.0.1:$pport
        export ETCD_ENDPOINT ETCD_PEER
        start_bg "$name" etcd --name "$name" --data-dir "$TMP/$name.etcd" \
                --listen-client-urls "$ETCD_ENDPOINT" --advertise-client-urls "$ETCD_ENDPOINT" \
                --listen-peer-urls "$ETCD_PEER" --initial-advertise-peer-urls "$ETCD_PEER" \
                --initial-cluster "$name=$ETCD_PEER" "$@"
        wait_until 20 etcd_healthy "$ETCD_ENDPOINT"
}

etcd_healthy() {
        curl -fsS --max-time 2 "$1/health" 2>/dev/null | grep -q '"health":"true"'
}

# wait_until SECONDS CMD...: poll every 0.1 s; on timeout print the last output and fail.
wait_until() {
        local t=$1
        shift
        local deadline=$(( $(date +%s%N) / 1000000 + t * 1000 ))
        while :; do
                if "$@" > "$TMP/.wait_out" 2>&1; then
                        return 0
                fi
                if [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ]; then
                        echo "timed out after ${t}s waiting for: $*" >&2
                        cat "$TMP/.wait_out" >&2
                        return 1
                fi
                sleep 0.1
        done
}

ectl() {
        etcdctl --endpoints "${ENDPOINTS:-$ETCD_ENDPOINT}" --dial-timeout 3s --command-timeout 5s "$@"
}
