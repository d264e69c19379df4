#!/usr/bin/env bats
# Clustering with real etcd processes: formation, resizing, re-use of removed
# hosts, start order, bad input (issue 3).

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

@test "four hosts with ideal 3 form a three-member cluster, none learner" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        # a fourth volunteer stays a volunteer (the last joiner's key may come
        # a retry later than the three members)
        wait_until 20 bash -c "[ \"\$(etcdctl --endpoints '$URL_h1' get --prefix /_mgmt/volunteer/ --keys-only | grep -c volunteer/)\" -eq 4 ]"
        run etcdctl --endpoints "$URL_h1" get --prefix /_mgmt/nominated/ --keys-only
        [ "$(echo "$output" | grep -c nominated/)" -eq 3 ]
        # the coordinator recorded itself
        run etcdctl --endpoints "$URL_h1" get /_mgmt/coordinator --print-value-only
        [[ "$output" =~ ^h[1-4]$ ]]
        # every member answers from its own endpoint
        for m in $(voters); do
                url=URL_$m
                etcd_healthy "${!url}"
        done
}

@test "grow 3 to 5, shrink to 3, grow back re-using removed hosts, no acknowledged write lost" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4 h5; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        start_writer
        wait_until 20 acked_at_least 5
        set_ideal 5
        wait_until 90 voter_count_is 5
        set_ideal 3
        wait_until 60 voter_count_is 3
        removed=$(comm -23 <(printf 'h1\nh2\nh3\nh4\nh5\n') <(voters))
        [ "$(echo "$removed" | wc -w)" -eq 2 ]
        # removed hosts wiped their data and volunteer again
        for h in $removed; do
                wait_until 20 test ! -d "$TMP/$h/etcd/member"
        done
        set_ideal 5
        wait_until 90 voter_count_is 5
        # and again: re-use works any number of times
        set_ideal 3
        wait_until 60 voter_count_is 3
        set_ideal 5
        wait_until 90 voter_count_is 5
        ! grep -q "address already in use" "$TMP"/h*.log
        wait_until 20 acked_at_least 20
        check_writes
}

@test "a cluster of one (ideal 1) bootstraps and serves; volunteers stay out" {
        start_sup h1 --ideal-cluster-size 1
        start_sup h2 --seeds "$URL_h1"
        wait_until 30 voter_count_is 1
        wait_until 10 grep -q "volunteering as 'h2'" "$TMP/h2.log"
        etcdctl --endpoints "$URL_h1" put /k v
        run etcdctl --endpoints "$URL_h1" get /k --print-value-only
        [ "$output" = v ]
        # the seed records the ideal size once its etcd answers
        wait_until 10 key_is "$URL_h1" /_mgmt/idealClusterSize 1
        voter_count_is 1
}

@test "joiners started before the seed wait and join when it appears" {
        cport=$(free_port)
        pport=$(free_port)
        echo "$cport" > "$TMP/h1.cport"
        echo "$pport" > "$TMP/h1.pport"
        start_sup h2 --seeds "http://127.0.0.1:$cport"
        start_sup h3 --seeds "http://127.0.0.1:$cport"
        wait_until 10 grep -q "retrying" "$TMP/h2.log"
        start_sup h1 --ideal-cluster-size 3
        wait_until 60 voter_count_is 3
}

@test "a seed that never answers: clear error, keeps retrying with backoff" {
        dead=$(free_port)
        start_sup h2 --seeds "http://127.0.0.1:$dead"
        wait_until 10 grep -q "cannot reach etcd.*127.0.0.1:$dead.*retrying" "$TMP/h2.log"
        sleep 2
        kill -0 "$(cat "$TMP/h2.pid")"
}

@test "bad input: invalid hostname, ideal size 0, conflicting ports, unknown flag" {
        run "$MGMT_BIN/mgmt-supervisor" --hostname 'bad_name!' --prefix "$TMP/x"
        [ "$status" -eq 2 ]
        [[ "$output" == *"invalid --hostname 'bad_name!'"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname h1 --ideal-cluster-size 0 --prefix "$TMP/x"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--ideal-cluster-size"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --bogus
        [ "$status" -eq 2 ]
        [[ "$output" == *"unknown option '--bogus'"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname h1 --seeds "not-a-url" --prefix "$TMP/x"
        [ "$status" -eq 2 ]
        [[ "$output" == *"invalid URL 'not-a-url'"* ]]
        # a port already taken: refused, naming the port and the flag
        start_etcd other
        port=${ETCD_ENDPOINT##*:}
        run "$MGMT_BIN/mgmt-supervisor" --hostname h1 --prefix "$TMP/x" --client-urls "$ETCD_ENDPOINT" \
                --server-urls "http://127.0.0.1:$(free_port)"
        [ "$status" -ne 0 ]
        [[ "$output" == *"port $port (--client-urls $ETCD_ENDPOINT) is already in use"* ]]
        [ ! -d "$TMP/x/etcd" ]
}

@test "--help lists every flag with its environment twin and default; --version" {
        run "$MGMT_BIN/mgmt-supervisor" --help
        [ "$status" -eq 0 ]
        for f in hostname seeds client-urls server-urls advertise-client-urls advertise-server-urls \
                ideal-cluster-size no-server prefix tmp-prefix etcd-binary nominate-timeout \
                dead-member-grace cert-file key-file trusted-ca-file client-cert-auth peer-cert-file \
                peer-key-file peer-trusted-ca-file peer-client-cert-auth etcd-arg config log-level; do
                [[ "$output" == *"--$f"* ]]
        done
        [[ "$output" == *"env MGMT_IDEAL_CLUSTER_SIZE, default 5"* ]]
        [[ "$output" == *"alias --peer-urls"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --version
        [ "$status" -eq 0 ]
        [[ "$output" == "mgmt-supervisor "* ]]
}

@test "flags have environment twins and a config file, flag > env > file" {
        cat > "$TMP/conf.yaml" <<EOF
hostname: fromfile
ideal-cluster-size: 4
EOF
        cport=$(free_port)
        pport=$(free_port)
        MGMT_IDEAL_CLUSTER_SIZE=2 start_bg hx "$MGMT_BIN/mgmt-supervisor" --config "$TMP/conf.yaml" \
                --prefix "$TMP/hx" --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$pport"
        wait_until 30 etcd_healthy "http://127.0.0.1:$cport"
        wait_until 10 key_is "http://127.0.0.1:$cport" /_mgmt/idealClusterSize 2
        run etcdctl --endpoints "http://127.0.0.1:$cport" member list
        [[ "$output" == *", fromfile, "* ]]
}
