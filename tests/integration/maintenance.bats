#!/usr/bin/env bats
# Self-maintenance with real etcd processes (issue 14): a NOSPACE alarm is
# raised by writes and cleared by the coordinator (compaction, defrag, alarm
# deactivated) without an operator; defrags run one member at a time, never
# the leader first; none in a two-member cluster (failure tolerance 0).

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

# a value of about 200 KB
big_value() {
        head -c 150000 /dev/urandom | base64 -w0 > "$TMP/big"
}

# Overwrite /test/big N times, stop at the first refusal; its message in $TMP/put.err.
overwrite() {
        local n=$1 i
        for i in $(seq 1 "$n"); do
                etcdctl --endpoints "$(all_urls)" --command-timeout 5s put /test/big < "$TMP/big" >/dev/null \
                        2> "$TMP/put.err" || return 1
        done
}

# Free space in every member's db: overwrites, a delete, a compaction to the
# current revision, and one small write (etcd 3.4 counts pages freed by the
# compaction at the next commit).
make_free_space() {
        big_value
        overwrite 12
        etcdctl --endpoints "$(all_urls)" del /test/big >/dev/null
        local rev
        rev=$(etcdctl --endpoints "$(all_urls)" endpoint status -w json | jq -r '.[0].Status.header.revision')
        etcdctl --endpoints "$(all_urls)" --command-timeout 10s compact "$rev" --physical >/dev/null
        etcdctl --endpoints "$(all_urls)" put /test/small x >/dev/null
}

# The defrag lines of every host's log, in time order.
defrag_log() {
        grep -h -E 'notice: (defragmenting|defragmented) h[0-9]' "$TMP"/h*.log | sort -s -k1,1
}

# Each "defragmenting X" is followed by its "defragmented X" before the next starts.
one_at_a_time() {
        defrag_log | awk '
                / defragmenting / { if (cur != "") { print "overlap: " $0 " while " cur " runs"; bad = 1 } cur = $5 }
                / defragmented /  { if ($5 != cur) { print "end of " $5 " while " cur " runs"; bad = 1 } cur = "" }
                END { if (cur != "") { print "unfinished: " cur; bad = 1 } exit bad }'
}

defragmented_hosts() {
        defrag_log | awk '/ defragmented / { print $5 }' | sort -u | tr '\n' ' '
}

all_three_defragmented() {
        [ "$(defragmented_hosts)" = "h1 h2 h3 " ]
}

@test "NOSPACE: writes are refused, then compaction, defrag and a cleared alarm make them work again" {
        q=--etcd-arg=--quota-backend-bytes=$((4 * 1024 * 1024))
        start_sup h1 --ideal-cluster-size 3 "$q"
        for h in h2 h3; do start_sup $h --seeds "$URL_h1" "$q"; done
        wait_until 60 voter_count_is 3
        big_value
        # writes until etcd refuses
        ! overwrite 60
        cat "$TMP/put.err"
        grep -q "database space exceeded" "$TMP/put.err"
        # the coordinator clears it; writes work again, no alarm left
        wait_until 90 etcdctl --endpoints "$(all_urls)" --command-timeout 3s put /test/after ok
        [ -z "$(etcdctl --endpoints "$(all_urls)" alarm list)" ]
        [ "$(etcdctl --endpoints "$(all_urls)" get /test/after --print-value-only)" = ok ]
        grep -h "maintenance: compacted to revision" "$TMP"/h*.log
        grep -h "maintenance: cleared the NOSPACE alarm" "$TMP"/h*.log
        defrag_log
        one_at_a_time
        # every member was defragmented
        [ "$(defragmented_hosts)" = "h1 h2 h3 " ]
}

@test "defrag past --defrag-threshold: one member at a time, the leader not first, each logged with bytes freed" {
        t=--defrag-threshold=256K
        start_sup h1 --ideal-cluster-size 3 "$t"
        for h in h2 h3; do start_sup $h --seeds "$URL_h1" "$t"; done
        wait_until 60 voter_count_is 3
        wait_until 20 coordinator_is_not none
        leader=$(etcdctl --endpoints "$(all_urls)" get /_mgmt/coordinator --print-value-only)
        make_free_space
        wait_until 90 all_three_defragmented
        defrag_log
        one_at_a_time
        first=$(defrag_log | awk '/ defragmenting / { print $5; exit }')
        echo "leader $leader, first defragmented $first"
        # no member is defragmented by its own supervisor: only the supervisor
        # whose etcd leads acts, so that would be the leader defragmenting itself
        for h in h1 h2 h3; do
                ! grep -q "notice: defragmenting $h " "$TMP/$h.log"
        done
        # the first leader lost leadership before its own defrag: it handed it
        # over, or (on a loaded machine) an election took it first
        grep -h -E "maintenance: moved leadership to|no longer coordinator" "$TMP/$leader.log"
        # bytes freed are logged
        defrag_log | grep -E 'defragmented h[0-9] in [0-9]+ ms: db .* -> .*, .* freed \([0-9]+ bytes\)'
        # and nothing is defragmented twice
        [ "$(defrag_log | grep -c ' defragmenting ')" -eq 3 ]
}

@test "no defrag in a two-member cluster (failure tolerance 0): the plan says why" {
        t=--defrag-threshold=256K
        start_sup h1 --ideal-cluster-size 2 "$t"
        start_sup h2 --seeds "$URL_h1" "$t"
        wait_until 60 voter_count_is 2
        make_free_space
        wait_until 40 sh -c "etcdctl --endpoints '$(all_urls)' get /_mgmt/plan --print-value-only | grep -q 'failure tolerance is 0'"
        etcdctl --endpoints "$(all_urls)" get /_mgmt/plan --print-value-only
        ! grep -h "notice: defragment" "$TMP"/h*.log
}

@test "--defrag-threshold: a bad size is a usage error naming the flag, nothing started" {
        run "$MGMT_BIN/mgmt-supervisor" --prefix "$TMP/p" --defrag-threshold 12X
        [ "$status" -eq 2 ]
        [[ "$output" == *"--defrag-threshold '12X' is not a size"* ]]
        [ ! -e "$TMP/p" ]
        MGMT_DEFRAG_THRESHOLD=-5 run "$MGMT_BIN/mgmt-supervisor" --prefix "$TMP/p"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--defrag-threshold '-5'"* ]]
}
