# agents.bash: helpers for tests that run agents and deploys against a real
# etcd (agent.bats, hostile.bats, trust.bats).
#
#   md ARGS...                  mgmt-deploy against $ETCD_ENDPOINT (stderr also in a log)
#   write_deploy ID FILE [PREV] store deploy ID as mgmt-deploy would, minus validation
#   deploy_graph FILE TAG       a graph writing $TMP/out-${hostname}/f with TAG
#   status_of HOST, status_is HOST DEPLOY STATE, status_error_has HOST REGEX
#   file_is PATH CONTENT
#   start_etcd_trio             three stock etcd members m1..m3 (static cluster),
#                               client ports in TRIO_CP[m1..m3]

load lib

# md ARGS...: mgmt-deploy against the test etcd, stderr kept in a log too
# (so that mgmt_teardown sees sanitizer reports).
md() {
        "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" "$@" 2> >(tee -a "$TMP/mgmt-deploy.log" >&2)
}

# write_deploy ID FILE [PREVHASH]: write deploy ID directly (as mgmt-deploy would,
# minus its validation), so a test can store a graph mgmt-deploy would refuse.
write_deploy() {
        local id=$1 file=$2 prev=${3:-} hash payload
        hash=$(sha256sum < "$file" | cut -d' ' -f1)
        payload=$(jq -cn --argjson id "$id" --arg hash "$hash" --arg prev "$prev" --rawfile g "$file" \
                --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
                '{id: $id, hash: $hash, previous: (if $prev == "" then null else $prev end), graph: $g, time: $t}')
        ectl put "/_mgmt/deploy/$id/payload" "$payload" > /dev/null
        ectl put "/_mgmt/deploy/$id/hash" "$hash" > /dev/null
        echo "$hash"
}

status_of() {
        ectl get --print-value-only "/_mgmt/status/$1"
}

status_is() { # HOST DEPLOY STATE
        local s
        s=$(status_of "$1")
        [ "$(jq -r .deploy <<< "$s")" = "$2" ] && [ "$(jq -r .state <<< "$s")" = "$3" ]
}

status_error_has() { # HOST REGEX
        status_of "$1" | jq -e --arg re "$2" '.errors | any(test($re))' > /dev/null
}

file_is() { # PATH CONTENT
        [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

deploy_graph() { # FILE TAG: a graph writing $TMP/out-${hostname}/f with TAG
        cat > "$1" <<EOF
graph: d-$2
resources:
  file:
  - name: f
    path: "$TMP/out-\${hostname}/f"
    content: "$2 on \${hostname}"
EOF
}

# A three-member etcd cluster with a static --initial-cluster, every member healthy.
start_etcd_trio() {
        local cluster="" n
        declare -gA TRIO_CP TRIO_PP
        for n in m1 m2 m3; do
                TRIO_CP[$n]=$(free_port)
                TRIO_PP[$n]=$(free_port)
                cluster="$cluster${cluster:+,}$n=http://127.0.0.1:${TRIO_PP[$n]}"
        done
        for n in m1 m2 m3; do
                start_bg "etcd-$n" etcd --name "$n" --data-dir "$TMP/$n.etcd" \
                        --listen-client-urls "http://127.0.0.1:${TRIO_CP[$n]}" \
                        --advertise-client-urls "http://127.0.0.1:${TRIO_CP[$n]}" \
                        --listen-peer-urls "http://127.0.0.1:${TRIO_PP[$n]}" \
                        --initial-advertise-peer-urls "http://127.0.0.1:${TRIO_PP[$n]}" \
                        --initial-cluster "$cluster" --initial-cluster-state new
        done
        for n in m1 m2 m3; do
                wait_until 30 etcd_healthy "http://127.0.0.1:${TRIO_CP[$n]}"
        done
}
