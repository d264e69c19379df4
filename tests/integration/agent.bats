#!/usr/bin/env bats
# agent.bats: mgmt-agent against a real etcd: local --once runs of each kind,
# export/collect between three agents, deploys, drift repair, a bad deploy,
# agent and etcd restarts.

load agents

setup() {
        mgmt_setup
        AGENT=$MGMT_BIN/mgmt-agent
}

teardown() {
        mgmt_teardown
}

# seed_graph X: the seed example for host X (a..d) with paths under $TMP.
seed_graph() {
        sed "s|/tmp/mgmt|$TMP/mgmt|g" "$BATS_TEST_DIRNAME/../../examples/etcd1$1.yaml" > "$TMP/etcd1$1.yaml"
        echo "$TMP/etcd1$1.yaml"
}

@test "agent: --help, bad flags exit 2" {
        run "$AGENT" --help
        [ "$status" -eq 0 ]
        [[ "$output" == *--converged-timeout* ]]
        [[ "$output" == *--trusted-ca-file* ]]
        [[ "$output" == *"--trusted-keys FILE|DIR"*"env MGMT_TRUSTED_KEYS"* ]]
        grep -q 'trusted-keys' "$BATS_TEST_DIRNAME/../../docs/mgmt-agent.8"
        grep -q '^\.SH SECURITY' "$BATS_TEST_DIRNAME/../../docs/mgmt-agent.8"
        run "$AGENT" --no-such-flag
        [ "$status" -eq 2 ]
        run "$AGENT" --once
        [ "$status" -eq 2 ]
        run "$AGENT"
        [ "$status" -eq 2 ]
        run "$AGENT" --file /dev/null --once --seeds http://127.0.0.1:1
        [ "$status" -eq 2 ]
}

@test "agent --file --once: every kind applies, converges, is idempotent" {
        cat > "$TMP/g.yaml" <<EOF
graph: kinds
resources:
  file:
  - name: conf
    path: "$TMP/out/conf"
    content: "hello \${hostname}\n"
    mode: "0600"
  - name: gone
    path: "$TMP/out/gone"
    state: absent
  exec:
  - name: stamp
    cmd: "echo ran >> $TMP/out/stamps; echo exec-output-line"
  - name: never
    cmd: "touch $TMP/out/never"
    ifcmd: "false"
  print:
  - name: p
    msg: "print-message-here"
  noop:
  - name: n
edges:
- name: e
  from: {kind: file, name: conf}
  to: {kind: exec, name: stamp}
  notify: true
EOF
        touch "$TMP/gone" && mkdir -p "$TMP/out" && touch "$TMP/out/gone"
        run "$AGENT" --hostname h1 --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(cat "$TMP/out/conf")" = "hello h1" ]
        [ "$(stat -c %a "$TMP/out/conf")" = 600 ]
        [ ! -e "$TMP/out/gone" ]
        [ ! -e "$TMP/out/never" ]
        [ "$(wc -l < "$TMP/out/stamps")" -eq 1 ]
        [[ "$output" == *exec-output-line* ]]
        [[ "$output" == *print-message-here* ]]
        ino=$(stat -c %i "$TMP/out/conf")
        run "$AGENT" --hostname h1 --file "$TMP/g.yaml" --once
        [ "$status" -eq 0 ]
        [ "$(stat -c %i "$TMP/out/conf")" = "$ino" ]
        [[ "$output" != *"content replaced"* ]]
}

@test "agent --file --once: a failing exec exits 1, an invalid graph names file:line:col" {
        printf 'graph: f\nresources:\n  exec:\n  - name: bad\n    cmd: "exit 7"\n' > "$TMP/bad.yaml"
        run "$AGENT" --file "$TMP/bad.yaml" --once
        [ "$status" -eq 1 ]
        [[ "$output" == *"exited 7"* ]]
        printf 'graph: f\nresources:\n  file:\n  - name: x\n    pth: /tmp/x\n' > "$TMP/inv.yaml"
        run "$AGENT" --file "$TMP/inv.yaml" --once
        [ "$status" -eq 1 ]
        [[ "$output" == *inv.yaml:* ]]
}

