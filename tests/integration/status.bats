#!/usr/bin/env bats
# One window on the cluster (issue 15): `mgmt-supervisor status`, its --json
# schema, --watch, and the metrics listener's /metrics, /health and /status.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

status() { "$MGMT_BIN/mgmt-supervisor" status --seeds "$(all_urls)" "$@"; }

# host's field in the --json document
host_field() { # HOST FIELD
        status --json | jq -r --arg h "$1" ".hosts[] | select(.name == \$h) | .$2"
}
role_is() { [ "$(host_field "$1" role)" = "$2" ]; }

# The documented schema (mgmt-supervisor(8), "STATUS DOCUMENT"): required
# fields and their types; fails naming what is wrong.
check_schema() {
        jq -e '
          def t($v; $ts): ($v | type) as $x | ($ts | index($x)) != null;
          (.schema == 1) and t(.time; ["string"]) and t(.revision; ["number"]) and
          t(.cluster; ["object"]) and t(.cluster.id; ["string"]) and
          t(.cluster.generation; ["number", "null"]) and t(.cluster.created; ["string", "null"]) and
          t(.ideal; ["number", "null"]) and t(.voters; ["number"]) and t(.learners; ["number"]) and
          t(.healthy_voters; ["number"]) and t(.quorum; ["number"]) and t(.failure_tolerance; ["number"]) and
          t(.leader; ["string", "null"]) and t(.coordinator; ["string", "null"]) and
          t(.plan; ["object", "null"]) and t(.hosts; ["array"]) and
          all(.hosts[];
            t(.name; ["string"]) and
            (.role | IN("member", "learner", "volunteer", "client", "gone")) and
            t(.member_id; ["string", "null"]) and t(.leader; ["boolean"]) and
            t(.healthy; ["boolean", "null"]) and t(.raft_index; ["number", "null"]) and
            t(.raft_index_lag; ["number", "null"]) and t(.db_size; ["number", "null"]) and
            t(.etcd_version; ["string", "null"]) and t(.client_urls; ["array"]) and
            t(.volunteer; ["boolean"]) and t(.nominated; ["boolean"]) and t(.endpoints; ["boolean"]) and
            t(.deploy; ["number", "null"]) and t(.deploy_state; ["string", "null"]) and
            t(.snapshot_time; ["string", "null"]) and t(.snapshot_age_seconds; ["number", "null"]) and
            t(.error; ["string", "null"]))
        ' "$1" >/dev/null || { echo "document does not match the schema:"; cat "$1"; return 1; }
}

@test "status of 3 members + 1 volunteer: roles, leader, coordinator; a killed member shows gone" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        # coordinator key and every member's endpoints key are there
        wait_until 20 status_settled 3
        status --json > "$TMP/doc.json"
        check_schema "$TMP/doc.json"
        [ "$(jq -r '.voters' "$TMP/doc.json")" -eq 3 ]
        [ "$(jq -r '.failure_tolerance' "$TMP/doc.json")" -eq 1 ]
        [ "$(jq -r '.ideal' "$TMP/doc.json")" -eq 3 ]
        [ "$(jq -r '[.hosts[].name] | join(" ")' "$TMP/doc.json")" = "h1 h2 h3 h4" ]
        volunteer=$(comm -23 <(printf 'h1\nh2\nh3\nh4\n') <(voters))
        for m in $(voters); do
                [ "$(jq -r --arg h "$m" '.hosts[] | select(.name == $h) | .role' "$TMP/doc.json")" = member ]
                [ "$(jq -r --arg h "$m" '.hosts[] | select(.name == $h) | .healthy' "$TMP/doc.json")" = true ]
        done
        [ "$(jq -r --arg h "$volunteer" '.hosts[] | select(.name == $h) | .role' "$TMP/doc.json")" = volunteer ]
        # leader: the member etcd itself calls leader; coordinator: the key
        # (read again until no election falls between the reads)
        wait_until 20 leader_agrees
        coord=$(jq -r '.coordinator' "$TMP/doc.json")

        # the table: header and one row per host, sorted
        run status
        [ "$status" -eq 0 ]
        echo "$output"
        [[ "${lines[0]}" == *"ideal 3  voters 3"*"failure tolerance 1"*"coordinator $coord"* ]]
        [ "$(printf '%s\n' "${lines[@]:3}" | awk '{ print $1 }' | tr '\n' ' ')" = "h1 h2 h3 h4 " ]
        printf '%s\n' "${lines[@]}" | grep -E "^$volunteer +volunteer "

        # kill a member that is not the coordinator, supervisor and etcd at once
        victim=$(voters | grep -vx "$coord" | head -n 1)
        kill -KILL "$(etcd_pid_of "$victim")" "$(cat "$TMP/$victim.pid")"
        wait_until 20 role_is "$victim" gone
        [ "$(host_field "$victim" healthy)" = false ]
        status --json > "$TMP/doc2.json"
        check_schema "$TMP/doc2.json"
        run status
        printf '%s\n' "${lines[@]}" | grep -E "^$victim +gone "
}

