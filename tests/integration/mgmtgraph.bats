#!/usr/bin/env bats
# mgmtgraph.bats: mgmt-style graphs (every field mgmt writes), every error
# at once (mgmt-deploy validate, mgmt-agent --check), meta noop that never
# runs a command (--once, --noop, a deploy), retry, watchcmd and pollint.

load lib

setup() {
        mgmt_setup
        AGENT=$MGMT_BIN/mgmt-agent
        DEPLOY=$MGMT_BIN/mgmt-deploy
}

teardown() {
        mgmt_teardown
}

lines_of() { # FILE: number of lines, 0 if absent
        if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi
}

at_least_lines() { # FILE N
        [ "$(lines_of "$1")" -ge "$2" ]
}

@test "graph: five errors print five located errors (mgmt-deploy validate, mgmt-agent --check)" {
        cat > "$TMP/five.yaml" <<'EOF'
graph: five
resources:
  exec:
  - name: a
    cmd: "true"
    cwd: /tmp
    timeout: forever
  file:
  - name: f
    path: relative
  noop:
  - name: n
  - name: n
edges:
- name: e
  from: {kind: noop, name: n}
  to: {kind: exec, name: nope}
EOF
        run "$DEPLOY" validate "$TMP/five.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [ "$(grep -c "$TMP/five.yaml:[0-9]*:[0-9]*: " <<< "$output")" -eq 5 ]
        [[ "$output" == *"five.yaml:6:5: field 'cwd' in exec resource 'a' is not supported"* ]]
        [[ "$output" == *"five.yaml:7:14: "* ]]
        [[ "$output" == *"five.yaml:10:11: "* ]]
        [[ "$output" == *"five.yaml:13:5: duplicate noop resource name 'n'"* ]]
        [[ "$output" == *"five.yaml:17:26: "* ]]
        run "$AGENT" --file "$TMP/five.yaml" --check
        echo "$output"
        [ "$status" -eq 1 ]
        [ "$(grep -c "$TMP/five.yaml:[0-9]*:[0-9]*: " <<< "$output")" -eq 5 ]
        # valid: exit 0, no cluster needed
        printf 'graph: ok\nresources:\n  noop:\n  - name: n\n' > "$TMP/ok.yaml"
        run "$DEPLOY" --seeds http://127.0.0.1:1 validate "$TMP/ok.yaml"
        [ "$status" -eq 0 ]
        [[ "$output" == *"is valid"* ]]
        run "$AGENT" --file "$TMP/ok.yaml" --check
        [ "$status" -eq 0 ]
}

@test "graph: 60 errors print 50 and how many more" {
        { printf 'graph: many\nresources:\n  noop:\n'
          for i in $(seq 1 60); do printf '  - name: n%d\n    bogus: 1\n' "$i"; done; } > "$TMP/many.yaml"
        run "$DEPLOY" validate "$TMP/many.yaml"
        [ "$status" -eq 1 ]
        [ "$(grep -c "unknown field 'bogus'" <<< "$output")" -eq 50 ]
        [[ "$output" == *"... and 10 more errors"* ]]
}

noop_graph() { # FILE: the marker command guarded only by meta noop, plus a real change
        cat > "$1" <<EOF
graph: guarded
resources:
  exec:
  - name: dangerous
    cmd: 'touch $TMP/MARKER'
    shell: ''
    ifcmd: ''
    ifshell: ''
    watchcmd: ''
    watchshell: ''
    timeout: 0
    pollint: 0
    state: present
    meta:
      noop: true
  - name: guarded-if
    cmd: 'touch $TMP/MARKER2'
    ifcmd: 'true'
    meta: {noop: true, retry: 0, delay: 0, poll: 0}
  file:
  - name: nofile
    path: "$TMP/noop-file"
    content: "never written\n"
    meta: {noop: true}
  - name: real
    path: "$TMP/out-\${hostname}/real"
    content: "applied\n"
EOF
}

@test "meta noop: --once never runs the guarded command and reports what would change" {
        noop_graph "$TMP/g.yaml"
        run "$AGENT" --hostname h1 --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ ! -e "$TMP/MARKER" ]
        [ ! -e "$TMP/MARKER2" ]
        [ ! -e "$TMP/noop-file" ]
        [ "$(cat "$TMP/out-h1/real")" = applied ]
        [[ "$output" == *"noop: exec[dangerous]: would run cmd 'touch $TMP/MARKER'"* ]]
        [[ "$output" == *"noop: exec 'guarded-if': ifcmd passed: would run cmd"* ]]
        [[ "$output" == *"noop: file '$TMP/noop-file': would create it"* ]]
}

@test "--once --noop: a dry run reports per resource and changes nothing" {
        noop_graph "$TMP/g.yaml"
        run "$AGENT" --hostname h1 --file "$TMP/g.yaml" --once --noop
        echo "$output"
        [ "$status" -eq 0 ]
        [ ! -e "$TMP/MARKER" ]
        [ ! -e "$TMP/out-h1" ]
        [[ "$output" == *"noop: file '$TMP/out-h1/real': would create it"* ]]
        [[ "$output" == *"4 resource checks found something to change, nothing was changed"* ]]
        # MGMT_NOOP is its environment twin
        MGMT_NOOP=1 run "$AGENT" --hostname h1 --file "$TMP/g.yaml" --once
        [ "$status" -eq 0 ]
        [ ! -e "$TMP/out-h1" ]
}