@test "agent: three hosts export and collect fA, fB, fC (seed example)" {
        start_etcd etcd
        for h in a b c; do
                start_bg "agent-$h" "$AGENT" --hostname "h$h" --seeds "$ETCD_ENDPOINT" --file "$(seed_graph $h)"
        done
        for H in A B C; do
                for F in A B C; do
                        wait_until 20 file_is "$TMP/mgmt$H/f$F" "i am f$F, exported from host $F"
                done
        done
        wait_until 10 status_is ha 0 converged
        [ "$(ectl get --print-value-only /_mgmt/converged/hb)" = true ]
        ectl get --prefix --keys-only /_mgmt/exported/ | grep -q '/_mgmt/exported/hc/resources/file/filec'

        # an export whose record is not what its key says is ignored, by every collector
        ectl put /_mgmt/exported/hz/resources/file/evil \
                "{\"kind\":\"file\",\"name\":\"other\",\"path\":\"/x/evil\",\"content\":\"x\"}" > /dev/null
        ectl put /_mgmt/exported/hz/resources/file/dots \
                "{\"kind\":\"file\",\"name\":\"dots\",\"path\":\"/x/..\",\"content\":\"x\"}" > /dev/null
        wait_until 10 grep -q "ignoring export '/_mgmt/exported/hz/resources/file/evil': it holds file\[other\]" \
                "$TMP/agent-a.log"
        wait_until 10 grep -q "ignoring export '/_mgmt/exported/hz/resources/file/dots'.*'\.\.'" "$TMP/agent-a.log"
        [ ! -e "$TMP/mgmtA/evil" ] && [ ! -e "$TMP/mgmtA/other" ]
        ectl del --prefix /_mgmt/exported/hz/ > /dev/null

        # host c stops exporting: the others stop managing fC (the file stays)
        printf 'graph: empty\nresources: {}\ncollect:\n- kind: file\n  pattern: "%s/mgmtC/"\n' "$TMP" > "$TMP/c2.yaml"
        stop_bg agent-c
        start_bg agent-c2 "$AGENT" --hostname hc --seeds "$ETCD_ENDPOINT" --file "$TMP/c2.yaml"
        wait_until 10 bash -c "! etcdctl --endpoints $ETCD_ENDPOINT get --prefix --keys-only /_mgmt/exported/hc/ | grep -q ."
        wait_until 10 grep -q "withdrawn" "$TMP/agent-a.log"
        rm -f "$TMP/mgmtA/fC"
        sleep 1
        [ ! -e "$TMP/mgmtA/fC" ]
        [ -f "$TMP/mgmtA/fB" ]
}

@test "agent: a deleted or changed managed file comes back at once, on its inotify event" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$(seed_graph a)"
        wait_until 20 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
        wait_until 10 status_is ha 0 converged
        rm -f "$TMP/mgmtA/fA"
        wait_until 10 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
        # the agent polls nothing: the repair came from the event
        grep -q "file '$TMP/mgmtA/fA': drift detected" "$TMP/agent.log"
        echo tampered > "$TMP/mgmtA/fA"
        wait_until 10 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
        # the rename of the agent's own repair is not drift (0x80: IN_MOVED_TO)
        sleep 0.3
        if grep "drift detected (event 0x80)" "$TMP/agent.log"; then
                echo "the agent took the rename of its own repair for drift"
                false
        fi
        # another file renamed over it (an editor's save, mv) is
        echo "saved by an editor" > "$TMP/mgmtA/.fA.swp"
        mv "$TMP/mgmtA/.fA.swp" "$TMP/mgmtA/fA"
        wait_until 10 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
        grep -q "drift detected (event 0x80)" "$TMP/agent.log"
        rm -rf "$TMP/mgmtA" || true # the agent may restore it while rm runs
        wait_until 10 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
}

# files3 FILE TAG NAMES...: a graph of files named NAMES in $TMP/three, content TAG NAME
files3() {
        local f=$1 tag=$2 n
        shift 2
        {
                printf 'graph: three-%s\nresources:\n  file:\n' "$tag"
                for n in "$@"; do printf '  - name: %s\n    path: "%s/three/%s"\n    content: "%s %s"\n' "$n" "$TMP" "$n" "$tag" "$n"; done
        } > "$f"
}