# The status document's leader is the member etcd calls leader, and its
# coordinator the one in /_mgmt/coordinator (the document in $TMP/doc.json).
leader_agrees() {
        local murl leader_id coord
        status --json > "$TMP/doc.json" || return 1
        murl=$(jq -r '[.hosts[] | select(.role == "member")][0].client_urls[0]' "$TMP/doc.json")
        leader_id=$(etcdctl --endpoints "$murl" endpoint status --cluster | awk -F', ' '$5 == "true" { print $2 }')
        coord=$(etcdctl --endpoints "$(all_urls)" get /_mgmt/coordinator --print-value-only)
        echo "leader $leader_id, coordinator $coord"
        [ -n "$leader_id" ] &&
                [ "$(jq -r '.hosts[] | select(.leader) | .member_id' "$TMP/doc.json")" = "$leader_id" ] &&
                [ "$(jq -r '.coordinator' "$TMP/doc.json")" = "$coord" ]
}

status_settled() { # VOTERS: the coordinator is published and every voter healthy
        local d
        d=$(status --json) || return 1
        [ "$(echo "$d" | jq -r '.healthy_voters')" -eq "$1" ] &&
                [ "$(echo "$d" | jq -r '.coordinator')" != null ] &&
                [ "$(echo "$d" | jq -r '[.hosts[] | select(.role == "member" and .endpoints)] | length')" -eq "$1" ]
}

@test "status: no seed answers is an error naming it; bad usage exits 2" {
        port=$(free_port)
        run "$MGMT_BIN/mgmt-supervisor" status --seeds "http://127.0.0.1:$port"
        [ "$status" -eq 1 ]
        [[ "$output" == *"127.0.0.1:$port"* ]]
        run "$MGMT_BIN/mgmt-supervisor" status --seeds "not-a-url"
        [ "$status" -eq 2 ]
        run "$MGMT_BIN/mgmt-supervisor" status extra
        [ "$status" -eq 2 ]
        run "$MGMT_BIN/mgmt-supervisor" status --help
        [ "$status" -eq 0 ]
        [[ "$output" == *"--watch"* ]]
}

@test "status --watch redraws on a change under /_mgmt/ (no timer)" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        start_bg watch "$MGMT_BIN/mgmt-supervisor" status --seeds "$URL_h1" --watch --json
        wait_until 10 grep -q '"schema"' "$TMP/watch.log"
        sleep 2
        before=$(grep -c '"schema"' "$TMP/watch.log")
        # nothing changes: no redraw
        sleep 2
        [ "$(grep -c '"schema"' "$TMP/watch.log")" -eq "$before" ]
        etcdctl --endpoints "$URL_h1" put /_mgmt/idealClusterSize 2 >/dev/null
        wait_until 10 sh -c "tail -n 1 '$TMP/watch.log' | jq -e '.ideal == 2'"
}

