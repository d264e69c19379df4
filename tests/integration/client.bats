#!/usr/bin/env bats
# client.bats: lib/etcd.c against real etcd processes on loopback, driven by
# tests/tools/etcd-probe (the asynchronous API on an sd-event loop).

load lib

setup() { mgmt_setup; PROBE=$MGMT_BIN/tools/etcd-probe; }

teardown() { mgmt_teardown; }

# probe CMD ARGS...: etcd-probe against $ENDPOINTS (default $ETCD_ENDPOINT).
# Its stderr (after its stdout) also goes to $TMP/probe.log, where teardown
# looks for sanitizer reports.
probe() {
        local rc=0
        "$PROBE" "${ENDPOINTS:-$ETCD_ENDPOINT}" "$@" 2> "$TMP/.probe_err" || rc=$?
        cat "$TMP/.probe_err" >&2
        cat "$TMP/.probe_err" >> "$TMP/probe.log"
        return $rc
}

# run_etcd BGNAME NAME CLIENT_URL PEER_URL INITIAL_CLUSTER [etcd flags...]:
# like start_etcd, but on given ports and data dir $TMP/NAME.etcd, so the same
# member can be started again after it was killed (BGNAME must differ per run).
run_etcd() {
        local bg=$1 name=$2 client=$3 peer=$4 cluster=$5
        shift 5
        start_bg "$bg" etcd --name "$name" --data-dir "$TMP/$name.etcd" \
                --listen-client-urls "$client" --advertise-client-urls "$client" \
                --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
                --initial-cluster "$cluster" "$@"
}

# start_watch NAME PREFIX START_REV COUNT: a background watch, events to $TMP/NAME.out
start_watch() {
        local name=$1
        shift
        "$PROBE" "${ENDPOINTS:-$ETCD_ENDPOINT}" watch "$@" > "$TMP/$name.out" 2> "$TMP/$name.log" &
        WATCH_PID=$!
        echo "$WATCH_PID" >> "$TMP/.pids"
        echo "$WATCH_PID" > "$TMP/$name.pid"
}

lines_at_least() { [ "$(wc -l < "$1")" -ge "$2" ]; }
key_absent() { [ -z "$(ectl get "$1" --print-value-only)" ]; }
not_running() { ! kill -0 "$1" 2>/dev/null; }

# check_events FILE FIRST_REV EXPECTED_FILE: revisions strictly increasing from
# FIRST_REV, and "TYPE KEY VALUE" exactly as expected (nothing lost or repeated).
check_events() {
        local out=$1 first=$2 want=$3
        run awk -v first="$first" 'NR == 1 && $1 != first { print "first revision " $1 " != " first; bad = 1 }
                NR > 1 && $1 <= prev { print "revision " $1 " after " prev " at line " NR; bad = 1 }
                { prev = $1 } END { exit bad }' "$out"
        [ "$status" -eq 0 ] || { echo "$output"; return 1; }
        cut -d' ' -f2- "$out" > "$out.body"
        diff -u "$want" "$out.body"
}

# expected "PUT PREFIXnnnnnn n" lines for put-seq FROM..TO
seq_lines() {
        local prefix=$1 from=$2 to=$3 i
        for i in $(seq "$from" "$to"); do
                printf 'PUT %s%06d %d\n' "$prefix" "$i" "$i"
        done
}

@test "put, range and txn (both branches) against etcd" {
        start_etcd e1
        run probe put /t/k v1
        [ "$status" -eq 0 ]
        [ "$output" -gt 1 ] # header revision
        [ "$(probe get /t/k 2>/dev/null)" = v1 ]
        [ "$(ectl get /t/k --print-value-only)" = v1 ]

        # version(/t/k) == 1: success branch writes
        [ "$(probe txn-version /t/k 1 v2 2>/dev/null)" = succeeded ]
        [ "$(ectl get /t/k --print-value-only)" = v2 ]
        # version is now 2: failure branch, nothing written
        run probe txn-version /t/k 1 v3
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = failed ]
        [[ "$output" == *"current version 2"* ]]
        [ "$(ectl get /t/k --print-value-only)" = v2 ]
        # version 0 means absent: create-if-missing
        [ "$(probe txn-version /t/new 0 x 2>/dev/null)" = succeeded ]
        [ "$(probe txn-version /t/new 0 y 2>/dev/null)" = failed ]
        [ "$(ectl get /t/new --print-value-only)" = x ]

        # prefix range sees exactly the keys under /t/
        ectl put /t0 outside > /dev/null
        ectl put /t/a "with space" > /dev/null
        run probe get-prefix /t/
        [ "$status" -eq 0 ]
        [[ "$output" == *"/t/a with space"* ]]
        [[ "$output" == *"/t/k v2"* ]]
        [[ "$output" == *"/t/new x"* ]]
        [[ "$output" != *"/t0"* ]]
        [[ "$output" == *"count 3"* ]]

        # missing key and delete
        run probe get /t/none
        [ "$status" -eq 1 ]
        [[ "$output" == *"'/t/none' not found"* ]]
        [ "$(probe del /t/k 2>/dev/null)" = 1 ]
        key_absent /t/k
}