@test "agent: files sharing a directory share its watch; drift of any is repaired, also after the graph drops the others" {
        [ -x "$MGMT_BIN/mgmt-deploy" ] || { echo "mgmt-deploy not built in $MGMT_BIN"; false; }
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        files3 "$TMP/t1.yaml" one a b c
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --timeout 30 yaml "$TMP/t1.yaml"
        [ "$status" -eq 0 ]
        for n in a b c; do file_is "$TMP/three/$n" "one $n"; done
        for n in c b a; do
                echo tampered > "$TMP/three/$n"
                wait_until 10 file_is "$TMP/three/$n" "one $n"
        done
        # a new graph keeps c as it was (and its watch) and drops a and b
        files3 "$TMP/t2.yaml" one c
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --timeout 30 yaml "$TMP/t2.yaml"
        [ "$status" -eq 0 ]
        echo tampered > "$TMP/three/c"
        wait_until 10 file_is "$TMP/three/c" "one c"
        files3 "$TMP/t3.yaml" two c d
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --timeout 30 yaml "$TMP/t3.yaml"
        [ "$status" -eq 0 ]
        file_is "$TMP/three/c" "two c" && file_is "$TMP/three/d" "two d"
        for n in c d; do
                rm -f "$TMP/three/$n"
                wait_until 10 file_is "$TMP/three/$n" "two $n"
        done
        # files no longer in the graph are not managed
        echo mine > "$TMP/three/a"
        sleep 0.5
        file_is "$TMP/three/a" mine
        [ "$(grep -c "drift detected" "$TMP/agent.log")" -ge 6 ]
}

@test "agent: a deploy reaches every agent and mgmt-deploy --wait returns 0" {
        [ -x "$MGMT_BIN/mgmt-deploy" ] || { echo "mgmt-deploy not built in $MGMT_BIN"; false; }
        start_etcd etcd
        for h in a b c; do
                start_bg "agent-$h" "$AGENT" --hostname "h$h" --seeds "$ETCD_ENDPOINT"
        done
        deploy_graph "$TMP/d1.yaml" one
        # --hosts: an agent still starting has not reported yet, and --wait
        # waits only for the hosts it knows of
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --hosts ha,hb,hc --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        for h in a b c; do
                file_is "$TMP/out-h$h/f" "one on h$h"
                status_is "h$h" 1 converged
        done
}

@test "agent: a bad deploy is reported failed and the previous graph keeps running" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        deploy_graph "$TMP/d1.yaml" one
        h1=$(write_deploy 1 "$TMP/d1.yaml")
        wait_until 20 file_is "$TMP/out-ha/f" "one on ha"
        wait_until 10 status_is ha 1 converged
        printf 'graph: bad\nresources:\n  file:\n  - name: x\n    path: relative/path\n' > "$TMP/d2.yaml"
        write_deploy 2 "$TMP/d2.yaml" "$h1"
        wait_until 10 status_is ha 2 failed
        status_of ha | jq -e '.errors | length > 0'
        ectl get --print-value-only /_mgmt/converged/ha | grep -qx false
        # deploy 1 still enforced
        rm -f "$TMP/out-ha/f"
        wait_until 10 file_is "$TMP/out-ha/f" "one on ha"
        if [ -x "$MGMT_BIN/mgmt-deploy" ]; then
                run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" status
                echo "$output"
        fi
}

@test "agent: a resource failing on a host makes mgmt-deploy --wait exit 5" {
        [ -x "$MGMT_BIN/mgmt-deploy" ] || { echo "mgmt-deploy not built in $MGMT_BIN"; false; }
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        printf 'graph: f\nresources:\n  exec:\n  - name: bad\n    cmd: "exit 4"\n' > "$TMP/f.yaml"
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --timeout 20 yaml "$TMP/f.yaml"
        echo "$output"
        [ "$status" -eq 5 ]
        status_of ha | jq -e '.state == "failed" and (.errors[0] | test("exited 4"))'
}