@test "meta noop: a deploy never runs the guarded command" {
        start_etcd etcd
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT"
        noop_graph "$TMP/g.yaml"
        run "$DEPLOY" --seeds "$ETCD_ENDPOINT" --wait --timeout 30 yaml "$TMP/g.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(cat "$TMP/out-ha/real")" = applied ]
        [ ! -e "$TMP/MARKER" ]
        [ ! -e "$TMP/MARKER2" ]
        grep -q "noop: exec\[dangerous\]: would run cmd" "$TMP/agent.log"
        # drift of a noop file is reported again, never repaired
        echo drift > "$TMP/noop-file"
        kill -HUP "$(cat "$TMP/agent.pid")"
        wait_until 5 grep -q "noop: file '$TMP/noop-file': would replace the content" "$TMP/agent.log"
        [ "$(cat "$TMP/noop-file")" = drift ]
        [ ! -e "$TMP/MARKER" ]
}

@test "mgmt-style graph with every supported field applies and is idempotent" {
        echo "source text" > "$TMP/src"
        mkdir -p "$TMP/out/wasdir"
        cat > "$TMP/g.yaml" <<EOF
graph: mgmtstyle
resources:
  file:
  - name: dir
    path: "$TMP/out/d/"
    state: exists
    mode: "0750"
    owner: ""
    group: ""
    source: ""
    recurse: false
    force: false
  - name: copy
    path: "$TMP/out/d/copy"
    source: "$TMP/src"
    mode: "0640"
  - name: replaced
    path: "$TMP/out/wasdir"
    content: "a file now\n"
    force: true
  exec:
  - name: run
    cmd: "echo ran >> $TMP/out/runs"
    shell: /bin/sh
    ifcmd: "test ! -e $TMP/out/runs"
    ifshell: /bin/bash
    timeout: 10
    pollint: 0
    state: present
    meta: {noop: false, retry: 0, delay: 0, poll: 0, limit: 0, burst: 0, sema: [], autoedge: false}
  noop:
  - name: n
    meta: {}
collect:
- kind: file
  pattern: ''
edges:
- name: e1
  from: {kind: file, name: dir}
  to: {kind: file, name: copy}
EOF
        run "$AGENT" --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(stat -c %a "$TMP/out/d")" = 750 ]
        [ "$(cat "$TMP/out/d/copy")" = "source text" ]
        [ "$(stat -c %a "$TMP/out/d/copy")" = 640 ]
        [ "$(cat "$TMP/out/wasdir")" = "a file now" ]
        ls "$TMP/out/" | grep -q '^wasdir\.mgmt-aside\.' # moved aside, not deleted
        [ "$(lines_of "$TMP/out/runs")" -eq 1 ]
        run "$AGENT" --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(lines_of "$TMP/out/runs")" -eq 1 ]
        [[ "$output" != *"content replaced"* ]]
        [[ "$output" != *"created"* ]]
        [[ "$output" != *"moved aside"* ]]
        [[ "$output" != *"mode set"* ]]
}

@test "meta retry: --once retries N times spaced by delay, then fails" {
        cat > "$TMP/g.yaml" <<EOF
graph: r
resources:
  exec:
  - name: flaky
    cmd: "echo try >> $TMP/tries; exit 3"
    meta: {retry: 2, delay: 100}
  - name: succeeds-third
    cmd: "echo try >> $TMP/tries2; [ \$(wc -l < $TMP/tries2) -ge 3 ]"
    meta: {retry: 5, delay: 50}
EOF
        run "$AGENT" --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 1 ]
        [ "$(lines_of "$TMP/tries")" -eq 3 ]
        [ "$(lines_of "$TMP/tries2")" -eq 3 ]
        [[ "$output" == *"no retries left of 2"* ]]
}

@test "exec watchcmd: every line it prints runs the check again; pollint runs it periodically" {
        start_etcd etcd
        cat > "$TMP/g.yaml" <<EOF
graph: w
resources:
  exec:
  - name: watched
    cmd: "echo run >> $TMP/watched"
    watchcmd: "exec tail -n +1 -F $TMP/events"
    watchshell: /bin/bash
  - name: polled
    cmd: "echo run >> $TMP/polled"
    pollint: 1
EOF
        : > "$TMP/events"
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$TMP/g.yaml"
        wait_until 10 at_least_lines "$TMP/watched" 1
        # tail prints the file from its first line: an event written before
        # it opens the file still counts once
        for i in 1 2 3; do
                echo "event $i" >> "$TMP/events"
                wait_until 5 at_least_lines "$TMP/watched" $((i + 1))
        done
        wait_until 5 at_least_lines "$TMP/polled" 3
        [ "$(lines_of "$TMP/watched")" -eq 4 ]
}
