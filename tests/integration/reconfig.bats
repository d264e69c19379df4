#!/usr/bin/env bats
# The coordinator owns etcd's reconfiguration checks (issue 16): etcd runs with
# --strict-reconfig-check=false, and the coordinator adds a learner only while
# every voter is healthy and promotes one only when it answers and quorum
# holds after the promotion.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

plan_says() { # TEXT
        etcdctl --endpoints "$(all_urls)" --dial-timeout 2s get /_mgmt/plan --print-value-only 2>/dev/null |
                jq -e --arg t "$1" '.why | contains($t)' >/dev/null
}

member_count_is() {
        [ "$(member_list "$URL_h1" | grep -c .)" -eq "$1" ]
}

learners() {
        member_list | awk -F', ' '$6 == "true"' | wc -l
}

@test "with etcd's strict check turned back on, three still form" {
        SUP_FLAGS="$SUP_FLAGS --etcd-arg=--strict-reconfig-check=true"
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup $h --seeds "$URL_h1"; done
        wait_until 90 voter_count_is 3
        grep -q -- "--strict-reconfig-check=true" "$TMP/h1.log"
        ! grep -q -- "--strict-reconfig-check=false" "$TMP/h1.log"
}

@test "a voter that is down when a volunteer appears: no learner until it is healthy again" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        # freeze a voter that is not the coordinator
        coord=$(etcdctl --endpoints "$(all_urls)" get /_mgmt/coordinator --print-value-only)
        for v in h1 h2 h3; do [ "$v" != "$coord" ] && { frozen=$v; break; }; done
        p=$(etcd_pid_of "$frozen")
        kill -STOP "$p"
        wait_until 30 bash -c "! etcdctl --endpoints '$(all_urls)' get /_mgmt/endpoints/$frozen --keys-only | grep -q ."
        start_sup h4 --seeds "$URL_h1"
        set_ideal 4
        wait_until 30 plan_says "not adding h4 as learner yet"
        [ "$(learners)" -eq 0 ]
        kill -CONT "$p"
        wait_until 60 voter_count_is 4
}

@test "a learner that never catches up is never promoted; removed after --nominate-timeout, quorum kept" {
        start_sup h1 --ideal-cluster-size 2
        wait_until 30 voter_count_is 1
        # h2's etcd is stopped right after it is spawned: the learner never
        # catches up (etcd would refuse to promote it, and we never ask)
        cat > "$TMP/etcd-freeze" <<EOS
#!/bin/bash
etcd "\$@" &
pid=\$!
echo \$pid >> "$TMP/.pids"
kill -STOP \$pid
wait \$pid
EOS
        chmod +x "$TMP/etcd-freeze"
        start_sup h2 --seeds "$URL_h1" --etcd-binary "$TMP/etcd-freeze"
        wait_until 60 grep -q "removing learner h2: not promoted within 8s" "$TMP/h1.log"
        ! grep -q "coordinator: promoting learner h2" "$TMP/h1.log"
        ! grep -q "nominee -> member" "$TMP/h2.log"
        wait_until 10 member_count_is 1
        # the quorum was never at risk: h1 alone still serves
        etcdctl --endpoints "$URL_h1" put /test/after ok
        ! grep -q "quorum lost" "$TMP/h1.log"
}
