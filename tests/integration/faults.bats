#!/usr/bin/env bats
# Faults (issue 4): every one recovers by itself, and no acknowledged write is lost.
# Supervisors run with --dead-member-grace 4 --nominate-timeout 8 (sup.bash).

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

# A three-member cluster of h1..h3, then the spares given as arguments, each
# volunteering (the spares join after the three, so they are the spares
# however the joiners' connection retries fall)
three() {
        local h
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup "$h" --seeds "$URL_h1"; done
        wait_until 90 voter_count_is 3
        for h in "$@"; do
                start_sup "$h" --seeds "$URL_h1"
                wait_until 30 key_set "/_mgmt/volunteer/$h"
        done
}

put_data() {
        for i in $(seq 1 20); do
                etcdctl --endpoints "$(all_urls)" put "/test/data/$i" "v$i" >/dev/null
        done
}

check_data() {
        run etcdctl --endpoints "${1:-$(all_urls)}" --command-timeout 10s get --prefix /test/data/ --print-value-only
        [ "$(echo "$output" | grep -c '^v')" -eq 20 ]
}

member_id_of() {
        member_list | awk -F', ' -v n="$1" '$3 == n { print $1 }'
}

@test "a member's host dies: its etcd dies with it, the dead member is removed first, a spare replaces it" {
        three h4
        put_data
        victim=$(voters | grep -v '^h1$' | head -1)
        ep=$(etcd_pid_of "$victim")
        kill -KILL "$(cat "$TMP/$victim.pid")"
        # PR_SET_PDEATHSIG: etcd does not outlive its supervisor
        wait_until 10 bash -c "! kill -0 $ep 2>/dev/null"
        wait_until 60 is_voter h4
        wait_until 60 voter_count_is 3
        ! voters | grep -qx "$victim"
        grep -h "removing member $victim: host gone" "$TMP"/h*.log
        # dead first, then add
        rm_line=$(grep -h "coordinator: removing member $victim" "$TMP"/h*.log | head -1 | cut -c1-12)
        add_line=$(grep -h "coordinator: nominating h4" "$TMP"/h*.log | head -1 | cut -c1-12)
        [[ "$rm_line" < "$add_line" || "$rm_line" == "$add_line" ]]
        check_data
}

@test "a healthy member's endpoints key deleted behind its back is put back, and the cluster still grows" {
        # what a withdrawal sent while the member's etcd was down looks like
        # when it lands late, after the member published again (chaos seed 7291)
        start_sup h1 --ideal-cluster-size 2
        start_sup h2 --seeds "$URL_h1"
        wait_until 90 voter_count_is 2
        wait_until 10 key_set /_mgmt/endpoints/h2
        etcdctl --endpoints "$(all_urls)" del /_mgmt/endpoints/h2 >/dev/null
        wait_until 10 key_set /_mgmt/endpoints/h2
        grep -q "our endpoints key is gone from etcd though we published it; publishing it again" "$TMP/h2.log"
        # the coordinator counts h2 healthy again: a third member is added
        start_sup h3 --seeds "$URL_h1"
        set_ideal 3
        wait_until 60 voter_count_is 3
}

@test "with no spare the cluster stays smaller and healthy" {
        three
        put_data
        kill_host h3
        wait_until 60 voter_count_is 2
        etcdctl --endpoints "$URL_h1" put /after v
        check_data
}

@test "the etcd child crashes: restarted with its data, same member id, spaced and counted" {
        three
        put_data
        id=$(member_id_of h2)
        kill -KILL "$(etcd_pid_of h2)"
        wait_until 20 grep -q "etcd crashed 1 time(s) in a row" "$TMP/h2.log"
        wait_until 30 etcd_healthy "$URL_h2"
        kill -KILL "$(etcd_pid_of h2)"
        wait_until 20 grep -q "etcd crashed 2 time(s) in a row" "$TMP/h2.log"
        grep -q "restarting it in 2000 ms" "$TMP/h2.log"
        wait_until 30 etcd_healthy "$URL_h2"
        [ "$(member_id_of h2)" = "$id" ]
        voter_count_is 3
        check_data "$URL_h2"
}

