#!/usr/bin/env bats
# Membership safety with real etcd (issues 12, 13): no resize and no fault
# costs the quorum; a node acts only on confirmed facts. Each resize test runs
# a writer and checks that no acknowledged write is lost.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }


nominated_count_is() {
        [ "$(etcdctl --endpoints "$(all_urls)" get --prefix /_mgmt/nominated/ --keys-only | grep -c nominated/)" -eq "$1" ]
}

# Writes work right now (a quorum answers).
writable() {
        etcdctl --endpoints "$(all_urls)" --dial-timeout 2s --command-timeout 3s put /test/probe x >/dev/null
}

resize_to() {
        set_ideal "$1"
        wait_until 90 voter_count_is "$1"
        wait_until 10 writable
}

@test "shrink 2 -> 1 keeps the quorum; the leaving host leaves only after its removal" {
        start_sup h1 --ideal-cluster-size 2
        start_sup h2 --seeds "$URL_h1"
        wait_until 60 voter_count_is 2
        start_writer
        wait_until 20 acked_at_least 20
        resize_to 1
        wait_until 20 acked_at_least 40
        check_writes
        # the leaver served until the cluster had removed it
        left=$(comm -23 <(printf 'h1\nh2\n') <(voters))
        wait_until 20 grep -q "role: departed -> volunteer" "$TMP/$left.log"
        ! grep -q "quorum lost" "$TMP"/h*.log
        # its data was moved aside, not deleted
        ls -d "$TMP/$left"/old/*-removed
}

@test "shrink 3 -> 1 -> 3 keeps the quorum at every step" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        start_writer
        # writes served at every size (the resizes alone can take less time
        # than the eleven writes check_writes wants)
        wait_until 20 acked_at_least 10
        resize_to 1
        wait_until 20 acked_at_least 20
        resize_to 3
        wait_until 20 acked_at_least 30
        check_writes
        ! grep -q "quorum lost" "$TMP"/h*.log
}

@test "resize 5 -> 2 -> 4 -> 1 -> 3 -> 5 -> 1: every size reached, writes served at every step" {
        start_sup h1 --ideal-cluster-size 5
        for h in h2 h3 h4 h5; do start_sup $h --seeds "$URL_h1"; done
        wait_until 90 voter_count_is 5
        start_writer
        wait_until 20 acked_at_least 20
        for size in 2 4 1 3 5 1; do
                resize_to $size
        done
        check_writes
        ! grep -q "quorum lost" "$TMP"/h*.log
}

@test "deleting every nomination key wipes nothing: keys are repaired, data and keys stay" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        for i in $(seq 1 100); do echo "put /test/k/$i $i"; done |
                etcdctl --endpoints "$URL_h1" txn >/dev/null 2>&1 ||
                for i in $(seq 1 100); do etcdctl --endpoints "$URL_h1" put "/test/k/$i" "$i" >/dev/null; done
        etcdctl --endpoints "$URL_h1" del --prefix /_mgmt/nominated/
        wait_until 20 nominated_count_is 3
        voter_count_is 3
        [ "$(etcdctl --endpoints "$(all_urls)" get --prefix /test/k/ --keys-only | grep -c /test/k/)" -eq 100 ]
        ! grep -q "leaving the cluster" "$TMP"/h*.log
        for h in h1 h2 h3; do test -d "$TMP/$h/etcd/member"; done
}

@test "two hosts given the same peer URL: the second is refused, naming both" {
        start_sup h1 --ideal-cluster-size 1
        pport=$(free_port)
        cport2=$(free_port)
        cport3=$(free_port)
        start_bg h2 "$MGMT_BIN/mgmt-supervisor" --hostname h2 --prefix "$TMP/h2" --seeds "$URL_h1" \
                --client-urls "http://127.0.0.1:$cport2" --server-urls "http://127.0.0.1:$pport" $SUP_FLAGS
        wait_until 20 grep -q "volunteering as 'h2'" "$TMP/h2.log"
        start_bg h3 "$MGMT_BIN/mgmt-supervisor" --hostname h3 --prefix "$TMP/h3" --seeds "$URL_h1" \
                --client-urls "http://127.0.0.1:$cport3" --server-urls "http://127.0.0.1:$pport" $SUP_FLAGS
        wait_until 20 grep -q "host 'h2' already uses peer URL 'http://127.0.0.1:$pport'.*('h3')" "$TMP/h3.log"
        wait_until 10 bash -c "! kill -0 $(cat "$TMP/h3.pid") 2>/dev/null"
        # h2 stays a healthy volunteer and can still be nominated
        set_ideal 2
        wait_until 60 voter_count_is 2
        is_voter h2
}

@test "a second supervisor on a prefix in use is refused, naming the holder's pid" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        run "$MGMT_BIN/mgmt-supervisor" --hostname other --prefix "$TMP/h1" --seeds "$URL_h1" \
                --client-urls "http://127.0.0.1:$(free_port)" --server-urls "http://127.0.0.1:$(free_port)"
        [ "$status" -ne 0 ]
        [[ "$output" == *"in use by another mgmt-supervisor (pid $(cat "$TMP/h1.pid")"* ]]
        test -d "$TMP/h1/etcd/member"
        voter_count_is 1
}

@test "a replaced seed restarted with its old command line rejoins; it never bootstraps a second cluster" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        is_voter h1
        start_writer
        # the seed dies for good: SIGKILL supervisor and etcd
        etcd=$(etcd_pid_of h1)
        kill -KILL "$(cat "$TMP/h1.pid")" "$etcd"
        wait_until 90 bash -c "! etcdctl --endpoints '$URL_h2' member list | grep -q ', h1,'"
        wait_until 90 voter_count_is 3 "$URL_h2"
        # back with the same command line (no --seeds), its data now of a removed member
        start_sup h1 --ideal-cluster-size 3
        wait_until 60 grep -q "volunteering as 'h1'" "$TMP/h1.log"
        ! grep -q "bootstrapping" "$TMP/h1.log"
        one_cluster_id
        # and even with its data gone, it does not bootstrap
        stop_bg h1
        mv "$TMP/h1/etcd" "$TMP/h1-etcd-gone" 2>/dev/null || true
        start_sup h1 --ideal-cluster-size 3
        wait_until 60 grep -q "volunteering as 'h1'" "$TMP/h1.log"
        ! grep -q "bootstrapping" "$TMP/h1.log"
        one_cluster_id
        check_writes
}

@test "bad local input: owned etcd flags, zero timeouts, a file as prefix, URL with a path" {
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --etcd-arg=--data-dir=/tmp/elsewhere
        [ "$status" -eq 2 ]
        [[ "$output" == *"--etcd-arg '--data-dir=/tmp/elsewhere': the supervisor sets --data-dir itself"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --etcd-arg=-initial-cluster=a=b
        [ "$status" -eq 2 ]
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --dead-member-grace 0
        [ "$status" -eq 2 ]
        [[ "$output" == *"--dead-member-grace must be at least 1 second"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --nominate-timeout 0
        [ "$status" -eq 2 ]
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --client-urls http://127.0.0.1:2379/v3
        [ "$status" -eq 2 ]
        [[ "$output" == *"no path"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/x" --client-urls http://127.0.0.1:+2379
        [ "$status" -ne 0 ]
        : > "$TMP/afile"
        run "$MGMT_BIN/mgmt-supervisor" --hostname x --prefix "$TMP/afile" \
                --client-urls "http://127.0.0.1:$(free_port)" --server-urls "http://127.0.0.1:$(free_port)"
        [ "$status" -eq 1 ]
        [[ "$output" == *"is not a directory"* ]]
        [ ! -e "$TMP/x" ]
}

# h1 (the seed, no --seeds) is replaced by h4 after the grace; then every host
# loses power at once; hosts come back in the given order.
power_loss_after_seed_replaced() {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        is_voter h1 # the seed bootstrapped: the test is about it being replaced
        start_writer
        wait_until 20 acked_at_least 20
        kill_host h1
        wait_until 90 bash -c "! etcdctl --endpoints '$URL_h2' member list 2>/dev/null | grep -q ', h1,'"
        wait_until 90 voter_count_is 3 "$URL_h2"
        wait_until 20 acked_at_least 60
        for h in h2 h3 h4; do kill_host $h; done
        for h in "$@"; do
                if [ "$h" = h1 ]; then start_sup h1 --ideal-cluster-size 3; else start_sup $h --seeds "$URL_h1"; fi
        done
        wait_until 120 voter_count_is 3
        wait_until 20 writable
        one_cluster_id
        ! grep -q "bootstrapping" "$TMP/h1.log"
        check_writes
}

@test "power loss after the seed was replaced, seed back first: one cluster, every acknowledged key" {
        power_loss_after_seed_replaced h1 h2 h3 h4
}

@test "power loss after the seed was replaced, seed back last: one cluster, every acknowledged key" {
        power_loss_after_seed_replaced h2 h3 h4 h1
}

@test "power loss, the seed never back: the others carry on at the ideal size" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        start_writer
        wait_until 20 acked_at_least 20
        for h in h1 h2 h3 h4; do kill_host $h; done
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 120 voter_count_is 3 "$(for h in h2 h3 h4; do u=URL_$h; printf '%s,' "${!u}"; done)"
        wait_until 20 writable
        check_writes
}

@test "a deleted idealClusterSize is put back with the last value seen; the size does not depend on who leads" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1" --ideal-cluster-size 1; done
        wait_until 60 voter_count_is 3
        etcdctl --endpoints "$URL_h1" del /_mgmt/idealClusterSize
        wait_until 20 key_is "$URL_h1" /_mgmt/idealClusterSize 3
        grep -h "was deleted; putting back the last value seen, 3" "$TMP"/h*.log
        voter_count_is 3
}

@test "an open prefix is tightened to 0700; --tmp-prefix leaves nothing behind" {
        mkdir -m 0777 "$TMP/open"
        cport=$(free_port)
        start_bg open "$MGMT_BIN/mgmt-supervisor" --hostname open --prefix "$TMP/open" --ideal-cluster-size 1 \
                --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$(free_port)" $SUP_FLAGS
        wait_until 30 etcd_healthy "http://127.0.0.1:$cport"
        [ "$(stat -c %a "$TMP/open")" = 700 ]
        grep -q "tightened state directory '$TMP/open' from mode 0777 to 0700" "$TMP/open.log"
        cport=$(free_port)
        start_bg tmp "$MGMT_BIN/mgmt-supervisor" --hostname tmp --tmp-prefix --ideal-cluster-size 1 \
                --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$(free_port)" $SUP_FLAGS
        wait_until 30 etcd_healthy "http://127.0.0.1:$cport"
        dir=$(sed -n "s/.*starting as 'tmp' (prefix \(.*\))$/\1/p" "$TMP/tmp.log")
        test -d "$dir/etcd/member"
        stop_bg tmp TERM
        [ ! -e "$dir" ]
        grep -q "removed temporary prefix '$dir'" "$TMP/tmp.log"
}

@test "etcd failing the same way over and over is reported once as an error, with backoff" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        stop_bg h1 TERM
        # damage the data: etcd cannot open its WAL
        for f in "$TMP"/h1/etcd/member/wal/*.wal; do head -c 4096 /dev/urandom > "$f"; done
        start_sup h1 --ideal-cluster-size 1
        wait_until 60 grep -q "etcd keeps failing the same way" "$TMP/h1.log"
        wait_until 30 grep -q "crashed 4 time(s) in a row" "$TMP/h1.log"
        [ "$(grep -c "etcd keeps failing the same way" "$TMP/h1.log")" -eq 1 ]
        # the damaged data is still there for the operator
        ls "$TMP"/h1/etcd/member/wal/*.wal
}

# overwrite both bbolt meta pages of NAME's etcd db: etcd 3.4 and 3.5 then
# refuse to open it ("invalid database"; truncating is not enough on 3.5,
# whose db file is preallocated)
damage_db() {
        dd if=/dev/urandom of="$TMP/$1/etcd/member/snap/db" bs=4096 count=2 conv=notrunc 2>/dev/null
}

@test "a damaged db on one member: its member is removed, the data moved aside, and it rejoins as a new member" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3; do start_sup $h --seeds "$URL_h1"; done
        wait_until 60 voter_count_is 3
        for i in $(seq 1 50); do etcdctl --endpoints "$URL_h1" put "/test/d/$i" "$i" >/dev/null; done
        # h3 is not the coordinator: stop it (data kept), damage its db, start it again
        coord=$(etcdctl --endpoints "$URL_h1" get /_mgmt/coordinator --print-value-only)
        victim=h3
        [ "$coord" != h3 ] || victim=h2
        old_id=$(member_list "$URL_h1" | awk -F', ' -v n=$victim '$3 == n { print $1 }')
        stop_bg $victim TERM
        damage_db $victim
        start_sup $victim --seeds "$URL_h1"
        wait_until 90 grep -q "moved etcd data '$TMP/$victim/etcd' aside to '$TMP/$victim/old/.*-damaged'" "$TMP/$victim.log"
        wait_until 90 voter_count_is 3
        new_id=$(member_list "$URL_h1" | awk -F', ' -v n=$victim '$3 == n { print $1 }')
        [ -n "$new_id" ] && [ "$new_id" != "$old_id" ]
        ls "$TMP/$victim"/old/*-damaged/member/snap/db
        [ "$(etcdctl --endpoints "$(all_urls)" get --prefix /test/d/ --keys-only | grep -c /test/d/)" -eq 50 ]
}

@test "a damaged db on the last member: clear refusal pointing at restore, data kept" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        stop_bg h1 TERM
        damage_db h1
        sum=$(sha256sum "$TMP/h1/etcd/member/snap/db")
        start_sup h1 --ideal-cluster-size 1
        wait_until 60 grep -q "etcd cannot start on its data in '$TMP/h1/etcd'.*mgmt-supervisor restore --from SNAPSHOT" "$TMP/h1.log"
        [ "$(grep -c "etcd cannot start on its data" "$TMP/h1.log")" -eq 1 ]
        [ "$(sha256sum "$TMP/h1/etcd/member/snap/db")" = "$sum" ]
        [ ! -d "$TMP/h1/old" ]
}