@test "a key under a lease expires with it; keepalive and revoke" {
        start_etcd e1
        id=$(probe lease-put /l/short v 2 2>/dev/null)
        [[ "$id" =~ ^[1-9][0-9]*$ ]]
        [ "$(ectl get /l/short --print-value-only)" = v ]
        [ "$(ectl get /l/short -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)" = "$id" ]
        wait_until 10 key_absent /l/short
        # the lease is gone too
        run probe keepalive "$id"
        [ "$status" -eq 1 ]
        [[ "$output" == *"is gone"* ]]

        id=$(probe lease-put /l/long v 30 2>/dev/null)
        [ "$(probe keepalive "$id" 2>/dev/null)" = 30 ]
        [ "$(probe revoke "$id" 2>/dev/null)" = revoked ]
        key_absent /l/long
        # revoking again is etcd's "lease not found", reported with its message
        run probe revoke "$id"
        [ "$status" -eq 1 ]
        [[ "$output" == *"requested lease not found"* ]]
}

@test "a watch sees every event of 1000 rapid puts, in order" {
        start_etcd e1
        rev=$(probe revision)
        start_watch w /seq/ $((rev + 1)) 1001
        run probe put-seq /seq/ 1 1000
        [ "$status" -eq 0 ]
        [ "$output" -eq $((rev + 1000)) ]
        probe del /seq/000500 > /dev/null
        wait_until 60 lines_at_least "$TMP/w.out" 1001
        wait "$WATCH_PID"
        { seq_lines /seq/ 1 1000; echo "DELETE /seq/000500 "; } > "$TMP/want"
        check_events "$TMP/w.out" $((rev + 1)) "$TMP/want"
        [ "$(tail -1 "$TMP/w.out" | cut -d' ' -f1)" -eq $((rev + 1001)) ]
        # nothing else on stdout, and no reconnects were needed
        [ "$(wc -l < "$TMP/w.out")" -eq 1001 ]
        ! grep -q interrupted "$TMP/w.log"
}

@test "a watch callback can start requests: every event is answered at once" {
        start_etcd e1
        rev=$(probe revision)
        "$PROBE" "$ETCD_ENDPOINT" ack /ev/ $((rev + 1)) 200 > "$TMP/ack.out" 2> "$TMP/ack.log" &
        pid=$!
        echo "$pid" >> "$TMP/.pids"
        probe put-seq /ev/ 1 200 > /dev/null
        wait_until 30 not_running "$pid"
        wait "$pid"
        cat "$TMP/ack.log"
        grep -qx "200 acked" "$TMP/ack.out"
        [ "$(ectl get /ack/ev/ --prefix --keys-only | grep -c .)" -eq 200 ]
        ! grep -q "cannot start a request" "$TMP/ack.log"
}

@test "a watch survives etcd restarts without losing or repeating events" {
        cport=$(free_port)
        pport=$(free_port)
        ETCD_ENDPOINT=http://127.0.0.1:$cport
        peer=http://127.0.0.1:$pport
        run_etcd e1 e1 "$ETCD_ENDPOINT" "$peer" "e1=$peer"
        wait_until 20 etcd_healthy "$ETCD_ENDPOINT"
        rev=$(probe revision)
        start_watch w /r/ $((rev + 1)) 301

        probe put-seq /r/ 1 100 > /dev/null
        wait_until 20 lines_at_least "$TMP/w.out" 100
        cur=e1
        for round in 1 2; do
                # kill etcd hard while the watch is connected, start it again on the same ports and data
                stop_bg "$cur" KILL
                cur=e1-$round
                run probe put /r/while-down x
                [ "$status" -eq 1 ]
                [[ "$output" == *"cannot reach etcd"* ]]
                run_etcd "$cur" e1 "$ETCD_ENDPOINT" "$peer" "e1=$peer"
                wait_until 20 etcd_healthy "$ETCD_ENDPOINT"
                # these land while the watch may still be backing off: it must catch up from its revision
                probe put-seq /r/ $((round * 100 + 1)) $((round * 100 + 100)) > /dev/null
                wait_until 30 lines_at_least "$TMP/w.out" $((round * 100 + 100))
        done
        probe del /r/000001 > /dev/null
        wait_until 20 lines_at_least "$TMP/w.out" 301
        wait "$WATCH_PID"
        { seq_lines /r/ 1 300; echo "DELETE /r/000001 "; } > "$TMP/want"
        check_events "$TMP/w.out" $((rev + 1)) "$TMP/want"
        # the gaps were noticed and reported on stderr only
        grep -q 'interrupted' "$TMP/w.log"
        ! grep -q interrupted "$TMP/w.out"
}