SUP_METRICS="mgmt_cluster_voting_members mgmt_cluster_learners mgmt_ideal_cluster_size mgmt_failure_tolerance
mgmt_is_coordinator mgmt_etcd_up mgmt_etcd_restarts_total mgmt_membership_changes_total
mgmt_last_snapshot_timestamp_seconds mgmt_snapshot_failures_total"
AGENT_METRICS="mgmt_deploy_id mgmt_resources mgmt_checkapply_total mgmt_converged"

# metrics URL: strict parse, exactly the families of DESIGN.md, normalized samples on stdout
metrics() { # URL FAMILIES...
        local url=$1
        shift
        curl -fsS --max-time 5 "$url/metrics" > "$TMP/metrics.txt" || return 1
        # shellcheck disable=SC2086
        python3 "$BATS_TEST_DIRNAME/prom_check.py" $* < "$TMP/metrics.txt"
}
metric_is() { # URL SAMPLE VALUE
        metrics "$1" $SUP_METRICS | grep -qxF "$2 $3"
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 8 "$1"; }
health_is() { [ "$(http_code "$1/health")" = "$2" ]; }

@test "metrics listener: strict Prometheus text that follows a resize, /health flips to 503 with etcd stopped, /status, /" {
        m1=$(free_port)
        m2=$(free_port)
        start_sup h1 --ideal-cluster-size 1 --metrics-listen "127.0.0.1:$m1"
        wait_until 30 voter_count_is 1
        start_sup h2 --seeds "$URL_h1" --metrics-listen "127.0.0.1:$m2"
        M1=http://127.0.0.1:$m1
        M2=http://127.0.0.1:$m2
        wait_until 20 metric_is "$M1" "mgmt_cluster_voting_members{}" 1
        metrics "$M1" $SUP_METRICS > "$TMP/m1.txt"
        grep -qxF "mgmt_is_coordinator{} 1" "$TMP/m1.txt"
        grep -qxF "mgmt_failure_tolerance{} 0" "$TMP/m1.txt"
        grep -qxF "mgmt_etcd_up{} 1" "$TMP/m1.txt"
        grep -qxF 'mgmt_membership_changes_total{action="nominate"} 0' "$TMP/m1.txt"
        # h2 volunteers: a connected client is healthy
        wait_until 20 health_is "$M2" 200
        metrics "$M2" $SUP_METRICS | grep -qxF "mgmt_etcd_up{} 0"
        # ... while the cluster answers it: not with the only member's etcd stopped
        pid1=$(etcd_pid_of h1)
        kill -STOP "$pid1"
        wait_until 30 health_is "$M2" 503
        kill -CONT "$pid1"
        wait_until 30 health_is "$M2" 200

        set_ideal 2
        wait_until 60 voter_count_is 2
        wait_until 20 metric_is "$M1" "mgmt_cluster_voting_members{}" 2
        wait_until 20 metric_is "$M1" "mgmt_ideal_cluster_size{}" 2
        # at least one: a nominee slow to start is removed and nominated again
        metrics "$M1" $SUP_METRICS | awk '$1 == "mgmt_membership_changes_total{action=\"nominate\"}" { n = $2 } END { exit !(n >= 1) }'
        wait_until 20 health_is "$M2" 200
        wait_until 20 metric_is "$M2" "mgmt_etcd_up{}" 1

        # /status is the status document; / is the page
        curl -fsS "$M2/status" > "$TMP/doc.json"
        check_schema "$TMP/doc.json"
        [ "$(jq -r '.voters' "$TMP/doc.json")" -eq 2 ]
        curl -fsS "$M1/" | grep -q '<!DOCTYPE html>'
        [ "$(http_code "$M1/nope")" = 404 ]
        [ "$(http_code "$M1/status?wait=x")" = 400 ]

        # a stopped etcd: its member's /health says 503, and again 200 when it runs
        pid=$(etcd_pid_of h2)
        kill -STOP "$pid"
        wait_until 30 health_is "$M2" 503
        kill -CONT "$pid"
        wait_until 30 health_is "$M2" 200
}

