# sup.bash: helpers for tests that run mgmt-supervisor clusters on loopback.
#
#   start_sup NAME [flags...]   supervisor NAME on two free ports, --prefix $TMP/NAME;
#                               sets CPORT_<NAME>, URL_<NAME>; the first one started
#                               without --seeds is the seed: SEED=its client URL
#   voters ENDPOINTS            started voting members (names) per `etcdctl member list`
#   voter_count_is N            exactly N started voting members and no learner
#   etcd_pid_of NAME            the etcd child of supervisor NAME
#   kill_host NAME              SIGKILL supervisor NAME and its etcd (power loss)

load lib

# Short timeouts so faults resolve within a test; a real deployment keeps the defaults.
SUP_FLAGS=${SUP_FLAGS:-"--dead-member-grace 4 --nominate-timeout 8 --stop-timeout 5"}

start_sup() {
        local name=$1
        shift
        local cport pport
        if [ -f "$TMP/$name.cport" ]; then
                # restart: same ports, same prefix
                cport=$(cat "$TMP/$name.cport")
                pport=$(cat "$TMP/$name.pport")
        else
                cport=$(free_port)
                pport=$(free_port)
                echo "$cport" > "$TMP/$name.cport"
                echo "$pport" > "$TMP/$name.pport"
        fi
        eval "URL_$name=http://127.0.0.1:$cport"
        # keep older logs of the same host across restarts
        [ -f "$TMP/$name.log" ] && cat "$TMP/$name.log" >> "$TMP/$name.old.log"
        # shellcheck disable=SC2086
        start_bg "$name" "$MGMT_BIN/mgmt-supervisor" --hostname "$name" --prefix "$TMP/$name" \
                --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$pport" \
                $SUP_FLAGS "$@"
}

# All client URLs of supervisors started in this test, comma-joined.
all_urls() {
        local f out=""
        for f in "$TMP"/*.cport; do
                [ -e "$f" ] || continue
                out="$out${out:+,}http://127.0.0.1:$(cat "$f")"
        done
        echo "$out"
}

member_list() {
        etcdctl --endpoints "${1:-$(all_urls)}" --dial-timeout 2s --command-timeout 4s member list 2>/dev/null
}

# Names of started voting members, sorted, one per line.
voters() {
        member_list "${1:-}" | awk -F', ' '$2 == "started" && $6 == "false" { print $3 }' | sort
}

voter_count_is() {
        local want=$1 list learners
        list=$(member_list "${2:-}") || return 1
        learners=$(echo "$list" | awk -F', ' '$6 != "false"' | wc -l)
        [ "$(echo "$list" | awk -F', ' '$2 == "started" && $6 == "false"' | wc -l)" -eq "$want" ] &&
                [ "$(echo "$list" | grep -c .)" -eq "$want" ] && [ "$learners" -eq 0 ]
}

# Power off one host: SIGKILL its supervisor and its etcd at once.
kill_host() {
        local ep
        ep=$(etcd_pid_of "$1" || true)
        kill -KILL "$(cat "$TMP/$1.pid")" 2>/dev/null || true
        [ -n "$ep" ] && kill -KILL "$ep" 2>/dev/null || true
}

etcd_pid_of() {
        pgrep -P "$(cat "$TMP/$1.pid")" -x etcd
}

set_ideal() {
        etcdctl --endpoints "$(all_urls)" --dial-timeout 2s --command-timeout 4s put /_mgmt/idealClusterSize "$1" >/dev/null
}

# Writer: puts /test/w/<i> until $TMP/writer.stop exists; every acknowledged
# key is appended to $TMP/writer.acked. WRITER_AUTH (e.g. root:secret): the
# writer and the check talk to etcd as that user.
start_writer() {
        : > "$TMP/writer.acked"
        (
                i=0
                while [ ! -e "$TMP/writer.stop" ]; do
                        i=$((i + 1))
                        if etcdctl --endpoints "$(all_urls)" ${WRITER_AUTH:+--user "$WRITER_AUTH"} \
                                --dial-timeout 1s --command-timeout 3s put "/test/w/$i" "$i" >/dev/null 2>&1; then
                                echo "$i" >> "$TMP/writer.acked"
                        fi
                        sleep 0.05
                done
        ) &
        echo $! >> "$TMP/.pids"
        echo $! > "$TMP/writer.pid"
}

# The writer has had at least N writes acknowledged.
acked_at_least() { [ "$(wc -l < "$TMP/writer.acked")" -ge "$1" ]; }

# Stop the writer and check that every acknowledged write is readable.
check_writes() {
        touch "$TMP/writer.stop"
        local pid
        pid=$(cat "$TMP/writer.pid")
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        local acked missing
        acked=$(wc -l < "$TMP/writer.acked")
        [ "$acked" -gt 10 ] || { echo "writer acknowledged only $acked writes"; return 1; }
        etcdctl --endpoints "$(all_urls)" ${WRITER_AUTH:+--user "$WRITER_AUTH"} --command-timeout 10s \
                get --prefix /test/w/ --print-value-only | sort -n > "$TMP/writer.read"
        missing=$(sort -n "$TMP/writer.acked" | comm -23 - "$TMP/writer.read" | wc -l)
        echo "writer: $acked acknowledged, $missing missing"
        [ "$missing" -eq 0 ]
}

is_voter() { voters | grep -qx "$1"; }
coordinator_is_not() {
        local c
        c=$(etcdctl --endpoints "$(all_urls)" --dial-timeout 2s get /_mgmt/coordinator --print-value-only 2>/dev/null)
        [ -n "$c" ] && [ "$c" != "$1" ]
}

key_is() { # ENDPOINT KEY VALUE
        [ "$(etcdctl --endpoints "$1" --dial-timeout 2s get "$2" --print-value-only 2>/dev/null)" = "$3" ]
}
key_set() { # KEY: it exists with a value, read through every host's URL
        etcdctl --endpoints "$(all_urls)" --dial-timeout 2s get "$1" --print-value-only 2>/dev/null | grep -q .
}

# One cluster id among every answering member.
one_cluster_id() {
        local ids
        ids=$(for f in "$TMP"/*.cport; do
                curl -fsS --max-time 2 -X POST -d '{}' "http://127.0.0.1:$(cat "$f")/v3/cluster/member/list" 2>/dev/null |
                        jq -r '.header.cluster_id'
        done | sort -u | grep -v null)
        echo "cluster ids: $ids"
        [ "$(echo "$ids" | grep -c .)" -eq 1 ]
}