@test "member add as learner, promote and remove on a real 2-member cluster" {
        start_etcd e1
        e1=$ETCD_ENDPOINT
        c2=http://127.0.0.1:$(free_port)
        p2=http://127.0.0.1:$(free_port)

        run probe member-add-learner "$p2"
        [ "$status" -eq 0 ]
        id=${lines[0]}
        [[ "$id" =~ ^[1-9][0-9]*$ ]]
        run probe members
        [ "${#lines[@]}" -eq 2 ]
        [[ "$output" == *"$id - learner $p2 -"* ]]
        [[ "$output" == *" e1 voter $ETCD_PEER $e1"* ]]
        # etcd 3.4 allows one learner at a time: a second add is refused with etcd's reason
        run probe member-add-learner "http://127.0.0.1:$(free_port)"
        [ "$status" -eq 1 ]
        [[ "$output" == *"etcdserver"* ]]

        run_etcd e2 e2 "$c2" "$p2" "e1=$ETCD_PEER,e2=$p2" --initial-cluster-state existing
        # promotion succeeds once the learner has caught up
        wait_until 30 probe member-promote "$id"
        run probe members
        [ "${#lines[@]}" -eq 2 ]
        [[ "$output" == *"$id e2 voter $p2 $c2"* ]]
        [[ "$output" != *learner* ]]

        # the new member serves clients: write through e1, read through e2
        probe put /m/k v > /dev/null
        [ "$(ENDPOINTS=$c2 probe get /m/k 2>/dev/null)" = v ]
        ENDPOINTS=$c2 run probe status
        [ "$status" -eq 0 ]
        [[ "$output" == *"member=$id "* ]]
        [[ "$output" == *"learner=false"* ]]

        # hand raft leadership to the new member (asked of the current leader)
        e1id=$(probe status 2>/dev/null | sed -E 's/.*member=([0-9]+) .*/\1/')
        [ "$(probe move-leader "$id" 2>/dev/null)" = moved ]
        [[ "$(ENDPOINTS=$c2 probe status 2>/dev/null)" == *"leader=$id "* ]]
        [ "$(ENDPOINTS=$c2 probe move-leader "$e1id" 2>/dev/null)" = moved ]
        [[ "$(probe status 2>/dev/null)" == *"member=$e1id leader=$e1id "* ]]

        # etcd refuses ("unhealthy cluster") until the new voter has been connected a few seconds
        wait_until 30 probe member-remove "$id"
        [ "$(wc -l < "$TMP/.wait_out")" -eq 1 ]
        run probe members
        [ "${#lines[@]}" -eq 1 ]
        [[ "$output" != *"$id"* ]]
        # the removed etcd stops by itself; the one left still has quorum
        wait_until 30 not_running "$(cat "$TMP/e2.pid")"
        probe put /m/after v2 > /dev/null
        [ "$(ectl get /m/after --print-value-only)" = v2 ]
}

@test "requests and watches fail over to the next endpoint when the first is dead" {
        start_etcd e1
        dead=http://127.0.0.1:$(free_port)
        export ENDPOINTS="$dead,$ETCD_ENDPOINT"
        run probe put /f/k v
        [ "$status" -eq 0 ]
        [ "$(probe get /f/k 2>/dev/null)" = v ]
        run probe status
        [ "$status" -eq 0 ]
        [[ "$output" == *"endpoint=$ETCD_ENDPOINT"* ]]
        [ "$(probe txn-version /f/k 1 w 2>/dev/null)" = succeeded ]
        [ "$(probe members 2>/dev/null | wc -l)" -eq 1 ]

        rev=$(probe revision 2>/dev/null)
        start_watch w /f/ $((rev + 1)) 3
        probe put-seq /f/ 1 3 > /dev/null
        wait_until 20 lines_at_least "$TMP/w.out" 3
        wait "$WATCH_PID"
        seq_lines /f/ 1 3 > "$TMP/want"
        check_events "$TMP/w.out" $((rev + 1)) "$TMP/want"

        # the blocking wrapper fails over the same way; GET /health does not fail over
        [ "$(probe sync-get /f/k 2>/dev/null)" = w ]
        [ "$(ENDPOINTS=$ETCD_ENDPOINT probe health 2>/dev/null)" = true ]
        run probe health
        [ "$status" -eq 1 ]

        # every endpoint dead: a clear transport error naming one, exit 1
        ENDPOINTS="$dead,http://127.0.0.1:$(free_port)"
        run probe get /f/k
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot reach etcd at http://127.0.0.1:"* ]]
}

@test "a watch from a compacted revision is reported, not silently resumed" {
        start_etcd e1
        probe put-seq /c/ 1 10 > /dev/null
        rev=$(probe revision)
        ectl compaction "$rev" > /dev/null
        run probe watch /c/ 2 1
        [ "$status" -eq 1 ]
        [[ "$output" == *"compacted"* ]]
        # from the compaction revision on it works
        run probe watch /c/ "$rev" 1
        [ "$status" -eq 0 ]
        [ "$output" = "$rev PUT /c/000010 10" ]
}
