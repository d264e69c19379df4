#!/usr/bin/env bats
# trust.bats: signed deploys against a real etcd: keygen, --sign-key,
# mgmt-agent --trusted-keys refusing unsigned, tampered, unknown-key and
# replayed deploys (the previous graph keeps running), key rotation, collected
# exec under trust, and bad key files and signature fields.

load agents

setup() {
        mgmt_setup
        AGENT=$MGMT_BIN/mgmt-agent
        DEPLOY=$MGMT_BIN/mgmt-deploy
        unset MGMT_SEEDS MGMT_SIGN_KEY MGMT_TRUSTED_KEYS
}

teardown() {
        mgmt_teardown
}

payload_of() {
        ectl get --print-value-only "/_mgmt/deploy/$1/payload"
}

hash_of() {
        ectl get --print-value-only "/_mgmt/deploy/$1/hash"
}

# put_deploy ID PAYLOAD: store a payload (and the hash it names) as deploy ID.
put_deploy() {
        ectl put "/_mgmt/deploy/$1/payload" "$2" > /dev/null
        ectl put "/_mgmt/deploy/$1/hash" "$(jq -r .hash <<< "$2")" > /dev/null
}

# the previous graph's file is in place and still enforced
previous_graph_runs() { # TAG
        file_is "$TMP/out-ha/f" "$1 on ha"
        rm -f "$TMP/out-ha/f"
        wait_until 15 file_is "$TMP/out-ha/f" "$1 on ha"
}

@test "trust: keygen writes a 0600 private key and the public key, never over an existing one" {
        fpr=$("$DEPLOY" keygen "$TMP/keys")
        [[ "$fpr" =~ ^[0-9a-f]{64}$ ]]
        [ "$(stat -c %a "$TMP/keys/deploy.key")" = 600 ]
        [ "$(stat -c %a "$TMP/keys")" = 700 ]
        grep -q 'BEGIN PRIVATE KEY' "$TMP/keys/deploy.key"
        grep -q 'BEGIN PUBLIC KEY' "$TMP/keys/deploy.pub"
        # the fingerprint is the sha256 of the raw public key
        [ "$fpr" = "$(openssl pkey -pubin -in "$TMP/keys/deploy.pub" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)" ]
        sum=$(cat "$TMP/keys/deploy.key" "$TMP/keys/deploy.pub" | sha256sum)
        run "$DEPLOY" keygen "$TMP/keys"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"deploy.key' already exists: refusing to overwrite"* ]]
        [ "$sum" = "$(cat "$TMP/keys/deploy.key" "$TMP/keys/deploy.pub" | sha256sum)" ]
        # only the public half there: still refused, no private key written
        mkdir "$TMP/k2" && cp "$TMP/keys/deploy.pub" "$TMP/k2/"
        run "$DEPLOY" keygen "$TMP/k2"
        [ "$status" -eq 1 ]
        [ ! -e "$TMP/k2/deploy.key" ]
        run "$DEPLOY" help keygen
        [ "$status" -eq 0 ]
        [[ "$output" == *"--sign-key"* ]]
}

@test "trust: a signed deploy converges; unsigned, unknown-key and bad-signature-field deploys are refused" {
        start_etcd etcd
        "$DEPLOY" keygen "$TMP/a" > /dev/null
        "$DEPLOY" keygen "$TMP/x" > /dev/null
        fa=$(cd "$TMP" && openssl pkey -pubin -in a/deploy.pub -outform DER | tail -c 32 | sha256sum | cut -c1-16)
        fx=$(cd "$TMP" && openssl pkey -pubin -in x/deploy.pub -outform DER | tail -c 32 | sha256sum | cut -c1-16)
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/a/deploy.pub"

        deploy_graph "$TMP/d1.yaml" one
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-ha/f" "one on ha"
        status_is ha 1 converged
        payload_of 1 | jq -e --arg f "$fa" '(.signer | startswith($f)) and (.signature | length == 128)'
        run md show 1
        echo "$output"
        [[ "$output" == *"signed: by key $fa..."* ]]
        grep -q "deploy 1 is signed by trusted key $fa" "$TMP/agent.log"

        # unsigned: refused with the reason, --wait exits 5 naming the host
        deploy_graph "$TMP/d2.yaml" two
        run md --wait --timeout 30 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 5 ]
        [[ "$output" == *"host 'ha' failed to apply deploy 2"*"deploy 2 is not signed"* ]]
        status_is ha 2 failed
        status_error_has ha "deploy 2 is not signed"
        previous_graph_runs one

        # signed by a key the agent does not trust
        run md --sign-key "$TMP/x/deploy.key" --wait --timeout 30 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 5 ]
        status_error_has ha "deploy 3 is signed by key $fx\\.\\.\\., which is not trusted"
        [[ "$output" == *"deploy 3 is signed by key $fx..., which is not trusted"* ]]
        previous_graph_runs one

        # signed by the trusted key again: applied
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-ha/f" "two on ha"
        status_is ha 4 converged

        # a signature field of the wrong length: a clear refusal, nothing applied
        deploy_graph "$TMP/d5.yaml" bad
        h5=$(sha256sum < "$TMP/d5.yaml" | cut -d' ' -f1)
        p=$(payload_of 4 | jq -c --arg prev "$(hash_of 4)" --arg h "$h5" --rawfile g "$TMP/d5.yaml" \
                '.id = 5 | .previous = $prev | .graph = $g | .hash = $h | .signature = "abcd"')
        put_deploy 5 "$p"
        wait_until 10 status_is ha 5 failed
        status_error_has ha "'signature' must be 128 lowercase hex digits .*got 4 characters"
        previous_graph_runs two
        run md show 5
        [ "$status" -eq 1 ]
        [[ "$output" == *"'signature' must be 128"* ]]
        # an agent without --trusted-keys refuses it the same way
        start_bg agent-plain "$AGENT" --hostname hp --seeds "$ETCD_ENDPOINT"
        wait_until 10 status_is hp 5 failed
        [ ! -e "$TMP/out-hp/f" ]
}

