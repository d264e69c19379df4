# bench/lib.sh: helpers for bench/run.sh (sourced, not run).
# Process bookkeeping: every process the harness starts goes through bg(),
# which records its PID; stop() and cleanup() kill only those PIDs and their
# descendants (the etcd children of supervisors, the members of a watcher
# pipeline), never anything found by name.

PIDS=()
LASTPID=

now() { printf '%s\n' "$EPOCHREALTIME"; }
# elapsed T0 [T1]: seconds between two now() stamps, 3 decimals
elapsed() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.3f\n", b - a }'; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bg LOG CMD...: start CMD in the background, output to LOG; PID in LASTPID
bg() {
        local out=$1
        shift
        "$@" >"$out" 2>&1 </dev/null &
        LASTPID=$!
        PIDS+=("$LASTPID")
}

# descendants PID...: all descendants of the PIDs, children after their
# parents, from one process table snapshot (a pgrep per process took minutes
# for the 1,000 watcher pipelines of the deploy floor)
descendants() {
        ps -eo pid=,ppid= 2>/dev/null | awk -v roots="$*" '
                { kids[$2] = kids[$2] " " $1 }
                END {
                        n = split(roots, q, " ")
                        for (i = 1; i <= n; i++) {
                                m = split(kids[q[i]], k, " ")
                                for (j = 1; j <= m; j++) { print k[j]; q[++n] = k[j] }
                        }
                }'
}

# stop [-9] PID...: TERM (or KILL) each PID we started and its descendants,
# wait up to 5 s, then KILL what is left; forget the PIDs
stop() {
        local sig=TERM p all=() deadline keep=()
        local -A gone=()
        if [ "${1:-}" = -9 ]; then sig=KILL; shift; fi
        for p in "$@"; do [ -n "$p" ] && all+=("$p"); done
        [ ${#all[@]} -gt 0 ] || return 0
        all+=($(descendants "${all[@]}"))
        kill -s "$sig" "${all[@]}" 2>/dev/null
        deadline=$((SECONDS + 5))
        while [ $SECONDS -lt $deadline ]; do
                local alive=0
                for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && { alive=1; break; }; done
                [ $alive = 0 ] && break
                sleep 0.05
        done
        kill -s KILL "${all[@]}" 2>/dev/null
        for p in "$@"; do
                [ -n "$p" ] || continue
                wait "$p" 2>/dev/null
                gone[$p]=1
        done
        for p in "${PIDS[@]}"; do [ -n "${gone[$p]:-}" ] || keep+=("$p"); done
        PIDS=("${keep[@]}")
        return 0
}

stop_all() { [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"; PIDS=(); }

# alloc_port: a free loopback TCP port not handed out before in this run
USED_PORTS=" "
alloc_port() {
        local p tries=0
        while [ $tries -lt 200 ]; do
                p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
                tries=$((tries + 1))
                case "$USED_PORTS" in *" $p "*) continue ;; esac
                if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]; then
                        USED_PORTS+="$p "
                        echo "$p"
                        return 0
                fi
        done
        return 1
}

# wait_until TIMEOUT CMD...: poll CMD every 50 ms; 0 when it succeeds
wait_until() {
        local limit=$1
        shift
        local deadline=$(awk -v a="$EPOCHREALTIME" -v t="$limit" 'BEGIN { printf "%.3f", a + t }')
        while :; do
                "$@" && return 0
                awk -v a="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(a > d) }' && return 1
                sleep 0.05
        done
}

ectl() { etcdctl --dial-timeout=1s --command-timeout=2s "$@"; }

# healthy URL: /health of a client URL answers true
healthy() { curl -sf -m 1 "$1/health" 2>/dev/null | grep -q '"health": *"true"'; }

# cluster_ok N ENDPOINTS: exactly N members, all started voters (named, not
# learners), each answering /health on its client URLs
cluster_ok() {
        local want=$1 eps=$2 js n tot u
        js=$(ectl --endpoints "$eps" member list -w json 2>/dev/null) || return 1
        n=$(jq '[.members[]? | select((.isLearner // false) == false and (.name // "") != "")] | length' <<<"$js" 2>/dev/null) || return 1
        tot=$(jq '[.members[]?] | length' <<<"$js" 2>/dev/null) || return 1
        [ "$n" = "$want" ] && [ "$tot" = "$want" ] || return 1
        for u in $(jq -r '.members[].clientURLs[]?' <<<"$js"); do
                healthy "$u" || return 1
        done
        return 0
}

# count_keys ENDPOINTS PREFIX
count_keys() { ectl --endpoints "$1" get --prefix --keys-only "$2" 2>/dev/null | grep -c . ; }
keys_at_least() { [ "$(count_keys "$1" "$2")" -ge "$3" ]; }

# start_etcd NAME DIR CLIENT_PORT PEER_PORT INITIAL_CLUSTER [TOKEN]: a stock etcd
start_etcd() {
        local name=$1 dir=$2 cp=$3 pp=$4 ic=$5 tok=${6:-bench-$1-$3}
        mkdir -p "$dir"
        bg "$dir/$name.log" etcd --name "$name" --data-dir "$dir/$name.etcd" \
                --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
                --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
                --initial-cluster "$ic" --initial-cluster-token "$tok" --initial-cluster-state new
}

# proc_rss_kb PID / proc_cpu_ticks PID
proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# PSS: shared pages (libc, libcurl, OpenSSL...) divided among the processes mapping them
proc_pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
# memory only this process holds
proc_private_kb() { awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$1/smaps_rollup" 2>/dev/null; }
proc_cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