@test "agent: restarted mid-way, it picks up the latest deploy" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        deploy_graph "$TMP/d1.yaml" one
        h1=$(write_deploy 1 "$TMP/d1.yaml")
        wait_until 20 status_is ha 1 converged
        stop_bg agent
        # clean exit revoked the lease: status gone
        [ -z "$(status_of ha)" ]
        deploy_graph "$TMP/d2.yaml" two
        h2=$(write_deploy 2 "$TMP/d2.yaml" "$h1")
        deploy_graph "$TMP/d3.yaml" three
        write_deploy 3 "$TMP/d3.yaml" "$h2"
        start_bg agent2 "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        wait_until 20 status_is ha 3 converged
        file_is "$TMP/out-ha/f" "three on ha"
}

@test "agent: etcd restarted under the agents loses no deploy" {
        start_etcd etcd
        local ep=$ETCD_ENDPOINT peer=$ETCD_PEER
        for h in a b; do
                start_bg "agent-$h" "$AGENT" --hostname "h$h" --seeds "$ep"
        done
        deploy_graph "$TMP/d1.yaml" one
        h1=$(write_deploy 1 "$TMP/d1.yaml")
        wait_until 20 status_is ha 1 converged
        wait_until 20 status_is hb 1 converged
        stop_bg etcd
        sleep 2
        start_bg etcd2 etcd --name etcd --data-dir "$TMP/etcd.etcd" \
                --listen-client-urls "$ep" --advertise-client-urls "$ep" \
                --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
                --initial-cluster "etcd=$peer"
        wait_until 20 etcd_healthy "$ep"
        deploy_graph "$TMP/d2.yaml" two
        h2=$(write_deploy 2 "$TMP/d2.yaml" "$h1")
        deploy_graph "$TMP/d3.yaml" three
        write_deploy 3 "$TMP/d3.yaml" "$h2"
        for h in a b; do
                wait_until 20 status_is "h$h" 3 converged
                file_is "$TMP/out-h$h/f" "three on h$h"
                grep -q "deploy 2 written" "$TMP/agent-$h.log"
        done
}

@test "agent --seeds --file: the local graph runs until a newer deploy arrives" {
        start_etcd etcd
        deploy_graph "$TMP/d1.yaml" one
        h1=$(write_deploy 1 "$TMP/d1.yaml")
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$(seed_graph a)"
        wait_until 20 file_is "$TMP/mgmtA/fA" "i am fA, exported from host A"
        wait_until 10 status_is ha 0 converged
        [ ! -e "$TMP/out-ha/f" ]
        deploy_graph "$TMP/d2.yaml" two
        write_deploy 2 "$TMP/d2.yaml" "$h1"
        wait_until 20 status_is ha 2 converged
        file_is "$TMP/out-ha/f" "two on ha"
        # the deploy exports nothing: the host's exports were withdrawn
        wait_until 10 bash -c "! etcdctl --endpoints $ETCD_ENDPOINT get --prefix --keys-only /_mgmt/exported/ha/ | grep -q ."
}

# export_graph FILE TAG EXPORTED: a local file with TAG and, unless EXPORTED
# is empty, a file exported with that content
export_graph() {
        {
                printf 'graph: e-%s\nresources:\n  file:\n' "$2"
                printf '  - name: f\n    path: "%s/out-${hostname}/f"\n    content: "%s"\n' "$TMP" "$2"
                if [ -n "$3" ]; then
                        printf '  - name: "@@e"\n    path: "%s/exp/e"\n    content: "%s"\n' "$TMP" "$3"
                fi
        } > "$1"
}

