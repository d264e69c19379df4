#!/bin/bash
# bench/run.sh: `make bench`. Benchmarks mgmt against the floor stock etcd sets,
# with real processes on loopback (free ports, temporary directories), and
# writes bench/results.md (a table, also printed) and bench/results.png
# (a smoke run writes them to bench/out/ instead, which is also gitignored).
#
#   MGMT_BIN=DIR     where mgmt-supervisor, mgmt-agent, mgmt-deploy and
#                    tools/etcd-probe are (default build)
#   BENCH_SMOKE=1    smallest sizes, one repetition, short windows (make check)
#   BENCH_RUNS=N     repetitions in full mode (default 5)
#   BENCH_KEEP=1     keep the temporary directory (logs) for inspection
#   BENCH_ONLY=deploy
#                    run only the named sections (formation, deploy, watch,
#                    footprint, resize, failover; space-separated)
#   BENCH_DEPLOY_SIZES="1 10 50 200 1000"
#                    agent counts for deploy propagation (default 1 10 in a
#                    smoke run, 1 10 50 200 1000 otherwise; a size is
#                    skipped, reported n/a, when the host has too little
#                    memory available for it)
#   MGMT_ETCD_VERSIONS="3.4 3.5"
#                    the etcd versions to measure, one whole run each, one
#                    table each in results.md: 3.4 is the system's etcd, 3.5
#                    Debian 13's (scripts/etcd35.sh fetches it into a cache).
#                    Default: both in a full run, 3.4 alone in a smoke run
#   MGMT_TEST_ETCD_DIR=DIR
#                    etcd and etcdctl from DIR instead of PATH (one version)
#
# The benchmark never fails for being slow: a figure that cannot be measured
# (a program missing or failing, a timeout) is reported as "n/a (error: ...)".
# It exits non-zero only when the harness itself cannot run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=$ROOT/bench
. "$BENCH_DIR/lib.sh"

BIN=${MGMT_BIN:-build}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
SMOKE=${BENCH_SMOKE:-0}
[ "$SMOKE" = 0 ] && SMOKE=
if [ -n "$SMOKE" ]; then
        RUNS=1
        FORM_SIZES="3"
        DEPLOY_SIZES="1 10"
        FOOT_WINDOW=10
        FOOT_COPIES=1
        WATCH_EVENTS=2000
        WAIT_LIMIT=60
        BUDGET=150 # seconds: later sections are skipped past this
else
        RUNS=${BENCH_RUNS:-5}
        FORM_SIZES="3 5"
        DEPLOY_SIZES="1 10 50 200 1000"
        FOOT_WINDOW=60
        FOOT_COPIES=$RUNS
        WATCH_EVENTS=20000
        WAIT_LIMIT=180
        BUDGET=0
fi
DEPLOY_SIZES=${BENCH_DEPLOY_SIZES:-$DEPLOY_SIZES}
GRACE=2
START=$SECONDS
# section NAME: true when NAME is to run (BENCH_ONLY unset, or names it)
section() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
# a smoke run writes beside, not over, the last full results
if [ -n "$SMOKE" ]; then OUT_DIR=$BENCH_DIR/out; else OUT_DIR=$BENCH_DIR; fi
mkdir -p "$OUT_DIR" || exit 2