@test "metrics listener: /status?wait=REV answers on the next change under /_mgmt/, not before" {
        m1=$(free_port)
        start_sup h1 --ideal-cluster-size 1 --metrics-listen "127.0.0.1:$m1"
        wait_until 30 voter_count_is 1
        M1=http://127.0.0.1:$m1
        # settled: coordinator and endpoints keys written, nothing else coming
        wait_until 20 status_settled 1
        sleep 1
        rev=$(curl -fsS "$M1/status" | jq -r '.revision')
        start_bg poll curl -fsS --max-time 20 "$M1/status?wait=$rev"
        sleep 2
        # still waiting: nothing changed
        kill -0 "$(cat "$TMP/poll.pid")"
        [ ! -s "$TMP/poll.log" ]
        set_ideal 3
        wait_until 10 sh -c "jq -e '.ideal == 3' '$TMP/poll.log'"
}

@test "metrics listener: an address in use or a bad address is a start-up error (exit 1)" {
        m1=$(free_port)
        start_sup h1 --ideal-cluster-size 1 --metrics-listen "127.0.0.1:$m1"
        wait_until 30 voter_count_is 1
        wait_until 10 health_is "http://127.0.0.1:$m1" 200
        run "$MGMT_BIN/mgmt-supervisor" --hostname h9 --prefix "$TMP/h9" --seeds "$URL_h1" \
                --client-urls "http://127.0.0.1:$(free_port)" --server-urls "http://127.0.0.1:$(free_port)" \
                --metrics-listen "127.0.0.1:$m1"
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot listen on '127.0.0.1:$m1': Address already in use"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname h9 --prefix "$TMP/h9" --metrics-listen "no-port"
        [ "$status" -eq 1 ]
        [[ "$output" == *"'no-port' has no port"* ]]
        run "$MGMT_BIN/mgmt-agent" --hostname h9 --seeds "$URL_h1" --metrics-listen "127.0.0.1:$m1"
        [ "$status" -eq 1 ]
        [[ "$output" == *"Address already in use"* ]]
}

@test "agent metrics: strict Prometheus text, converged after a deploy, /health and /status" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        ma=$(free_port)
        MA=http://127.0.0.1:$ma
        start_bg agent "$MGMT_BIN/mgmt-agent" --hostname h1 --seeds "$URL_h1" --prefix "$TMP/agent" \
                --metrics-listen "127.0.0.1:$ma"
        wait_until 20 health_is "$MA" 200
        cat > "$TMP/g.yaml" <<EOG
graph: g
resources:
  file:
  - name: f1
    path: $TMP/out/f1
    content: "hello\n"
    state: exists
  print:
  - name: p1
    msg: hi
EOG
        "$MGMT_BIN/mgmt-deploy" --seeds "$URL_h1" --wait --timeout 30 yaml "$TMP/g.yaml"
        wait_until 20 sh -c "curl -fsS '$MA/metrics' | grep -qx 'mgmt_deploy_id 1'"
        metrics "$MA" $AGENT_METRICS > "$TMP/ma.txt"
        grep -qxF "mgmt_converged{} 1" "$TMP/ma.txt"
        grep -qxF 'mgmt_resources{kind="file",state="ok"} 1' "$TMP/ma.txt"
        grep -qxF 'mgmt_resources{kind="print",state="ok"} 1' "$TMP/ma.txt"
        grep -qxF 'mgmt_checkapply_total{kind="file",eventful="true",errorful="false"} 1' "$TMP/ma.txt"
        curl -fsS "$MA/status" > "$TMP/doc.json"
        check_schema "$TMP/doc.json"
        [ "$(jq -r '.hosts[0].deploy' "$TMP/doc.json")" -eq 1 ]
}

