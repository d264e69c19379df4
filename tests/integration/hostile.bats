#!/usr/bin/env bats
# hostile.bats: real etcd, real agents and mgmt-deploy against hostile or
# missing parties: hosts that stop reporting while --wait waits, a host that
# never reports, a far-ahead deploy id that is deleted again, and one huge
# value under /_mgmt/endpoints/ that must not saturate an agent.

load agents

setup() {
        mgmt_setup
        AGENT=$MGMT_BIN/mgmt-agent
        DEPLOY=$MGMT_BIN/mgmt-deploy
        unset MGMT_SEEDS MGMT_HOSTS MGMT_MIN_HOSTS
}

teardown() {
        mgmt_teardown
}

start_agents() { # HOST...
        local h
        for h in "$@"; do
                start_bg "agent-$h" "$AGENT" --hostname "$h" --seeds "$ETCD_ENDPOINT"
        done
}

@test "hostile: a deleted far-ahead deploy id is forgotten; agents follow the highest id that exists" {
        start_etcd etcd
        start_agents ha hb
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --timeout 30 yaml "$TMP/d1.yaml"
        [ "$status" -eq 0 ]
        # a far-ahead bad payload: every agent refuses it and says so
        ectl put /_mgmt/deploy/99999/payload '{}' > /dev/null
        wait_until 20 status_is ha 99999 failed
        wait_until 20 status_is hb 99999 failed
        ectl del /_mgmt/deploy/99999/payload > /dev/null
        # forgotten: back on deploy 1, reported converged
        wait_until 20 status_is ha 1 converged
        wait_until 20 status_is hb 1 converged
        grep -q "deploy 99999 was deleted: following the highest deploy that remains" "$TMP/agent-ha.log"
        deploy_graph "$TMP/d2.yaml" two
        run md --force --wait --timeout 30 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "all 2 hosts converged on deploy 2"
        for h in ha hb; do
                status_is "$h" 2 converged
                file_is "$TMP/out-$h/f" "two on $h"
        done
        # a bad deploy 3 written by hand, then deleted: mgmt-deploy re-uses id 3
        h2=$(ectl get --print-value-only /_mgmt/deploy/2/hash)
        printf 'graph: bad\nresources:\n  file:\n  - name: x\n    path: relative/path\n' > "$TMP/bad.yaml"
        write_deploy 3 "$TMP/bad.yaml" "$h2" > /dev/null
        wait_until 20 status_is ha 3 failed
        wait_until 20 status_is hb 3 failed
        ectl del --prefix /_mgmt/deploy/3/ > /dev/null
        deploy_graph "$TMP/d3.yaml" three
        run md --wait --timeout 30 yaml "$TMP/d3.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(ectl get --print-value-only /_mgmt/deploy/3/payload | jq -r .graph | head -1)" = "graph: d-three" ]
        for h in ha hb; do
                status_is "$h" 3 converged
                file_is "$TMP/out-$h/f" "three on $h"
        done
}

@test "hostile: --wait names a SIGKILLed agent and a stopped one; --min-hosts lets a fleet shrink on purpose" {
        start_etcd etcd
        start_agents ha hb hc
        # --wait knows the hosts that report (or volunteer) when it starts
        for h in ha hb hc; do wait_until 20 status_is "$h" 0 converged; done
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "all 3 hosts converged on deploy 1"
        # hc dies: its status key lives on until its lease (10 s) expires, then vanishes
        kill -KILL "$(cat "$TMP/agent-hc.pid")"
        deploy_graph "$TMP/d2.yaml" two
        # the key goes 7-10 s after the kill (keepalives every 3 s, TTL 10 s)
        run md --wait --timeout 20 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "host 'hc' stopped reporting status"
        echo "$output" | grep -q "pending hosts: hc (stopped reporting: status key gone; last: converged deploy 1)"
        ! echo "$output" | grep -q "hosts converged on deploy 2"
        status_is ha 2 converged
        status_is hb 2 converged
        # a fleet that shrinks on purpose: hc comes back, then goes for good during
        # the next wait; two converged hosts are enough, and hc is named
        start_bg agent-hc2 "$AGENT" --hostname hc --seeds "$ETCD_ENDPOINT"
        wait_until 20 status_is hc 2 converged
        kill -KILL "$(cat "$TMP/agent-hc2.pid")"
        deploy_graph "$TMP/d3.yaml" three
        run md --wait --min-hosts 2 --timeout 20 yaml "$TMP/d3.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "2 of 3 hosts converged on deploy 3 (--min-hosts 2); not reporting, not waited for: hc"
        # ... but not fewer than N
        run md --wait --force --min-hosts 3 --timeout 3 yaml "$TMP/d3.yaml"
        echo "$output"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "2 hosts converged, fewer than --min-hosts 3"
        # a stopped (SIGSTOP) agent keeps its key a while but never converges
        kill -STOP "$(cat "$TMP/agent-hb.pid")"
        run md --wait --force --timeout 3 yaml "$TMP/d2.yaml"
        kill -CONT "$(cat "$TMP/agent-hb.pid")"
        echo "$output"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "pending hosts: hb (converged deploy 4)"
}