@test "trust: tampered and replayed deploys are refused and the previous graph keeps running" {
        start_etcd etcd
        "$DEPLOY" keygen "$TMP/a" > /dev/null
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/a/deploy.pub"
        deploy_graph "$TMP/d1.yaml" one
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/d1.yaml"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-ha/f" "one on ha"

        # flip one byte of the signed graph in etcd (the hash left as it was)
        p=$(payload_of 1 | jq -c --arg prev "$(hash_of 1)" '.id = 2 | .previous = $prev | .graph |= sub("one on"; "ons on")')
        put_deploy 2 "$p"
        wait_until 10 status_is ha 2 failed
        status_error_has ha "deploy 2: bad payload: 'hash' .* does not match the sha256 of 'graph'"
        previous_graph_runs one

        # the same, with the hash fixed up too: the signature no longer matches
        p=$(payload_of 1 | jq -c --arg prev "$(hash_of 2)" '.id = 3 | .previous = $prev | .graph |= sub("one on"; "ons on")')
        h=$(jq -j .graph <<< "$p" | sha256sum | cut -d' ' -f1)
        p=$(jq -c --arg h "$h" '.hash = $h' <<< "$p")
        put_deploy 3 "$p"
        wait_until 10 status_is ha 3 failed
        status_error_has ha "deploy 3: the signature by key [0-9a-f]{16}\\.\\.\\. does not match the record"
        previous_graph_runs one

        # an old signed payload copied to a new id: a replay
        put_deploy 4 "$(payload_of 1)"
        wait_until 10 status_is ha 4 failed
        status_error_has ha "deploy 4 holds the record of deploy 1 .*a replayed deploy"
        previous_graph_runs one
        grep -q "deploy 4 refused, keeping the previous graph" "$TMP/agent.log"
        ectl get --print-value-only /_mgmt/converged/ha | grep -qx false
}

@test "trust: rotating from key A to key B with both trusted loses nothing" {
        start_etcd etcd
        "$DEPLOY" keygen "$TMP/a" > /dev/null
        "$DEPLOY" keygen "$TMP/b" > /dev/null
        mkdir "$TMP/trusted"
        cp "$TMP/a/deploy.pub" "$TMP/trusted/a.pub"
        cp "$TMP/b/deploy.pub" "$TMP/trusted/b.pub"
        echo "not a key, and not named *.pub" > "$TMP/trusted/README"
        for h in a b; do
                MGMT_TRUSTED_KEYS="$TMP/trusted" start_bg "agent-$h" "$AGENT" --hostname "h$h" --seeds "$ETCD_ENDPOINT"
        done
        deploy_graph "$TMP/d1.yaml" one
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        # the same graph signed by the new key is deployed again (not a no-op)
        MGMT_SIGN_KEY="$TMP/b/deploy.key" run md --wait --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        grep -qx 2 <<< "$output"
        deploy_graph "$TMP/d3.yaml" three
        MGMT_SIGN_KEY="$TMP/b/deploy.key" run md --wait --timeout 30 yaml "$TMP/d3.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        for h in a b; do
                file_is "$TMP/out-h$h/f" "three on h$h"
                status_is "h$h" 3 converged
        done
        # A retired: an agent trusting only B refuses A's deploys
        stop_bg agent-b
        start_bg agent-b2 "$AGENT" --hostname hb --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/b/deploy.pub"
        deploy_graph "$TMP/d4.yaml" four
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/d4.yaml"
        echo "$output"
        [ "$status" -eq 5 ]
        [[ "$output" == *"host 'hb' failed"*"which is not trusted"* ]]
        file_is "$TMP/out-hb/f" "three on hb"
        wait_until 10 file_is "$TMP/out-ha/f" "four on ha"
}