@test "quieter logs: etcd chatter at debug only, a peer URL as seed is named, an agent without etcd backs off" {
        start_sup h1 --ideal-cluster-size 1 --log-level info
        wait_until 30 voter_count_is 1
        # etcd's info lines are not copied at --log-level info (its warnings would be)
        ! grep -E 'etcd: .*("level":"info"| I \| )' "$TMP/h1.log"
        # a seed that is a peer URL
        pport=$(cat "$TMP/h1.pport")
        run "$MGMT_BIN/mgmt-supervisor" status --seeds "http://127.0.0.1:$pport"
        [ "$status" -eq 1 ]
        [[ "$output" == *"this looks like a peer URL (port 2380?); --seeds takes client URLs"* ]]
        # an agent with no etcd: few warnings, growing delays
        dead=$(free_port)
        start_bg agent "$MGMT_BIN/mgmt-agent" --hostname a1 --seeds "http://127.0.0.1:$dead" --log-level info
        sleep 12
        stop_bg agent
        cat "$TMP/agent.log"
        n=$(grep -c 'warning' "$TMP/agent.log")
        [ "$n" -ge 1 ] && [ "$n" -le 5 ]
        grep -q 'retrying in [248] s' "$TMP/agent.log"
}

# Names and roles the page drew, "h1:member h2:member ..."
page_hosts() {
        python3 "$BATS_TEST_DIRNAME/cdp.py" "$CDP" eval \
                'Array.from(document.querySelectorAll("g.host")).map(g => g.dataset.host + ":" + g.dataset.role).join(" ")' |
                tr -d '"'
}
page_hosts_are() { [ "$(page_hosts)" = "$1" ]; }
# the page marks the host the status command calls leader (read again until
# no election falls between the two reads)
page_marks_leader() {
        local leader
        leader=$(status --json | jq -r '.leader')
        python3 "$BATS_TEST_DIRNAME/cdp.py" "$CDP" eval \
                'Array.from(document.querySelectorAll("g.host text")).map(t => t.textContent).join("|")' |
                grep -q "$leader ★"
}

@test "status page in a headless browser: members, roles and leader of a live 3-of-4 cluster; it changes after a resize" {
        command -v chromium >/dev/null || { echo "chromium not installed: run scripts/deps.sh"; return 1; }
        m1=$(free_port)
        start_sup h1 --ideal-cluster-size 3 --metrics-listen "127.0.0.1:$m1"
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        wait_until 20 status_settled 3
        want=$(status --json | jq -r '[.hosts[] | "\(.name):\(.role)"] | join(" ")')
        CDP=$(free_port)
        start_bg chromium chromium --headless --no-sandbox --disable-gpu --no-first-run \
                --user-data-dir="$TMP/chromium" --remote-debugging-port="$CDP" --window-size=1000,800 \
                "http://127.0.0.1:$m1/"
        wait_until 30 page_hosts_are "$want"
        # the leader is marked, the header carries the failure tolerance
        python3 "$BATS_TEST_DIRNAME/cdp.py" "$CDP" eval 'document.getElementById("h-failure-tolerance").textContent' |
                grep -qx '"failure tolerance: 1"'
        wait_until 20 page_marks_leader
        python3 "$BATS_TEST_DIRNAME/cdp.py" "$CDP" screenshot "$TMP/status-page-3.png"
        # grow to 4: the page follows by itself (long-poll), no reload
        set_ideal 4
        wait_until 90 voter_count_is 4
        wait_until 30 page_hosts_are "h1:member h2:member h3:member h4:member"
        python3 "$BATS_TEST_DIRNAME/cdp.py" "$CDP" screenshot "$TMP/status-page-4.png"
        [ -s "$TMP/status-page-4.png" ]
        echo "screenshots: $TMP/status-page-3.png $TMP/status-page-4.png (MGMT_KEEP_TMP=1 keeps them)"
}