@test "hostile: --wait --hosts naming a host that never reports exits 4 naming it" {
        start_etcd etcd
        start_agents ha
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --hosts ha,hz --timeout 5 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "pending hosts: hz (never reported; named by --hosts)"
        status_is ha 1 converged
        # --hosts is waited for even with --min-hosts
        run md --wait --force --hosts hz --min-hosts 1 --timeout 3 yaml "$TMP/d1.yaml"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "hz (never reported"
        # and the happy path with --hosts
        run md --wait --force --hosts ha --timeout 20 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "all 1 hosts converged on deploy 3"
        # bad input: a usage error, nothing written
        run md --wait --hosts 'h_1' yaml "$TMP/d1.yaml"
        [ "$status" -eq 2 ]
        echo "$output" | grep -q "invalid host name 'h_1'"
        run md --min-hosts 2 yaml "$TMP/d1.yaml"
        [ "$status" -eq 2 ]
        [ -z "$(ectl get --prefix --keys-only /_mgmt/deploy/4/)" ]
}

@test "hostile: --wait for 13 hosts: progress names at most 10, at most once a second; the timeout names all" {
        start_etcd etcd
        start_agents ha
        deploy_graph "$TMP/d1.yaml" one
        local hosts=ha i
        for i in 01 02 03 04 05 06 07 08 09 10 11 12; do hosts+=",hz$i"; done
        run md --wait --hosts "$hosts" --timeout 3 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 4 ]
        status_is ha 1 converged
        # the first line: 12 pending named by --hosts (ha may have converged
        # or not), 10 of them named, the rest counted
        local first
        first=$(echo "$output" | grep "waiting for deploy 1: " | head -1)
        echo "$first" | grep -Eq "and [23] more$"
        [ "$(echo "$first" | grep -o "(never reported; named by --hosts)" | wc -l)" -le 10 ]
        # at most one progress line a second over the 3 s wait (the first at
        # once, then at most one per second: 4)
        [ "$(echo "$output" | grep -c "waiting for deploy 1: ")" -le 4 ]
        # the timeout's error names every pending host
        local err
        err=$(echo "$output" | grep "pending hosts: ")
        for i in 01 02 03 04 05 06 07 08 09 10 11 12; do
                echo "$err" | grep -q "hz$i (never reported; named by --hosts)"
        done
        ! echo "$err" | grep -q "more"
}

@test "hostile: --wait waits for a host holding a volunteer key even before its agent reports" {
        start_etcd etcd
        start_agents ha
        lease=$(ectl lease grant 30 | awk '{print $2}')
        ectl put --lease="$lease" /_mgmt/volunteer/hv http://127.0.0.1:9 > /dev/null
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --timeout 3 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "pending hosts: hv (never reported)"
        start_agents hv
        run md --wait --force --timeout 20 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "all 2 hosts converged on deploy 2"
}