@test "agent: exports are published again only when a deploy changes them" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        export_graph "$TMP/d1.yaml" one x
        h=$(write_deploy 1 "$TMP/d1.yaml")
        wait_until 20 status_is ha 1 converged
        wait_until 10 bash -c "etcdctl --endpoints $ETCD_ENDPOINT get --print-value-only /_mgmt/exported/ha/resources/file/e | grep -q '\"content\":\"x\"'"
        [ "$(grep -c 'publishing 1 exported' "$TMP/agent.log")" = 1 ]
        rev=$(ectl get /_mgmt/exported/ha/resources/file/e -w json | jq -r '.kvs[0].mod_revision')
        n=$(grep -c 'publishing' "$TMP/agent.log")
        # the local file changes, the export does not: not published again
        export_graph "$TMP/d2.yaml" two x
        h=$(write_deploy 2 "$TMP/d2.yaml" "$h")
        wait_until 20 status_is ha 2 converged
        file_is "$TMP/out-ha/f" "two"
        [ "$(grep -c 'publishing' "$TMP/agent.log")" = "$n" ]
        [ "$(ectl get /_mgmt/exported/ha/resources/file/e -w json | jq -r '.kvs[0].mod_revision')" = "$rev" ]
        # the export changes: published with its new content
        export_graph "$TMP/d3.yaml" three y
        h=$(write_deploy 3 "$TMP/d3.yaml" "$h")
        wait_until 20 status_is ha 3 converged
        wait_until 10 bash -c "etcdctl --endpoints $ETCD_ENDPOINT get --print-value-only /_mgmt/exported/ha/resources/file/e | grep -q '\"content\":\"y\"'"
        # the export goes: withdrawn
        export_graph "$TMP/d4.yaml" four ""
        write_deploy 4 "$TMP/d4.yaml" "$h" > /dev/null
        wait_until 20 status_is ha 4 converged
        wait_until 10 bash -c "! etcdctl --endpoints $ETCD_ENDPOINT get --prefix --keys-only /_mgmt/exported/ha/ | grep -q ."
        grep -q "publishing 0 exported resources (1 withdrawn)" "$TMP/agent.log"
}

@test "agent --converged-timeout exits 0 once converged that long" {
        start_etcd etcd
        run timeout 20 "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$(seed_graph a)" --converged-timeout 1
        echo "$output"
        [ "$status" -eq 0 ]
        [ -f "$TMP/mgmtA/fA" ]
}

@test "agent: the endpoint list follows /_mgmt/endpoints/" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        wait_until 10 grep -q "no deploy yet" "$TMP/agent.log"
        ectl put /_mgmt/endpoints/hz "http://127.0.0.1:9,$ETCD_ENDPOINT" > /dev/null
        wait_until 10 grep -q "etcd endpoints: .*127.0.0.1:9" "$TMP/agent.log"
        # still talking to etcd: status written, a deploy applied
        deploy_graph "$TMP/d1.yaml" one
        write_deploy 1 "$TMP/d1.yaml"
        wait_until 20 status_is ha 1 converged
}

@test "agent: the seed member dies; the agent fails over via /_mgmt/endpoints/ and keeps following deploys" {
        local n
        start_etcd_trio
        local -n cp=TRIO_CP
        ETCD_ENDPOINT=http://127.0.0.1:${cp[m2]}
        for n in m1 m2 m3; do
                ectl put "/_mgmt/endpoints/$n" "http://127.0.0.1:${cp[$n]}" > /dev/null
        done
        start_bg agent "$AGENT" --hostname ha --seeds "http://127.0.0.1:${cp[m1]}"
        deploy_graph "$TMP/d1.yaml" one
        h1=$(write_deploy 1 "$TMP/d1.yaml")
        wait_until 20 status_is ha 1 converged
        wait_until 10 grep -q "etcd endpoints: .*${cp[m3]}" "$TMP/agent.log"
        stop_bg etcd-m1 KILL
        # the two survivors elect a leader before the next write
        wait_until 30 etcd_healthy "http://127.0.0.1:${cp[m2]}"
        deploy_graph "$TMP/d2.yaml" two
        write_deploy 2 "$TMP/d2.yaml" "$h1"
        wait_until 30 file_is "$TMP/out-ha/f" "two on ha"
        wait_until 20 status_is ha 2 converged
}

@test "agent: SIGHUP does not stop it; every resource is checked again" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        deploy_graph "$TMP/d1.yaml" one
        write_deploy 1 "$TMP/d1.yaml" > /dev/null
        wait_until 20 status_is ha 1 converged
        kill -HUP "$(cat "$TMP/agent.pid")"
        wait_until 10 grep -q "received SIGHUP: checking every resource again" "$TMP/agent.log"
        kill -0 "$(cat "$TMP/agent.pid")"
        wait_until 10 status_is ha 1 converged
        file_is "$TMP/out-ha/f" "one on ha"
}
