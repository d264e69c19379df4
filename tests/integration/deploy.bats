#!/usr/bin/env bats
# deploy.bats: mgmt-deploy against a real etcd: numbered deploys, no-op and
# --force, eight racing deployers, refusals that leave etcd untouched,
# unreachable seeds, help texts, and the --wait outcomes (status keys are
# written with etcdctl here to stand in for agents, only for the wait logic).

load lib

setup() {
        mgmt_setup
        DEPLOY=$MGMT_BIN/mgmt-deploy
        GOOD=$BATS_TEST_DIRNAME/../data/graphs/good
        BAD=$BATS_TEST_DIRNAME/../data/graphs/bad
        unset MGMT_SEEDS
}

teardown() {
        mgmt_teardown
}

# md ARGS...: mgmt-deploy against the test etcd; output kept in a log so
# that mgmt_teardown sees sanitizer reports.
md() {
        "$DEPLOY" --seeds "$ETCD_ENDPOINT" "$@" 2> >(tee -a "$TMP/mgmt-deploy.log" >&2)
}

# graph NAME: a small valid graph file distinct per NAME.
graph() {
        printf 'graph: %s\nresources:\n  print:\n  - name: p\n    msg: "%s on ${hostname}"\n' "$1" "$1" > "$TMP/$1.yaml"
        echo "$TMP/$1.yaml"
}

deploy_keys() {
        ectl get --prefix /_mgmt/deploy/ -w json | jq -c '[.kvs[]? | {k: .key, v: .value, m: .mod_revision}]'
}

# status HOST ID STATE [ERROR]: stand in for an agent's status key.
status() {
        local errs='[]'
        [ -n "${4:-}" ] && errs=$(jq -cn --arg e "$4" '[$e]')
        ectl put "/_mgmt/status/$1" "{\"deploy\": $2, \"state\": \"$3\", \"errors\": $errs, \"time\": \"2024-01-01T00:00:00Z\"}" >/dev/null
}

@test "deploys get ids 1, 2, 3 in order with a hash chain" {
        start_etcd e1
        run md yaml "$(graph one)"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 1
        run md yaml "$(graph two)"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 2
        run md empty
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 3

        h1=$(ectl get --print-value-only /_mgmt/deploy/1/hash)
        [ "$h1" = "$(sha256sum < "$TMP/one.yaml" | cut -d' ' -f1)" ]
        p2=$(ectl get --print-value-only /_mgmt/deploy/2/payload)
        [ "$(echo "$p2" | jq -r .id)" = 2 ]
        [ "$(echo "$p2" | jq -r .previous)" = "$h1" ]
        [ "$(echo "$p2" | jq -r .graph)" = "$(cat "$TMP/two.yaml")" ]
        [ "$(echo "$p2" | jq -r .origin.hostname)" = "$(hostname)" ]
        [ "$(ectl get --print-value-only /_mgmt/deploy/1/payload | jq -r .previous)" = null ]
        [ "$(ectl get --print-value-only /_mgmt/deploy/3/payload | jq -r .graph)" = "graph: empty" ]

        run md list
        [ "$status" -eq 0 ]
        [ "$(echo "$output" | grep -cE '^[123] ')" -eq 3 ]
        run md show
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 'id: 3'
        echo "$output" | grep -qx 'graph: empty'
        run md --json show 2
        [ "$status" -eq 0 ]
        echo "$output" | grep -q '"graph": "graph: two'
        run md show 9
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "there is no deploy 9"
}