# cpu_ticks PID: user + system time of a process so far, in clock ticks.
cpu_ticks() {
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

@test "hostile: a 1.4 MB /_mgmt/endpoints/zz of 55,000 URLs: one warning, low CPU, the lease kept" {
        start_etcd etcd
        start_agents ha
        local pid
        pid=$(cat "$TMP/agent-ha.pid")
        wait_until 10 grep -q "no deploy yet" "$TMP/agent-ha.log"
        wait_until 10 status_is ha 0 converged
        lease=$(lease_of ha)
        ectl put /_mgmt/endpoints/h1 "$ETCD_ENDPOINT" > /dev/null
        wait_until 10 grep -q "etcd endpoints: $ETCD_ENDPOINT" "$TMP/agent-ha.log"
        # 55,000 distinct URLs, 1.4 MB (etcd's request limit is 1.5 MiB)
        awk 'BEGIN { for (i = 0; i < 55000; i++) printf "%shttp://h%05d.example:2379", (i ? "," : ""), i }' > "$TMP/zz"
        [ "$(stat -c %s "$TMP/zz")" -gt 1400000 ]
        before=$(cpu_ticks "$pid")
        start=$(date +%s%N)
        ectl put /_mgmt/endpoints/zz < "$TMP/zz" > /dev/null
        # other hosts' endpoint keys keep changing: each change re-reads the prefix
        for i in 1 2 3 4 5; do
                sleep 2
                ectl put /_mgmt/endpoints/h2 "http://127.0.0.1:$((9000 + i))" > /dev/null
        done
        after=$(cpu_ticks "$pid")
        end=$(date +%s%N)
        hz=$(getconf CLK_TCK)
        # CPU share of one core over the window, in percent
        pct=$(( (after - before) * 100 * 1000000000 / hz / (end - start) ))
        echo "agent CPU over $(( (end - start) / 1000000 )) ms: $pct% of one core"
        [ "$pct" -lt 20 ]
        # one warning for the one value, not one per refresh
        grep "ignoring endpoints key" "$TMP/agent-ha.log"
        [ "$(grep -c "ignoring endpoints key '/_mgmt/endpoints/zz' (1[0-9]* bytes): URL list longer than the limit of 65536 bytes" "$TMP/agent-ha.log")" -eq 1 ]
        # the session lease never expired: same lease, status still there
        [ "$(lease_of ha)" = "$lease" ]
        ! grep -q "expired" "$TMP/agent-ha.log"
        # the good keys are still used, and the agent still applies deploys
        wait_until 10 grep -q "etcd endpoints: .*127.0.0.1:9005" "$TMP/agent-ha.log"
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --timeout 20 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-ha/f" "one on ha"
}

@test "hostile: the seed dies and every endpoints key is gone: the agent keeps a list that answers" {
        local n
        start_etcd_trio
        local -n cp=TRIO_CP
        ETCD_ENDPOINT=http://127.0.0.1:${cp[m2]}
        for n in m2 m3; do
                ectl put "/_mgmt/endpoints/$n" "http://127.0.0.1:${cp[$n]}" > /dev/null
        done
        # the agent knows only the seed m1; the keys teach it m2 and m3
        start_bg agent-ha "$AGENT" --hostname ha --seeds "http://127.0.0.1:${cp[m1]}"
        wait_until 10 status_is ha 0 converged
        wait_until 10 grep -q "etcd endpoints: .*${cp[m3]}" "$TMP/agent-ha.log"
        # power loss of the seed; then no endpoints key is visible (sessions expired)
        stop_bg etcd-m1 KILL
        wait_until 30 etcd_healthy "$ETCD_ENDPOINT"
        ectl del --prefix /_mgmt/endpoints/ > /dev/null
        # the agent has seen it (kept its list, or shrunk it to the dead seed)
        wait_until 20 grep -qE "no usable /_mgmt/endpoints/ key visible|etcd endpoints: http://127.0.0.1:${cp[m1]}$" "$TMP/agent-ha.log"
        # the list still answers: the agent keeps following deploys
        deploy_graph "$TMP/d1.yaml" one
        run md --wait --timeout 20 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-ha/f" "one on ha"
        ! grep -q "etcd endpoints: http://127.0.0.1:${cp[m1]}$" "$TMP/agent-ha.log"
        grep -q "no usable /_mgmt/endpoints/ key visible: keeping the current endpoint list" "$TMP/agent-ha.log"
}

lease_of() { # HOST: the lease of its status key, exactly (jq would round an int64)
        ectl get "/_mgmt/status/$1" -w json | grep -o '"lease":[0-9]*' | cut -d: -f2
}

status_lease_is_not() { # HOST LEASE: the status key exists on another lease
        local l
        l=$(lease_of "$1")
        [ -n "$l" ] && [ "$l" != "$2" ]
}

@test "hostile: keepalives failing for a whole TTL: the agent re-grants its lease and rewrites its status" {
        start_etcd etcd
        start_agents ha
        wait_until 10 status_is ha 0 converged
        old=$(lease_of ha)
        # etcd freezes for longer than the lease TTL (10 s), then comes back
        kill -STOP "$(cat "$TMP/etcd.pid")"
        sleep 14
        kill -CONT "$(cat "$TMP/etcd.pid")"
        grep -q "warning: lease .* keepalive failed" "$TMP/agent-ha.log"
        [ "$(grep -c "warning: lease .* keepalive failed" "$TMP/agent-ha.log")" -eq 1 ]
        grep -q "warning: lease .*: no successful keepalive for 10 s, it may have expired: granting a new one" "$TMP/agent-ha.log"
        wait_until 15 status_lease_is_not ha "$old"
        status_is ha 0 converged
        new=$(lease_of ha)
        # the new session holds: the status is still there after another TTL
        sleep 11
        status_is ha 0 converged
        [ "$(lease_of ha)" = "$new" ]
}