@test "trust: a collected exec is refused under trust unless the signed graph allows it" {
        start_etcd etcd
        "$DEPLOY" keygen "$TMP/a" > /dev/null
        start_bg agent-a "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/a/deploy.pub"
        # host hb (any host holding etcd credentials) exports an exec and a file
        ectl put /_mgmt/exported/hb/resources/exec/evil \
                "{\"kind\":\"exec\",\"name\":\"evil\",\"cmd\":\"echo ran >> $TMP/collected-exec-ran\"}" > /dev/null
        ectl put /_mgmt/exported/hb/resources/file/note \
                "{\"kind\":\"file\",\"name\":\"note\",\"path\":\"/nowhere/note\",\"content\":\"collected file\"}" > /dev/null
        cat > "$TMP/collect.yaml" <<EOF
graph: collector
resources: {}
collect:
- kind: exec
  pattern: any
- kind: file
  pattern: "$TMP/coll/"
EOF
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/collect.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        wait_until 10 file_is "$TMP/coll/note" "collected file"
        grep -q "refusing collected exec\[evil\] from 'hb'.*allow_exec" "$TMP/agent-a.log"
        [ ! -e "$TMP/collected-exec-ran" ]

        # the signed graph allows it: the collected exec runs
        sed 's/  pattern: any/  pattern: any\n  allow_exec: true/' "$TMP/collect.yaml" > "$TMP/collect2.yaml"
        grep -q allow_exec "$TMP/collect2.yaml"
        run md --sign-key "$TMP/a/deploy.key" --wait --timeout 30 yaml "$TMP/collect2.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        wait_until 10 grep -qx ran "$TMP/collected-exec-ran"

        # allow_exec on another kind is a graph error, named with its place
        printf 'graph: x\ncollect:\n- kind: file\n  pattern: /tmp/x/\n  allow_exec: true\n' > "$TMP/bad.yaml"
        run md --sign-key "$TMP/a/deploy.key" yaml "$TMP/bad.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"bad.yaml:5:"*"'allow_exec' applies only to a 'collect' entry of kind 'exec'"* ]]
}

@test "trust: bad key files are refused with clear errors and nothing is written or applied" {
        start_etcd etcd
        "$DEPLOY" keygen "$TMP/a" > /dev/null
        deploy_graph "$TMP/d1.yaml" one
        nothing_deployed() {
                [ -z "$(ectl get --prefix --keys-only /_mgmt/deploy/)" ]
        }
        # a public key given as the signing key
        run md --sign-key "$TMP/a/deploy.pub" yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"'$TMP/a/deploy.pub' is a public key, but a private key is needed to sign"* ]]
        nothing_deployed
        # a malformed key file
        printf 'garbage\n' > "$TMP/bad.key"
        chmod 600 "$TMP/bad.key"
        run md --sign-key "$TMP/bad.key" yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"'$TMP/bad.key' is not a PEM private key"* ]]
        nothing_deployed
        # a private key readable by others
        cp "$TMP/a/deploy.key" "$TMP/open.key"
        chmod 644 "$TMP/open.key"
        MGMT_SIGN_KEY="$TMP/open.key" run md yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"private key '$TMP/open.key' is readable by others (mode 0644)"* ]]
        nothing_deployed
        # a key that is not Ed25519
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/ec.key" 2> /dev/null
        chmod 600 "$TMP/ec.key"
        run md --sign-key "$TMP/ec.key" yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"expected an Ed25519 key"* ]]
        # a missing key
        run md --sign-key "$TMP/none.key" yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot read key '$TMP/none.key'"* ]]
        nothing_deployed

        # the agent: a private key, a malformed file or an empty directory as --trusted-keys
        run "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/a/deploy.key"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"is a private key: give the public key"* ]]
        printf -- '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' > "$TMP/bad.pub"
        run "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/bad.pub"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"'$TMP/bad.pub' is not a PEM public key"* ]]
        mkdir "$TMP/empty"
        run "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --trusted-keys "$TMP/empty"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"no trusted key in '$TMP/empty'"* ]]
        [ -z "$(ectl get --prefix --keys-only /_mgmt/status/)" ]
}