@test "supervisor restart within the grace rejoins as the same member; after it, the stale data is moved aside" {
        # a grace that an ASan supervisor's stop and start fit in on a busy machine
        SUP_FLAGS="--dead-member-grace 15 --nominate-timeout 8 --stop-timeout 5"
        three h4
        put_data
        id=$(member_id_of h3)
        stop_bg h3 TERM
        grep -q "data and membership kept" "$TMP/h3.log"
        start_sup h3 --seeds "$URL_h1"
        wait_until 30 etcd_healthy "$URL_h3"
        wait_until 30 voter_count_is 3
        [ "$(member_id_of h3)" = "$id" ]
        ! grep -h "removing member h3" "$TMP"/h*.log
        # now stay away longer than the grace: h4 replaces h3
        stop_bg h3 TERM
        wait_until 60 is_voter h4
        wait_until 30 voter_count_is 3
        start_sup h3 --seeds "$URL_h1"
        # it finds its member removed, moves the stale data aside and volunteers again
        wait_until 40 grep -q "moved etcd data '$TMP/h3/etcd' aside to '$TMP/h3/old/.*-removed'" "$TMP/h3.log"
        ls -d "$TMP"/h3/old/*-removed/member
        wait_until 20 grep -q "volunteering as 'h3'" "$TMP/h3.log"
        voter_count_is 3
        check_data
}

@test "the coordinator's host dies: another takes over and finishes the job" {
        three h4 h5
        put_data
        coord=$(etcdctl --endpoints "$(all_urls)" get /_mgmt/coordinator --print-value-only)
        [ -n "$coord" ]
        kill_host "$coord"
        wait_until 60 coordinator_is_not "$coord"
        wait_until 60 voter_count_is 3
        ! voters | grep -qx "$coord"
        # a half-done change: a nomination without a member is finished by the coordinator
        spare=$(comm -23 <(printf 'h1\nh2\nh3\nh4\nh5\n' | grep -vx "$coord") <(voters) | head -1)
        set_ideal 4
        wait_until 60 voter_count_is 4
        voters | grep -qx "$spare"
        check_data
}

@test "a nominee that never starts is removed after --nominate-timeout, cools down, another is tried" {
        start_sup h1 --ideal-cluster-size 2
        start_sup h2 --seeds "$URL_h1" --etcd-binary /nonexistent/etcd
        wait_until 30 grep -q "nominating h2" "$TMP/h1.log"
        start_sup h3 --seeds "$URL_h1"
        wait_until 60 grep -q "removing learner h2: not promoted within 8s (its etcd did not start); cooling down" "$TMP/h1.log"
        wait_until 60 voter_count_is 2
        voters | grep -qx h3
        grep -q "cannot execute '/nonexistent/etcd'" "$TMP/h2.log"
}

@test "a duplicate hostname refuses to start and names the host" {
        three
        cport=$(free_port)
        pport=$(free_port)
        run timeout 30 "$MGMT_BIN/mgmt-supervisor" --hostname h2 --prefix "$TMP/dup" --seeds "$URL_h1" \
                --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$pport"
        [ "$status" -eq 1 ]
        [[ "$output" == *"hostname 'h2' is already in use"* ]]
        voter_count_is 3
}

@test "whole-cluster restart in any order brings the same cluster back with its data" {
        three
        put_data
        before=$(member_list | awk -F', ' '{print $1}' | sort)
        for h in h1 h2 h3; do stop_bg $h TERM; done
        # the seed comes back last; the joiners find each other through their endpoint caches
        start_sup h3 --seeds "$URL_h1"
        start_sup h2 --seeds "$URL_h1"
        wait_until 60 etcd_healthy "$URL_h2"
        start_sup h1 --ideal-cluster-size 3
        wait_until 60 voter_count_is 3
        [ "$(member_list | awk -F', ' '{print $1}' | sort)" = "$before" ]
        ! grep -q "bootstrapping a new" "$TMP/h1.log"
        check_data
}

@test "loss of quorum: no membership change, clear log, recovery when a host returns" {
        three
        put_data
        kill_host h2
        kill_host h3
        wait_until 30 grep -q "quorum lost" "$TMP/h1.log"
        sleep 6 # longer than the grace: still no removal without quorum
        ! grep -q "coordinator: removing" "$TMP/h1.log"
        start_sup h2 --seeds "$URL_h1"
        wait_until 60 grep -q "quorum is back" "$TMP/h1.log"
        wait_until 60 etcd_healthy "$URL_h1"
        # h3 stays dead: removed after the grace, the cluster carries on with two
        wait_until 60 voter_count_is 2
        check_data "$URL_h1"
}

@test "SIGHUP re-reads the config file; SIGTERM stops within the stop timeout" {
        SUP_FLAGS="--stop-timeout 5"
        printf 'dead-member-grace: 4\n' > "$TMP/c.yaml"
        start_sup h1 --ideal-cluster-size 1 --config "$TMP/c.yaml"
        wait_until 30 etcd_healthy "$URL_h1"
        printf 'dead-member-grace: 9\n' > "$TMP/c.yaml"
        kill -HUP "$(cat "$TMP/h1.pid")"
        wait_until 10 grep -q "dead-member-grace 9s" "$TMP/h1.log"
        start=$(date +%s)
        stop_bg h1 TERM
        [ $(( $(date +%s) - start )) -le 10 ]
        grep -q "etcd stopped; data and membership kept" "$TMP/h1.log"
}