@test "CI variables are recorded in the origin" {
        start_etcd e1
        CI_COMMIT_SHA=abc123 CI_JOB_URL=https://ci.example/job/5 run md yaml "$(graph ci)"
        [ "$status" -eq 0 ]
        p=$(ectl get --print-value-only /_mgmt/deploy/1/payload)
        [ "$(echo "$p" | jq -r .origin.commit)" = abc123 ]
        [ "$(echo "$p" | jq -r .origin.job_url)" = https://ci.example/job/5 ]
}

@test "an identical redeploy is a no-op, --force deploys it again" {
        start_etcd e1
        f=$(graph same)
        run md yaml "$f"
        [ "$status" -eq 0 ]
        before=$(deploy_keys)
        run md yaml "$f"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 1
        echo "$output" | grep -q "identical to the latest deploy 1"
        [ "$(deploy_keys)" = "$before" ]

        run md --force yaml "$f"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 2
        [ "$(ectl get --print-value-only /_mgmt/deploy/2/hash)" = "$(ectl get --print-value-only /_mgmt/deploy/1/hash)" ]
        # env twin of --force
        MGMT_FORCE=true run md yaml "$f"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qx 3
}

# race N: N concurrent deployers of different graphs; checks N new consecutive ids.
race() {
        local n=$1 base=$2 i
        for i in $(seq 1 "$n"); do
                graph "race$base-$i" >/dev/null
        done
        for i in $(seq 1 "$n"); do
                "$DEPLOY" --seeds "$ETCD_ENDPOINT" yaml "$TMP/race$base-$i.yaml" > "$TMP/race$base-$i.out" 2> "$TMP/race$base-$i.log" &
                echo $! >> "$TMP/race.pids"
        done
        local rc=0 pid
        while read -r pid; do
                wait "$pid" || rc=1
        done < "$TMP/race.pids"
        rm -f "$TMP/race.pids"
        cat "$TMP"/race"$base"-*.log >&2
        [ "$rc" -eq 0 ]
}

@test "eight concurrent deployers get eight consecutive ids, an unbroken chain, nothing lost" {
        start_etcd e1
        race 8 a
        # eight racing for the very first id too: now a second round on top
        race 8 b
        run md --json list
        [ "$status" -eq 0 ]
        ids=$(echo "$output" | jq -c '[.[].id]')
        [ "$ids" = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]" ]
        # hash chain: each previous is the hash before it
        echo "$output" | jq -e '. as $a | [range(1; length) | $a[.].previous == $a[. - 1].hash] | all'
        echo "$output" | jq -e '.[0].previous == null'
        # every graph landed exactly once, each under the id its deployer printed
        for r in a b; do
                for i in $(seq 1 8); do
                        id=$(cat "$TMP/race$r-$i.out")
                        [ "$(ectl get --print-value-only "/_mgmt/deploy/$id/payload" | jq -r .graph)" = "$(cat "$TMP/race$r-$i.yaml")" ]
                done
        done
        [ "$(cat "$TMP"/race*-*.out | sort -n | uniq | wc -l)" -eq 16 ]
        # every lost race was explained: which key, what was expected
        if grep -h "lost the race" "$TMP"/race*-*.log > "$TMP/lost"; then
                ! grep -v -E "lost the race for deploy [0-9]+: (key '/_mgmt/deploy/[0-9]+/(payload|hash)'|expected no key under '/_mgmt/deploy/')" "$TMP/lost"
        fi
}

@test "every kind of bad input leaves etcd untouched" {
        start_etcd e1
        run md yaml "$(graph base)"
        [ "$status" -eq 0 ]
        before=$(deploy_keys)
        n=0
        for f in "$BAD"/*.yaml; do
                expect=$(head -n1 "$f" | sed 's/^# expect: //')
                run md yaml "$f"
                [ "$status" -eq 1 ] || { echo "$f: exit $status: $output"; false; }
                echo "$output" | grep -qF "$f:$expect" || { echo "$f: want '$expect' in: $output"; false; }
                echo "$output" | grep -q "nothing was deployed"
                n=$((n + 1))
        done
        [ "$n" -ge 30 ]
        # too large, missing, unreadable, a directory
        head -c 1100000 /dev/zero | tr '\0' '#' > "$TMP/big.yaml"
        run md yaml "$TMP/big.yaml"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "larger than the limit of 1048576 bytes"
        run md yaml "$TMP/nonexistent.yaml"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "cannot read graph '$TMP/nonexistent.yaml'"
        run md yaml "$TMP"
        [ "$status" -eq 1 ]
        # usage errors
        run md yaml
        [ "$status" -eq 2 ]
        run md yaml a b
        [ "$status" -eq 2 ]
        run md bogus
        [ "$status" -eq 2 ]
        echo "$output" | grep -q "unknown command 'bogus'"
        run md --bogus list
        [ "$status" -eq 2 ]
        run md --timeout never list
        [ "$status" -eq 2 ]
        run md show zero
        [ "$status" -eq 2 ]
        run "$DEPLOY"
        [ "$status" -eq 2 ]
        run "$DEPLOY" --seeds "not a url" yaml "$(graph x)"
        [ "$status" -eq 2 ]
        run md --wait list
        [ "$status" -eq 2 ]
        [ "$(deploy_keys)" = "$before" ]
}

@test "a stray key under the deploy prefix is reported, not retried" {
        start_etcd e1
        ectl put /_mgmt/deploy/1/hash junk >/dev/null
        run md yaml "$(graph stray)"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "key '/_mgmt/deploy/1/hash' is under '/_mgmt/deploy/' but there is no deploy payload"
        [ "$(ectl get --prefix /_mgmt/deploy/ --keys-only | grep -c .)" -eq 1 ]
}

@test "stdin works as '-'" {
        start_etcd e1
        run bash -c "'$DEPLOY' --seeds '$ETCD_ENDPOINT' yaml - < '$GOOD/example.yaml'"
        [ "$status" -eq 0 ]
        [ "$(ectl get --print-value-only /_mgmt/deploy/1/hash)" = "$(sha256sum < "$GOOD/example.yaml" | cut -d' ' -f1)" ]
}

@test "unreachable seeds fail within the timeout with a clear message" {
        port=$(free_port)
        start=$(date +%s)
        run "$DEPLOY" --seeds "http://127.0.0.1:$port" --timeout 3 yaml "$(graph lonely)"
        end=$(date +%s)
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "cannot read the latest deploy from etcd"
        echo "$output" | grep -q "127.0.0.1:$port"
        echo "$output" | grep -q "nothing was deployed"
        [ $((end - start)) -le 8 ]
        # a blackhole address: bounded by --timeout too
        start=$(date +%s)
        run "$DEPLOY" --seeds "http://10.255.255.1:2379" --timeout 2 list
        end=$(date +%s)
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "cannot list deploys"
        [ $((end - start)) -le 8 ]
}

@test "help texts are identical at every level" {
        for c in yaml empty list show status keygen help; do
                a=$("$DEPLOY" help "$c")
                [ -n "$a" ]
                [ "$a" = "$("$DEPLOY" "$c" --help)" ]
                [ "$a" = "$("$DEPLOY" "$c" -h)" ]
                [ "$a" = "$("$DEPLOY" --seeds http://127.0.0.1:1 "$c" --help)" ]
                echo "$a" | grep -q "^Usage: mgmt-deploy \[OPTIONS\] $c"
                echo "$a" | grep -q -- "--seeds URLS"
                echo "$a" | grep -q "Exit status:"
        done
        top=$("$DEPLOY" --help)
        [ "$top" = "$("$DEPLOY" -h)" ]
        [ "$top" = "$("$DEPLOY" help)" ]
        for c in yaml empty list show status keygen; do
                echo "$top" | grep -qE "^  $c "
        done
        for f in seeds force wait timeout json cert-file key-file trusted-ca-file sign-key; do
                echo "$top" | grep -q -- "--$f"
                env=MGMT_$(echo "$f" | tr a-z- A-Z_)
                echo "$top" | grep -q "env $env"
        done
        for code in 0 1 2 3 4 5; do
                echo "$top" | grep -qE "^  $code  "
        done
        run "$DEPLOY" help bogus
        [ "$status" -eq 2 ]
        # the man page documents every flag of --help
        man=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$BATS_TEST_DIRNAME/../../docs/mgmt-deploy.1")
        for f in $(echo "$top" | grep -oE -- '--[a-z-]+' | sort -u); do
                echo "$man" | grep -qF -- "$f" || { echo "man page misses $f"; false; }
        done
        for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES; do
                echo "$man" | grep -qx "\.SH $s" || { echo "man page misses section $s"; false; }
        done
}

@test "--wait exits 4 naming the pending host" {
        start_etcd e1
        status h1 0 converged
        status h2 0 applying
        run md --wait --timeout 2 yaml "$(graph w)"
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "timed out after 2 s waiting for deploy 1"
        echo "$output" | grep -q "pending hosts: .*h1"
        echo "$output" | grep -q "h2 (applying"
        # the deploy itself happened
        [ "$(ectl get --print-value-only /_mgmt/deploy/1/payload | jq -r .id)" = 1 ]
}

@test "--wait exits 0 once every host converged" {
        start_etcd e1
        status h1 0 converged
        status h2 0 converged
        # the fake agents report only once deploy 1 is written: mgmt-deploy
        # has the hosts pending first, however long it takes to start
        ( until ectl get /_mgmt/deploy/1/payload --keys-only | grep -q .; do sleep 0.1; done
          sleep 0.5; status h1 1 applying; status h1 1 converged; sleep 0.5; status h2 1 converged ) 3>&- &
        agents=$!
        run md --wait --timeout 10 yaml "$(graph w)"
        wait "$agents"
        [ "$status" -eq 0 ]
        echo "$output" | grep -q "waiting for deploy 1"
        echo "$output" | grep -q "all 2 hosts converged on deploy 1"
}

@test "--wait exits 5 naming the failed host and its errors" {
        start_etcd e1
        status h1 0 converged
        status h2 0 converged
        ( sleep 1; status h1 1 converged; status h2 1 failed "file '/x': permission denied" ) 3>&- &
        agents=$!
        run md --wait --timeout 10 yaml "$(graph w)"
        wait "$agents"
        [ "$status" -eq 5 ]
        echo "$output" | grep -q "host 'h2' failed to apply deploy 1: file '/x': permission denied"
        run md status
        [ "$status" -eq 0 ]
        echo "$output" | grep -qE '^h2 +1 +failed'
        run md --json status
        echo "$output" | jq -e '.[] | select(.host == "h1") | .state == "converged"'
}

@test "--wait with no agent reporting times out and says so" {
        start_etcd e1
        run md --wait --timeout 1 empty
        [ "$status" -eq 4 ]
        echo "$output" | grep -q "no agent reports status"
}

@test "prune --keep 2 removes the older deploys, payload and hash together; the latest stays; ids go on" {
        start_etcd etcd
        for i in 1 2 3 4 5; do md yaml "$(graph g$i)" >/dev/null; done
        run md prune --keep 0
        [ "$status" -eq 2 ]
        [[ "$output" == *"--keep N with N >= 1"* ]]
        run md prune
        [ "$status" -eq 2 ]
        run md prune --keep 2
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"removed 3 deploy(s) (1..3); kept 2 (4..5)"* ]]
        [ "$(ectl get --prefix /_mgmt/deploy/ --keys-only | grep -c .)" -eq 4 ]
        for i in 4 5; do
                ectl get --print-value-only "/_mgmt/deploy/$i/payload" | grep -q .
                ectl get --print-value-only "/_mgmt/deploy/$i/hash" | grep -q .
        done
        run md prune --keep 2
        [[ "$output" == *"nothing to prune"* ]]
        # the chain goes on from the latest
        [ "$(md yaml "$(graph g6)" 2>/dev/null)" = 6 ]
        out=$(md --json prune --keep 1 2>/dev/null)
        [ "$(jq -r .removed <<< "$out")" = 2 ]
        [ "$(jq -r .latest <<< "$out")" = 6 ]
}