# side_by_side FILE...: one table of the medians (and ratios) of each
# per-version results file, a column pair per file, rows in first-seen order
side_by_side() {
        awk -F' *[|] *' '
                FNR == 1 { nf++; sub(/^# mgmt benchmarks \(etcd /, ""); sub(/\).*/, ""); ver[nf] = $0; next }
                /^[|] / && $2 != "figure" && $2 !~ /^-+$/ {
                        k = $2 " | " $3
                        if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
                        med[k, nf] = $4; rat[k, nf] = $8
                }
                END {
                        h = "| figure | N |"; u = "|---|---|"
                        for (i = 1; i <= nf; i++) { h = h " etcd " ver[i] " | ratio |"; u = u "---|---|" }
                        print h; print u
                        for (j = 1; j <= nk; j++) {
                                line = "| " keys[j] " |"
                                for (i = 1; i <= nf; i++) line = line " " med[keys[j], i] " | " rat[keys[j], i] " |"
                                print line
                        }
                }' "$@"
}

# several etcd versions: this script once per version (BENCH_ETCD_ONE set),
# each writing results-etcdV.md/.png, then results.md is their tables in turn
# (MGMT_TEST_ETCD_DIR alone: one run on that etcd)
if [ -z "${BENCH_ETCD_ONE:-}" ] && { [ -n "${MGMT_ETCD_VERSIONS:-}" ] || [ -z "${MGMT_TEST_ETCD_DIR:-}" ]; }; then
        versions=${MGMT_ETCD_VERSIONS:-$([ -n "$SMOKE" ] && echo 3.4 || echo "3.4 3.5")}
        if [ "$(echo $versions)" != 3.4 ]; then
                rc=0
                parts=()
                for ver in $versions; do
                        case "$ver" in
                        3.4) dir= ;;
                        3.5)
                                if ! dir=$("$ROOT/scripts/etcd35.sh"); then
                                        echo "bench: etcd 3.5 could not be fetched (scripts/etcd35.sh failed): no figures on etcd 3.5" >&2
                                        rc=2
                                        continue
                                fi
                                ;;
                        *)
                                echo "bench: MGMT_ETCD_VERSIONS: unknown etcd version '$ver' (known: 3.4 3.5)" >&2
                                rc=2
                                continue
                                ;;
                        esac
                        src="the system's"
                        [ -n "$dir" ] && src="from $dir"
                        echo "bench: == etcd $ver ($src)" >&2
                        BENCH_ETCD_ONE=$ver MGMT_TEST_ETCD_DIR=$dir "$BENCH_DIR/run.sh" || rc=$?
                        [ -f "$OUT_DIR/results-etcd$ver.md" ] && parts+=("$OUT_DIR/results-etcd$ver.md")
                done
                if [ ${#parts[@]} -gt 0 ]; then
                        {
                                echo "# mgmt benchmarks on etcd $(echo $versions | sed 's/ /, /g')"
                                echo
                                echo "Medians side by side (ratio: to the floor on the same etcd); each version's full table follows."
                                echo
                                side_by_side "${parts[@]}"
                                for f in "${parts[@]}"; do
                                        echo
                                        sed '1s/^# mgmt benchmarks/## mgmt benchmarks/' "$f"
                                done
                        } >"$OUT_DIR/results.md"
                        echo "bench: all versions in $OUT_DIR/results.md" >&2
                fi
                exit $rc
        fi
fi
if [ -n "${MGMT_TEST_ETCD_DIR:-}" ]; then
        if [ ! -x "$MGMT_TEST_ETCD_DIR/etcd" ]; then
                echo "bench: MGMT_TEST_ETCD_DIR: no executable 'etcd' in '$MGMT_TEST_ETCD_DIR'" >&2
                exit 2
        fi
        PATH=$MGMT_TEST_ETCD_DIR:$PATH
        export PATH
fi
ETCD_VERSION=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
RESULTS=results${BENCH_ETCD_ONE:+-etcd$BENCH_ETCD_ONE}

for t in etcd etcdctl jq curl ss awk pgrep; do
        if ! command -v "$t" >/dev/null; then
                echo "bench: '$t' is required but not installed" >&2
                exit 2
        fi
done

WORK=$(mktemp -d /tmp/mgmt-bench.XXXXXX) || exit 2
SAMPLES=$WORK/samples
: >"$SAMPLES"
# tmpfs for the agents' state and files in the deploy section's second
# variant: 200 agents on one disk are 200 hosts' file writes on one disk
SHM=
[ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && SHM=/dev/shm
SHM_DIRS=()
cleanup() {
        trap - EXIT INT TERM
        stop_all
        [ ${#SHM_DIRS[@]} -gt 0 ] && rm -rf "${SHM_DIRS[@]}"
        if [ -n "${BENCH_KEEP:-}" ]; then
                echo "bench: logs kept in $WORK" >&2
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# sample KEY VALUE: one measurement; VALUE "ERR text" for a failure
sample() { printf '%s %s\n' "$1" "$2" >>"$SAMPLES"; }
fail() { sample "$1" "ERR $2"; log "$1: $2"; }
over_budget() { [ "$BUDGET" -gt 0 ] && [ $((SECONDS - START)) -ge "$BUDGET" ]; }
have() { [ -x "$BIN/$1" ]; }

# ---- supervisors ----

declare -A SUP_PID SUP_CP SUP_SP
HOSTS=()
SUP_EXTRA=() # extra flags for every supervisor started
# start_sup DIR NAME IDEAL [SEED_URL]: a supervisor on fresh ports
start_sup() {
        local dir=$1 name=$2 ideal=$3 seed=${4:-} cp sp
        cp=$(alloc_port) && sp=$(alloc_port) || return 1
        mkdir -p "$dir/$name"
        local args=(--hostname "$name" --prefix "$dir/$name" --client-urls "http://127.0.0.1:$cp"
                --server-urls "http://127.0.0.1:$sp" --ideal-cluster-size "$ideal" --dead-member-grace "$GRACE")
        [ -n "$seed" ] && args+=(--seeds "$seed")
        args+=("${SUP_EXTRA[@]}")
        bg "$dir/$name.log" "$BIN/mgmt-supervisor" "${args[@]}"
        SUP_PID[$name]=$LASTPID
        SUP_CP[$name]=$cp
        SUP_SP[$name]=$sp
        HOSTS+=("$name")
}
# endpoints of the hosts alive, as a comma list
sup_eps() {
        local h out=
        for h in "${HOSTS[@]}"; do out+="${out:+,}http://127.0.0.1:${SUP_CP[$h]}"; done
        echo "$out"
}
stop_sups() {
        local h pids=()
        for h in "${HOSTS[@]}"; do pids+=("${SUP_PID[$h]}"); done
        [ ${#pids[@]} -gt 0 ] && stop "${pids[@]}"
        HOSTS=()
}
# a cluster of COUNT supervisors, ideal size IDEAL, started at once; the first
# bootstraps, the others seed from it
start_cluster() {
        local dir=$1 count=$2 ideal=$3 i
        start_sup "$dir" h1 "$ideal" || return 1
        local seed="http://127.0.0.1:${SUP_CP[h1]}"
        for ((i = 2; i <= count; i++)); do start_sup "$dir" "h$i" "$ideal" "$seed" || return 1; done
}

# ---- 1. formation ----

bench_formation() {
        local n run t0 d i ic eps
        for n in $FORM_SIZES; do
                for ((run = 1; run <= RUNS; run++)); do
                        over_budget && return
                        # ours
                        d=$WORK/form-$n-$run
                        HOSTS=()
                        t0=$(now)
                        if ! start_cluster "$d" "$n" "$n"; then
                                fail "form.ours.$n" "no free port"
                        elif wait_until "$WAIT_LIMIT" cluster_ok "$n" "$(sup_eps)"; then
                                sample "form.ours.$n" "$(elapsed "$t0")"
                        else
                                fail "form.ours.$n" "timeout after ${WAIT_LIMIT}s"
                        fi
                        stop_sups
                        # ours with etcd's own strict reconfiguration check back on
                        d=$WORK/form-strict-$n-$run
                        HOSTS=()
                        SUP_EXTRA=(--etcd-arg=--strict-reconfig-check=true)
                        t0=$(now)
                        if ! start_cluster "$d" "$n" "$n"; then
                                fail "form.strict.$n" "no free port"
                        elif wait_until "$WAIT_LIMIT" cluster_ok "$n" "$(sup_eps)"; then
                                sample "form.strict.$n" "$(elapsed "$t0")"
                        else
                                fail "form.strict.$n" "timeout after ${WAIT_LIMIT}s"
                        fi
                        SUP_EXTRA=()
                        stop_sups
                        # floor: stock etcd, all members known up front
                        d=$WORK/form-floor-$n-$run
                        local cps=() pps=()
                        ic= eps=
                        for ((i = 1; i <= n; i++)); do
                                cps[i]=$(alloc_port)
                                pps[i]=$(alloc_port)
                                ic+="${ic:+,}e$i=http://127.0.0.1:${pps[i]}"
                                eps+="${eps:+,}http://127.0.0.1:${cps[i]}"
                        done
                        local epids=()
                        t0=$(now)
                        for ((i = 1; i <= n; i++)); do
                                start_etcd "e$i" "$d" "${cps[i]}" "${pps[i]}" "$ic" "bench-floor-$n-$run-$$"
                                epids+=("$LASTPID")
                        done
                        if wait_until "$WAIT_LIMIT" cluster_ok "$n" "$eps"; then
                                sample "form.floor.$n" "$(elapsed "$t0")"
                        else
                                fail "form.floor.$n" "timeout after ${WAIT_LIMIT}s"
                        fi
                        stop "${epids[@]}"
                        rm -rf "$d"
                        log "formation N=$n run $run done"
                done
        done
}

# ---- 2. resize ----

bench_resize() {
        local d=$WORK/resize run t0 eps
        over_budget && return
        HOSTS=()
        start_cluster "$d" 5 3 || { fail resize.up "no free port"; fail resize.down "no free port"; return; }
        eps=$(sup_eps)
        if ! wait_until "$WAIT_LIMIT" cluster_ok 3 "$eps" ||
                ! wait_until "$WAIT_LIMIT" keys_at_least "$eps" /_mgmt/volunteer/ 5; then
                fail resize.up "five hosts did not settle at 3 members"
                fail resize.down "five hosts did not settle at 3 members"
                stop_sups
                return
        fi
        for ((run = 1; run <= RUNS; run++)); do
                over_budget && break
                t0=$(now)
                if ! ectl --endpoints "$eps" put /_mgmt/idealClusterSize 5 >/dev/null; then
                        fail resize.up "etcdctl put failed"
                        break
                fi
                if wait_until "$WAIT_LIMIT" cluster_ok 5 "$eps"; then
                        sample resize.up "$(elapsed "$t0")"
                else
                        fail resize.up "timeout after ${WAIT_LIMIT}s"
                        break
                fi
                t0=$(now)
                ectl --endpoints "$eps" put /_mgmt/idealClusterSize 3 >/dev/null
                if wait_until "$WAIT_LIMIT" cluster_ok 3 "$eps"; then
                        sample resize.down "$(elapsed "$t0")"
                else
                        fail resize.down "timeout after ${WAIT_LIMIT}s"
                        break
                fi
                # let the shrunk hosts volunteer again before the next round
                wait_until 30 keys_at_least "$eps" /_mgmt/volunteer/ 5
                log "resize run $run done"
        done
        stop_sups
}

# ---- 3. failover ----

# voters: names of the started voting members
voters() { ectl --endpoints "$1" member list -w json 2>/dev/null | jq -r '.members[]? | select((.isLearner // false) == false and (.name // "") != "") | .name' 2>/dev/null; }

bench_failover() {
        local d=$WORK/failover run t0 eps victim coord v h next=5 kids
        over_budget && return
        HOSTS=()
        start_cluster "$d" 4 3 || { fail failover "no free port"; return; }
        for ((run = 1; run <= RUNS; run++)); do
                over_budget && break
                eps=$(sup_eps)
                if ! wait_until "$WAIT_LIMIT" cluster_ok 3 "$eps" ||
                        ! wait_until "$WAIT_LIMIT" keys_at_least "$eps" /_mgmt/volunteer/ 4; then
                        fail failover "four hosts did not settle at 3 members"
                        break
                fi
                # the victim: the last-named voter that is not the coordinator
                coord=$(ectl --endpoints "$eps" get --print-value-only /_mgmt/coordinator 2>/dev/null)
                victim=
                for v in $(voters "$eps" | sort); do [ "$v" != "$coord" ] && victim=$v; done
                if [ -z "$victim" ] || [ -z "${SUP_PID[$victim]:-}" ]; then
                        fail failover "no victim found (coordinator '$coord')"
                        break
                fi
                kids=$(pgrep -P "${SUP_PID[$victim]}")
                t0=$(now)
                kill -KILL "${SUP_PID[$victim]}" $kids 2>/dev/null
                { stop -9 "${SUP_PID[$victim]}"; } 2>/dev/null
                local left=()
                for h in "${HOSTS[@]}"; do [ "$h" != "$victim" ] && left+=("$h"); done
                HOSTS=("${left[@]}")
                eps=$(sup_eps)
                if wait_until "$WAIT_LIMIT" cluster_ok 3 "$eps"; then
                        sample failover "$(awk -v e="$(elapsed "$t0")" -v g="$GRACE" 'BEGIN { printf "%.3f", e - g }')"
                else
                        fail failover "timeout after ${WAIT_LIMIT}s"
                        break
                fi
                log "failover run $run done (killed $victim)"
                # a fresh host takes the place of the dead one as volunteer
                start_sup "$d" "h$next" 3 "http://127.0.0.1:${SUP_CP[${HOSTS[0]}]}" || break
                next=$((next + 1))
        done
        stop_sups
}

# ---- 4. deploy propagation ----

# write_graph FILE RUN DIR: 10 resources (4 print, 3 noop, 3 file)
write_graph() {
        local f=$1 r=$2 dir=$3 i
        {
                echo "graph: bench"
                echo "resources:"
                echo "  print:"
                for i in 1 2 3 4; do printf '  - name: p%d\n    msg: "run %s on ${hostname} p%d"\n' $i "$r" $i; done
                echo "  noop:"
                for i in 1 2 3; do printf '  - name: n%d\n' $i; done
                echo "  file:"
                for i in 1 2 3; do
                        printf '  - name: f%d\n    path: "%s/${hostname}/f%d"\n    content: "run %s f%d\\n"\n    state: exists\n' \
                                $i "$dir" $i "$r" $i
                done
                echo "edges: []"
        } >"$f"
}

# watcher ENDPOINT KEY OUT: the floor's observer, a stock etcdctl watch; one
# timestamp per event in OUT
watcher() {
        etcdctl --endpoints "$1" watch "$2" | while IFS= read -r l; do
                [ "$l" = PUT ] && printf '%s\n' "$EPOCHREALTIME" >>"$3"
        done
}
# all_seen DIR N R: every one of N watchers printed R events
all_seen() {
        local c
        c=$(awk -v r="$3" 'FNR == r { c++ } END { print c + 0 }' "$1"/*.ts 2>/dev/null)
        [ "${c:-0}" -ge "$2" ]
}
last_seen() { awk -v r="$2" 'FNR == r && $1 > m { m = $1 } END { printf "%s", m }' "$1"/*.ts; }

# echoer ENDPOINT KEY I: the second floor's host, a stock etcdctl watch on KEY
# that answers each event with one put of /bench/echo/I, over one kept-alive
# connection to etcd's JSON gateway (the agent's path: no process per put)
echoer() {
        local hp=${1#http://} k v body req len h
        k=$(printf '/bench/echo/%s' "$3" | base64 -w0)
        v=$(printf '1' | base64 -w0)
        # the body ends in a newline so that bash, whose stdout is line
        # buffered, sends the request in one write (in several, Nagle's
        # algorithm and etcd's delayed ACK add 40 ms)
        body="{\"key\":\"$k\",\"value\":\"$v\"}"$'\n'
        printf -v req 'POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
                "$hp" ${#body} "$body"
        exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}" || return 1
        etcdctl --endpoints "$1" watch "$2" | while IFS= read -r l; do
                [ "$l" = PUT ] || continue
                printf '%s' "$req" >&3 || return 1
                len=0
                while IFS= read -r -u 3 h; do
                        h=${h%$'\r'}
                        [ -z "$h" ] && break
                        case ${h,,} in content-length:*) len=${h#*: } ;; esac
                done
                [ "$len" -gt 0 ] && read -r -N "$len" -u 3 h
        done
}
# collector ENDPOINT OUT: the deployer's side of the second floor, one
# timestamp in OUT per put under /bench/echo/
collector() {
        etcdctl --endpoints "$1" watch --prefix /bench/echo/ | while IFS= read -r l; do
                [ "$l" = PUT ] && printf '%s\n' "$EPOCHREALTIME" >>"$2"
        done
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
echo_seen() { [ "$(lines "$1")" -ge "$2" ]; }

# mem_used_mb: memory in use on the host (MemTotal - MemAvailable), MB
mem_used_mb() { awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { printf "%d\n", (t - a) / 1024 }' /proc/meminfo; }
mem_avail_mb() { awk '/^MemAvailable:/ { printf "%d\n", $2 / 1024 }' /proc/meminfo; }

# deploy_ours N DIR STATE EP KEY: N agents with their state and files under
# STATE (logs in DIR), RUNS deploys with mgmt-deploy --wait after a warm-up;
# samples deploy.KEY.N and deploy.mem.KEY.N
deploy_ours() {
        local n=$1 d=$2 st=$3 ep=$4 key=$5 i run t0 rc err= m0 pids=()
        if ! have mgmt-agent || ! have mgmt-deploy; then
                err="mgmt-agent or mgmt-deploy not built in $BIN"
        else
                m0=$(mem_used_mb)
                for ((i = 1; i <= n; i++)); do
                        mkdir -p "$st/a$i"
                        bg "$d/$key-a$i.log" "$BIN/mgmt-agent" --hostname "a$i" --seeds "$ep" --prefix "$st/a$i"
                        pids+=("$LASTPID")
                done
                # each run's agents report anew: the keys of the last run's are
                # on their leases until they expire or the agents revoke them
                wait_until "$WAIT_LIMIT" keys_at_least "$ep" /_mgmt/status/ "$n" ||
                        err="only $(count_keys "$ep" /_mgmt/status/) of $n agents reported status"
        fi
        if [ -z "$err" ]; then
                # run 0 warms up (first graph, first files), not counted
                for ((run = 0; run <= RUNS; run++)); do
                        write_graph "$d/g$key$run.yaml" "$key $run" "$st/files"
                        t0=$(now)
                        "$BIN/mgmt-deploy" --seeds "$ep" --wait --timeout 120 yaml "$d/g$key$run.yaml" >"$d/deploy-$key$run.log" 2>&1
                        rc=$?
                        local el=$(elapsed "$t0")
                        if [ $rc != 0 ]; then
                                err="mgmt-deploy exit $rc: $(grep -v '^ *$' "$d/deploy-$key$run.log" | tail -1 | cut -c1-120)"
                                break
                        fi
                        [ $run -gt 0 ] && sample "deploy.$key.$n" "$el" &&
                                sample "deploy.mem.$key.$n" $(($(mem_used_mb) - m0))
                done
        fi
        [ -n "$err" ] && fail "deploy.$key.$n" "$err" && fail "deploy.mem.$key.$n" "$err"
        [ ${#pids[@]} -gt 0 ] && stop "${pids[@]}"
        return 0
}

bench_deploy() {
        local n d run t0 cp pp ep rc i pids err m0
        for n in $DEPLOY_SIZES; do
                over_budget && return
                # an agent takes about 3 MB of the host, an etcdctl watch about
                # 4 MB (measured: 1,000 agents 2.4 GB with their etcd); leave 2 GB
                if [ "$(mem_avail_mb)" -lt $((n * 8 + 2048)) ]; then
                        for k in deploy.ours deploy.shm deploy.floor deploy.mem.ours deploy.mem.floor deploy.echo; do
                                fail "$k.$n" "$(mem_avail_mb) MB available, $((n * 8 + 2048)) MB wanted"
                        done
                        continue
                fi
                d=$WORK/deploy-$n
                mkdir -p "$d"
                cp=$(alloc_port) && pp=$(alloc_port) || { fail "deploy.ours.$n" "no free port"; continue; }
                ep="http://127.0.0.1:$cp"
                start_etcd e "$d" "$cp" "$pp" "e=http://127.0.0.1:$pp"
                local epid=$LASTPID
                if ! wait_until 30 healthy "$ep"; then
                        fail "deploy.ours.$n" "etcd did not start"
                        stop "$epid"
                        continue
                fi
                # ours: N agents, then mgmt-deploy --wait; the agents' state
                # and files on this disk, then on tmpfs (their etcd stays on
                # disk, the same one the floors use)
                deploy_ours "$n" "$d" "$d" "$ep" ours
                if [ -n "$SHM" ]; then
                        local sd
                        sd=$(mktemp -d "$SHM/mgmt-bench.XXXXXX") && SHM_DIRS+=("$sd") &&
                                deploy_ours "$n" "$d" "$sd" "$ep" shm
                        [ -n "${sd:-}" ] && rm -rf "$sd"
                else
                        fail "deploy.shm.$n" "no writable tmpfs at /dev/shm"
                fi
                # floor: one etcdctl put observed by N etcdctl watch
                pids=()
                mkdir -p "$d/w"
                m0=$(mem_used_mb)
                for ((i = 1; i <= n; i++)); do
                        bg /dev/null watcher "$ep" /bench/floor "$d/w/$i.ts"
                        pids+=("$LASTPID")
                done
                err=
                for ((run = 0; run <= RUNS; run++)); do
                        local r1=$((run + 1))
                        if [ $run = 0 ]; then
                                # warm-up: put until every watcher has seen one (watches are set up)
                                local until=$((SECONDS + WAIT_LIMIT))
                                while ! all_seen "$d/w" "$n" 1; do
                                        ectl --endpoints "$ep" put /bench/floor warmup >/dev/null
                                        wait_until 2 all_seen "$d/w" "$n" 1 && break
                                        [ $SECONDS -gt $until ] && { err="watchers never saw the warm-up put"; break; }
                                done
                                [ -n "$err" ] && break
                                # watchers that saw more than one warm-up put: pad all to the same count
                                r1=$(awk 'FNR == 1 { if (c > m) m = c; c = 0 } { c++ } END { if (c > m) m = c; print m }' "$d"/w/*.ts)
                                for i in "$d"/w/*.ts; do while [ "$(wc -l <"$i")" -lt "$r1" ]; do echo 0 >>"$i"; done; done
                                base=$r1
                                continue
                        fi
                        r1=$((base + run))
                        t0=$(now)
                        ectl --endpoints "$ep" put /bench/floor "run$run" >/dev/null
                        if wait_until "$WAIT_LIMIT" all_seen "$d/w" "$n" "$r1"; then
                                sample "deploy.floor.$n" "$(elapsed "$t0" "$(last_seen "$d/w" "$r1")")"
                                sample "deploy.mem.floor.$n" $(($(mem_used_mb) - m0))
                        else
                                err="timeout: watchers did not all see put $run"
                                break
                        fi
                done
                [ -n "$err" ] && fail "deploy.floor.$n" "$err" && fail "deploy.mem.floor.$n" "$err"
                stop "${pids[@]}"
                # second floor, closer to the agent's job: one put seen by N
                # etcdctl watch, each writing one key back over a kept-alive
                # connection, and the deployer's side waiting for all N keys
                pids=()
                err=
                local out=$d/echo.ts c0
                bg /dev/null collector "$ep" "$out"
                pids+=("$LASTPID")
                for ((i = 1; i <= n; i++)); do
                        bg /dev/null echoer "$ep" /bench/echo-go "$i"
                        pids+=("$LASTPID")
                done
                for ((run = 0; run <= RUNS; run++)); do
                        if [ $run = 0 ]; then
                                # warm-up: put until all N echoes come back (watches are set up)
                                local until=$((SECONDS + WAIT_LIMIT))
                                while :; do
                                        ectl --endpoints "$ep" put /bench/echo-go warmup >/dev/null
                                        wait_until 2 keys_at_least "$ep" /bench/echo/ "$n" && break
                                        [ $SECONDS -gt $until ] && { err="echoers never answered the warm-up put"; break; }
                                done
                                [ -n "$err" ] && break
                                # let the echoes of extra warm-up puts arrive
                                wait_until 1 false
                                continue
                        fi
                        c0=$(lines "$out")
                        t0=$(now)
                        ectl --endpoints "$ep" put /bench/echo-go "run$run" >/dev/null
                        if wait_until "$WAIT_LIMIT" echo_seen "$out" $((c0 + n)); then
                                sample "deploy.echo.$n" "$(elapsed "$t0" "$(sed -n "$((c0 + n))p" "$out")")"
                        else
                                err="timeout: $(($(lines "$out") - c0)) of $n echoes of put $run"
                                break
                        fi
                done
                [ -n "$err" ] && fail "deploy.echo.$n" "$err"
                stop "${pids[@]}" "$epid"
                rm -rf "$d/files" "$d/e.etcd"
                log "deploy N=$n done"
        done
}

# ---- 5. footprint ----

write_big_graph() {
        local f=$1 i
        {
                echo "graph: big"
                echo "resources:"
                echo "  noop:"
                for ((i = 1; i <= 500; i++)); do printf '  - name: n%d\n' $i; done
                echo "  print:"
                for ((i = 1; i <= 500; i++)); do printf '  - name: p%d\n    msg: "p%d on ${hostname}"\n' $i $i; done
                echo "edges: []"
        } >"$f"
}

bench_footprint() {
        local d=$WORK/foot i cp pp ep1 ep2 e1 e2 err
        over_budget && return
        mkdir -p "$d"
        local -a sup=() supetcd=() idle=() big=()
        # supervisors: independent one-member clusters
        HOSTS=()
        if have mgmt-supervisor; then
                for ((i = 1; i <= FOOT_COPIES; i++)); do start_sup "$d/s$i" "s$i" 1; done
                for h in "${HOSTS[@]}"; do
                        if wait_until "$WAIT_LIMIT" cluster_ok 1 "http://127.0.0.1:${SUP_CP[$h]}"; then
                                sup+=("${SUP_PID[$h]}")
                                supetcd+=("$(pgrep -P "${SUP_PID[$h]}" | head -1)")
                        fi
                done
        fi
        [ ${#sup[@]} = 0 ] && { fail foot.sup.rss "no supervisor became healthy"; fail foot.sup.cpu "no supervisor became healthy"; }
        # agents: idle ones on one etcd, 1,000-resource ones on another
        cp=$(alloc_port); pp=$(alloc_port); ep1="http://127.0.0.1:$cp"
        start_etcd e1 "$d" "$cp" "$pp" "e1=http://127.0.0.1:$pp"; e1=$LASTPID
        cp=$(alloc_port); pp=$(alloc_port); ep2="http://127.0.0.1:$cp"
        start_etcd e2 "$d" "$cp" "$pp" "e2=http://127.0.0.1:$pp"; e2=$LASTPID
        wait_until 30 healthy "$ep1"
        wait_until 30 healthy "$ep2"
        err=
        if have mgmt-agent; then
                for ((i = 1; i <= FOOT_COPIES; i++)); do
                        bg "$d/idle$i.log" "$BIN/mgmt-agent" --hostname "idle$i" --seeds "$ep1" --prefix "$d/idle$i"
                        idle+=("$LASTPID")
                        bg "$d/big$i.log" "$BIN/mgmt-agent" --hostname "big$i" --seeds "$ep2" --prefix "$d/big$i"
                        big+=("$LASTPID")
                done
                wait_until "$WAIT_LIMIT" keys_at_least "$ep1" /_mgmt/status/ "$FOOT_COPIES" || err="idle agents did not report status"
                if wait_until "$WAIT_LIMIT" keys_at_least "$ep2" /_mgmt/status/ "$FOOT_COPIES"; then
                        write_big_graph "$d/big.yaml"
                        if ! have mgmt-deploy; then
                                fail foot.big.rss "mgmt-deploy not built"
                                big=()
                        elif ! "$BIN/mgmt-deploy" --seeds "$ep2" --wait --timeout 120 yaml "$d/big.yaml" >"$d/bigdeploy.log" 2>&1; then
                                fail foot.big.rss "deploy of 1,000 resources failed: $(tail -1 "$d/bigdeploy.log" | cut -c1-120)"
                                fail foot.big.cpu "deploy failed"
                                big=()
                        fi
                else
                        fail foot.big.rss "agents did not report status"
                        big=()
                fi
        else
                err="mgmt-agent not built"
        fi
        [ -n "$err" ] && { fail foot.agent.rss "$err"; fail foot.agent.cpu "$err"; idle=(); }
        sleep 3 # settle
        local all=("${sup[@]}" "${supetcd[@]}" "${idle[@]}" "${big[@]}" "$e1" "$e2") p
        declare -A c0
        for p in "${all[@]}"; do c0[$p]=$(proc_cpu_ticks "$p"); done
        log "footprint: idle window of ${FOOT_WINDOW}s"
        sleep "$FOOT_WINDOW"
        local hz=$(getconf CLK_TCK)
        # measure KEY PIDS...: RSS (MB) and CPU (s per minute) of each PID
        measure() {
                local key=$1 p c1 rss
                shift
                for p in "$@"; do
                        rss=$(proc_rss_kb "$p")
                        c1=$(proc_cpu_ticks "$p")
                        if [ -z "$rss" ] || [ -z "$c1" ]; then
                                fail "$key.rss" "process $p exited during the window"
                                continue
                        fi
                        sample "$key.rss" "$(awk -v k="$rss" 'BEGIN { printf "%.2f", k / 1024 }')"
                        sample "$key.pss" "$(awk -v k="$(proc_pss_kb "$p")" 'BEGIN { printf "%.2f", k / 1024 }')"
                        sample "$key.priv" "$(awk -v k="$(proc_private_kb "$p")" 'BEGIN { printf "%.2f", k / 1024 }')"
                        sample "$key.cpu" "$(awk -v a="${c0[$p]}" -v b="$c1" -v hz="$hz" -v w="$FOOT_WINDOW" 'BEGIN { printf "%.3f", (b - a) / hz * 60 / w }')"
                done
        }
        [ ${#sup[@]} -gt 0 ] && measure foot.sup "${sup[@]}"
        [ ${#supetcd[@]} -gt 0 ] && measure foot.supetcd "${supetcd[@]}"
        [ ${#idle[@]} -gt 0 ] && measure foot.agent "${idle[@]}"
        [ ${#big[@]} -gt 0 ] && measure foot.big "${big[@]}"
        measure foot.etcd "$e1" "$e2"
        stop_sups
        stop "${idle[@]}" "${big[@]}" "$e1" "$e2"
}

# ---- 6. watch throughput ----

bench_watch() {
        local d=$WORK/watch cp pp ep last first run t0 n k=$WATCH_EVENTS lines
        over_budget && return
        mkdir -p "$d"
        if ! have tools/etcd-probe; then
                fail watch.ours "tools/etcd-probe not built in $BIN (make unit-bins)"
        fi
        cp=$(alloc_port); pp=$(alloc_port); ep="http://127.0.0.1:$cp"
        start_etcd e "$d" "$cp" "$pp" "e=http://127.0.0.1:$pp"
        local epid=$LASTPID
        wait_until 30 healthy "$ep" || { fail watch.floor "etcd did not start"; stop "$epid"; return; }
        # the stream: K puts under one prefix, written as fast as one client can
        t0=$(now)
        if have tools/etcd-probe; then
                last=$("$BIN/tools/etcd-probe" "$ep" put-seq /bench/w/ 1 "$k" 2>"$d/putseq.err")
        else
                last=
        fi
        if ! [[ "$last" =~ ^[0-9]+$ ]]; then
                # no probe: etcdctl txn batches of puts
                local i j
                for ((i = 1; i <= k; i += 100)); do
                        for ((j = i; j < i + 100 && j <= k; j++)); do printf 'put /bench/w/%06d %d\n' $j $j; done |
                                awk 'BEGIN { print "" } { print } END { print ""; print "" }' | ectl --endpoints "$ep" txn >/dev/null
                done
                last=$(ectl --endpoints "$ep" get /bench/w/ --prefix --limit 1 -w json | jq '.header.revision')
        fi
        log "watch: wrote $k puts in $(elapsed "$t0") s (last revision $last)"
        first=$((last - k + 1))
        for ((run = 1; run <= RUNS; run++)); do
                # ours: the lib/ client replays K events from the first revision
                if have tools/etcd-probe; then
                        t0=$(now)
                        n=$("$BIN/tools/etcd-probe" "$ep" watch /bench/w/ "$first" "$k" 2>"$d/probe.err" | wc -l)
                        local el=$(elapsed "$t0")
                        if [ "$n" = "$k" ]; then
                                sample watch.ours "$(awk -v k="$k" -v e="$el" 'BEGIN { printf "%.0f", k / e }')"
                        else
                                fail watch.ours "etcd-probe printed $n of $k events: $(tail -1 "$d/probe.err" | cut -c1-120)"
                        fi
                fi
                # floor: etcdctl watch on the same events (3 lines each: PUT, key,
                # value), polled every 10 ms until all have been printed
                lines=$((3 * k))
                t0=$(now)
                bg "$d/etcdctl.out" etcdctl --endpoints "$ep" watch --prefix --rev "$first" /bench/w/
                local wpid=$LASTPID until=$((SECONDS + WAIT_LIMIT)) el=
                while [ $SECONDS -le $until ]; do
                        n=$(wc -l <"$d/etcdctl.out")
                        if [ "$n" -ge "$lines" ]; then el=$(elapsed "$t0"); break; fi
                        sleep 0.01
                done
                stop "$wpid"
                if [ -n "$el" ]; then
                        sample watch.floor "$(awk -v k="$k" -v e="$el" 'BEGIN { printf "%.0f", k / e }')"
                else
                        fail watch.floor "etcdctl watch printed $n of $lines lines in ${WAIT_LIMIT}s"
                fi
        done
        stop "$epid"
}

# ---- report ----

# stats KEY: "median min max count" of the numeric samples, or "ERR text"
stats() {
        local vals
        vals=$(awk -v k="$1" '$1 == k && $2 != "ERR" { print $2 }' "$SAMPLES" | sort -g)
        if [ -z "$vals" ]; then
                local e=$(awk -v k="$1" '$1 == k && $2 == "ERR" { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$SAMPLES")
                echo "ERR ${e:-not measured}"
                return
        fi
        awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s %d\n", m, v[1], v[NR], NR }' <<<"$vals"
}
median() { local s=$(stats "$1"); [ "${s%% *}" = ERR ] && echo "" || echo "${s%% *}"; }
# row FIGURE N KEY [FLOORKEY [RATIO_MODE]] [NOTE]
row() {
        local fig=$1 n=$2 key=$3 fkey=${4:-} note=${5:-} s fm ratio=
        s=$(stats "$key")
        if [ "${s%% *}" = ERR ]; then
                printf '| %s | %s | n/a (error: %s) | | | ' "$fig" "$n" "${s#ERR }"
        else
                set -- $s
                printf '| %s | %s | %s | %s | %s | ' "$fig" "$n" "$1" "$2" "$3"
                [ "$4" -lt "$RUNS" ] && note="${note:+$note; }$4 of $RUNS runs"
        fi
        if [ -n "$fkey" ]; then
                local fs=$(stats "$fkey")
                if [ "${fs%% *}" = ERR ]; then
                        printf 'n/a (error: %s) | | ' "${fs#ERR }"
                else
                        fm=${fs%% *}
                        local om=$(median "$key")
                        [ -n "$om" ] && ratio=$(awk -v a="$om" -v b="$fm" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
                        printf '%s | %s | ' "$fm" "$ratio"
                fi
        else
                printf '| | '
        fi
        printf '%s |\n' "$note"
}

# target TEXT KEY OP LIMIT [ratio FLOORKEY]
target() {
        local text=$1 key=$2 op=$3 lim=$4 v
        if [ "${5:-}" = ratio ]; then
                local a=$(median "$key") b=$(median "$6")
                [ -n "$a" ] && [ -n "$b" ] && v=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
        else
                v=$(median "$key")
        fi
        if [ -z "${v:-}" ]; then
                echo "- $text: not measured in this run"
        elif awk -v v="$v" -v l="$lim" -v op="$op" 'BEGIN { exit !(op == "<" ? v < l : v <= l) }'; then
                echo "- $text: **met** ($v)"
        else
                echo "- $text: **missed** ($v)"
        fi
}

report() {
        local md=$OUT_DIR/$RESULTS.md n
        {
                echo "# mgmt benchmarks (etcd ${ETCD_VERSION:-?})"
                echo
                echo "$(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n), $(nproc) CPUs, $(etcd --version | head -1);" \
                        "binaries from \`$BIN\`; $([ -n "$SMOKE" ] && echo "smoke run (smallest sizes, 1 repetition)" || echo "median of $RUNS runs, with min and max")."
                echo "Times in seconds (wall clock, loopback, real processes); the floor is stock etcd doing the same job."
                echo
                echo "| figure | N | median | min | max | floor median | ratio | notes |"
                echo "|---|---|---|---|---|---|---|---|"
                for n in $FORM_SIZES; do
                        row "formation (s)" "$n" "form.ours.$n" "form.floor.$n" "floor: $n stock etcd, static --initial-cluster"
                        row "formation, etcd's strict check on (s)" "$n" "form.strict.$n" "form.floor.$n" "--etcd-arg=--strict-reconfig-check=true: the old default"
                done
                row "resize 3→5 (s)" 5 resize.up "" "five hosts"
                row "resize 5→3 (s)" 3 resize.down "" "five hosts"
                row "failover minus grace (s)" 3 failover "" "4 hosts, ideal 3, grace ${GRACE}s, SIGKILL of a non-coordinator member"
                local base=$(median deploy.ours.1) fbase=$(median deploy.floor.1)
                for n in $DEPLOY_SIZES; do
                        local g= om=$(median "deploy.ours.$n") fm=$(median "deploy.floor.$n")
                        [ -n "$base" ] && [ -n "$om" ] && g="ours ×$(awk -v a="$om" -v b="$base" 'BEGIN { printf "%.1f", a / b }') vs N=1"
                        [ -n "$fbase" ] && [ -n "$fm" ] && g="${g:+$g, }floor ×$(awk -v a="$fm" -v b="$fbase" 'BEGIN { printf "%.1f", a / b }')"
                        row "deploy propagation (s)" "$n" "deploy.ours.$n" "deploy.floor.$n" "10 resources; floor: 1 put seen by $n etcdctl watch${g:+; $g}"
                        row "deploy propagation, vs echo floor (s)" "$n" "deploy.ours.$n" "deploy.echo.$n" "floor: 1 put seen by $n etcdctl watch, each putting one key back (kept-alive gateway connection), all $n seen by a watch"
                        row "deploy propagation, agents' files on tmpfs (s)" "$n" "deploy.shm.$n" "deploy.floor.$n" "the same $n agents with their state and files on /dev/shm (etcd on disk, as for the floor): what $n hosts' agents cost without $n hosts' file writes on one disk"
                done
                local inot=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null)
                for n in $DEPLOY_SIZES; do
                        local nt=
                        [ -n "$inot" ] && [ "$n" -gt "$inot" ] && nt="; past fs.inotify.max_user_instances ($inot) agents run without drift watches"
                        row "deploy: host memory in use (MB)" "$n" "deploy.mem.ours.$n" "deploy.mem.floor.$n" "MemTotal - MemAvailable, growth since before the $n agents (floor: $n etcdctl watch) started, their etcd's growth included$nt"
                done
                row "idle supervisor RSS (MB)" 1 foot.sup.rss foot.supetcd.rss "floor column: its etcd child's RSS, for scale"
                row "idle supervisor PSS (MB)" 1 foot.sup.pss foot.supetcd.pss "proportional: shared library pages divided among their users"
                row "idle supervisor private (MB)" 1 foot.sup.priv foot.supetcd.priv "pages only this process holds"
                row "idle supervisor CPU (s/min)" 1 foot.sup.cpu foot.supetcd.cpu "floor column: its etcd child"
                row "idle agent RSS (MB)" 1 foot.agent.rss foot.etcd.rss "floor column: a stock etcd's RSS, for scale"
                row "idle agent PSS (MB)" 1 foot.agent.pss foot.etcd.pss "proportional: shared library pages divided among their users"
                row "idle agent private (MB)" 1 foot.agent.priv foot.etcd.priv "pages only this process holds"
                row "idle agent CPU (s/min)" 1 foot.agent.cpu foot.etcd.cpu "floor column: a stock etcd"
                row "agent, 1,000 resources, RSS (MB)" 1 foot.big.rss foot.etcd.rss "500 noop + 500 print, deployed and converged"
                row "agent, 1,000 resources, private (MB)" 1 foot.big.priv foot.etcd.priv "pages only this process holds"
                row "agent, 1,000 resources, CPU (s/min)" 1 foot.big.cpu "" "idle after converging"
                row "watch throughput (events/s)" "$WATCH_EVENTS" watch.ours watch.floor "lib/ client (etcd-probe) vs etcdctl watch, replay of $WATCH_EVENTS puts; higher is better"
                echo
                echo "Targets (issues 9 and 16):"
                echo
                target "formation of 3 within 2x the static floor" form.ours.3 "<=" 2 ratio form.floor.3
                target "formation of 5 within 3x the static floor" form.ours.5 "<=" 3 ratio form.floor.5
                target "deploy to 50 agents within 3x the floor" deploy.ours.50 "<=" 3 ratio deploy.floor.50
                target "deploy to 200 agents within 3x the floor" deploy.ours.200 "<=" 3 ratio deploy.floor.200
                target "deploy to 200 agents within 3x the echo floor (put seen and answered)" deploy.ours.200 "<=" 3 ratio deploy.echo.200
                target "deploy to 200 agents within 3x the floor, agents' files on tmpfs" deploy.shm.200 "<=" 3 ratio deploy.floor.200
                target "idle supervisor under 4 MB RSS" foot.sup.rss "<" 4
                target "idle supervisor under 4 MB PSS (shared libraries divided among users)" foot.sup.pss "<" 4
                target "idle supervisor under 0.1 s CPU per minute" foot.sup.cpu "<" 0.1
                target "idle agent under 4 MB RSS" foot.agent.rss "<" 4
                target "idle agent under 4 MB PSS (shared libraries divided among users)" foot.agent.pss "<" 4
                target "idle agent under 0.1 s CPU per minute" foot.agent.cpu "<" 0.1
                target "agent with 1,000 resources under 16 MB RSS" foot.big.rss "<" 16
                case "$BIN" in *san*) echo; echo "Note: \`$BIN\` looks like a sanitizer build; its memory and CPU figures are not representative." ;; esac
        } >"$md"
        cat "$md"
}

plot() {
        local png=$OUT_DIR/$RESULTS.png n
        if ! command -v gnuplot >/dev/null; then
                echo "bench: gnuplot not installed: no plot (apt-get install gnuplot-nox)" >&2
                return 0
        fi
        : >"$WORK/deploy.dat"
        for n in $DEPLOY_SIZES; do
                local o=$(stats "deploy.ours.$n") f=$(stats "deploy.floor.$n")
                [ "${o%% *}" = ERR ] && o="NaN NaN NaN 0"
                [ "${f%% *}" = ERR ] && f="NaN NaN NaN 0"
                echo "$n $o $f" >>"$WORK/deploy.dat"
        done
        : >"$WORK/form.dat"
        local i=0
        for n in $FORM_SIZES; do
                local o=$(stats "form.ours.$n") f=$(stats "form.floor.$n")
                [ "${o%% *}" = ERR ] && o="NaN NaN NaN 0"
                [ "${f%% *}" = ERR ] && f="NaN NaN NaN 0"
                echo "$i $n $o $f" >>"$WORK/form.dat"
                i=$((i + 1))
        done
        if gnuplot >"$WORK/gnuplot.log" 2>&1 <<EOF; then
set terminal pngcairo size 1200,500
set output "$png"
set multiplot layout 1,2 title "mgmt benchmarks, etcd ${ETCD_VERSION:-?} ($([ -n "$SMOKE" ] && echo smoke || echo "median of $RUNS, bars min-max"))"
set title "Deploy propagation (10 resources)"
set xlabel "agents / watchers (N)"
set ylabel "seconds"
set logscale x
set key top left
set grid
set yrange [0:*]
plot "$WORK/deploy.dat" using 1:2:3:4 with yerrorlines title "mgmt-deploy --wait", \
     "" using 1:6:7:8 with yerrorlines title "floor: etcdctl put, N watchers"
unset logscale x
set title "Formation (cold start)"
set xlabel "cluster size N"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6
set key top left
set yrange [0:*]
plot "$WORK/form.dat" using 3:4:5:xtic(2) title "mgmt-supervisor", \
     "" using 7:8:9 title "floor: static etcd"
unset multiplot
EOF
                echo "bench: plot written to $png"
        else
                echo "bench: gnuplot failed (plot skipped): $(tail -1 "$WORK/gnuplot.log")" >&2
        fi
}

log "binaries from $BIN; work in $WORK; $([ -n "$SMOKE" ] && echo smoke || echo "full, $RUNS runs")"
if ! have mgmt-supervisor; then
        for k in $FORM_SIZES; do fail "form.ours.$k" "mgmt-supervisor not built in $BIN"; done
        fail resize.up "mgmt-supervisor not built"
        fail resize.down "mgmt-supervisor not built"
        fail failover "mgmt-supervisor not built"
        SKIP_SUP=1
fi
if [ -z "${SKIP_SUP:-}" ]; then
        section formation && bench_formation
fi
section deploy && bench_deploy
section watch && bench_watch
section footprint && bench_footprint
if [ -z "${SKIP_SUP:-}" ]; then
        section resize && bench_resize
        section failover && bench_failover
fi
over_budget && log "smoke time budget (${BUDGET}s) used up: later figures skipped"
stop_all
report
plot
log "done in $((SECONDS - START)) s"
exit 0
