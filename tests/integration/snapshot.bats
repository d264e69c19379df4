#!/usr/bin/env bats
# Snapshots, restore and recover with real etcd processes (issue 14):
# `snapshot save`, scheduled snapshots, `restore --from`, `recover`, and the
# subcommand table's help.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

SUP=${MGMT_BIN:-}/mgmt-supervisor

# Ports of host NAME fixed before start_sup, so that restore/recover give
# the same URLs the daemon will use.
ports_for() {
        [ -f "$TMP/$1.cport" ] || { free_port > "$TMP/$1.cport"; free_port > "$TMP/$1.pport"; }
        echo "--client-urls http://127.0.0.1:$(cat "$TMP/$1.cport") --server-urls http://127.0.0.1:$(cat "$TMP/$1.pport")"
}

# put N keys /test/k/<i> in transactions of 100 (etcd's default limit is 128 ops)
put_keys() {
        local url=$1 n=$2 i=1
        while [ $i -le "$n" ]; do
                {
                        echo
                        for j in $(seq $i $((i + 99))); do [ $j -le "$n" ] && echo "put /test/k/$j value-$j"; done
                        echo
                        echo
                } | etcdctl --endpoints "$url" --command-timeout 10s txn >/dev/null
                i=$((i + 100))
        done
}

key_count() {
        etcdctl --endpoints "$1" --command-timeout 10s get --prefix /test/k/ --limit 1 -w json |
                grep -o '"count":[0-9]*' | cut -d: -f2
}

# every file under DIR with its checksum, to prove nothing changed (but the
# lock file, which the daemon and the commands hold while they run)
tree_sum() {
        (cd "$1" && find . -type f ! -path ./lock -print0 | sort -z | xargs -0 -r sha256sum; find . ! -path ./lock | sort)
}

@test "help CMD, CMD --help and CMD -h print the same text; unknown commands are usage errors" {
        for c in snapshot restore recover; do
                run "$SUP" help "$c"
                [ "$status" -eq 0 ]
                a=$output
                run "$SUP" "$c" --help
                [ "$status" -eq 0 ]
                [ "$output" = "$a" ]
                run "$SUP" "$c" -h
                [ "$output" = "$a" ]
                [[ "$a" == *"Exit status:"* ]]
        done
        run "$SUP" snapshot save --help
        [ "$output" = "$("$SUP" help snapshot)" ]
        # the daemon's help is the top-level help and lists the commands
        run "$SUP" help
        [ "$status" -eq 0 ]
        [ "$output" = "$("$SUP" --help)" ]
        [ "$output" = "$("$SUP" run --help)" ]
        [[ "$output" == *"snapshot save FILE | list"* ]]
        [[ "$output" == *"--snapshot-interval"* ]]
        run "$SUP" frobnicate
        [ "$status" -eq 2 ]
        [[ "$output" == *"unknown command 'frobnicate'"* ]]
        run "$SUP" help frobnicate
        [ "$status" -eq 2 ]
        run "$SUP" snapshot
        [ "$status" -eq 2 ]
        run "$SUP" restore --yes --from x
        [ "$status" -eq 2 ]
        [[ "$output" == *"'--yes' does not apply to 'restore'"* ]]
        run "$SUP" restore --prefix "$TMP/none"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--from FILE is required"* ]]
        [ ! -e "$TMP/none" ]
}

@test "snapshot save streams a snapshot that etcdctl snapshot status accepts; never replaces a file" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1 "$URL_h1"
        put_keys "$URL_h1" 200
        run "$SUP" snapshot save "$TMP/s.db" --seeds "$URL_h1"
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"$TMP/s.db: "*" bytes, revision "* ]]
        run etcdctl snapshot status "$TMP/s.db" -w json
        [ "$status" -eq 0 ]
        [[ "$output" == *'"revision":'* ]]
        # the sha256 printed is the file's
        sum=$(sha256sum "$TMP/s.db" | cut -d' ' -f1)
        run "$SUP" snapshot save "$TMP/s2.db" --seeds "$URL_h1" --json
        [ "$status" -eq 0 ]
        [[ "$output" == *"\"sha256\":\"$(sha256sum "$TMP/s2.db" | cut -d' ' -f1)\""* ]]
        # an existing file is not replaced
        run "$SUP" snapshot save "$TMP/s.db" --seeds "$URL_h1"
        [ "$status" -eq 1 ]
        [[ "$output" == *"already exists"* ]]
        [ "$(sha256sum "$TMP/s.db" | cut -d' ' -f1)" = "$sum" ]
        # no cluster there: error, no file, no temp file left
        run "$SUP" snapshot save "$TMP/dead.db" --seeds "http://127.0.0.1:$(free_port)" --timeout 3
        [ "$status" -eq 1 ]
        [ ! -e "$TMP/dead.db" ]
        [ -z "$(ls -A "$TMP" | grep '\.part\.')" ]
        # a directory that does not exist: clear error
        run "$SUP" snapshot save "$TMP/no/such/dir/s.db" --seeds "$URL_h1"
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot create a temp file beside"* ]]
}

@test "scheduled snapshots: verified, kept N, --snapshot-command gets the path, its failure logged and counted" {
        start_sup h1 --ideal-cluster-size 1 --snapshot-interval 1 --snapshot-keep 2 \
                --snapshot-command "echo \"\$1\" >> $TMP/shipped; exit 3"
        wait_until 30 voter_count_is 1 "$URL_h1"
        wait_until 30 shipped_at_least 4
        stop_bg h1
        # each path the command got was a verified snapshot of ours
        first=$(head -1 "$TMP/shipped")
        [[ "$first" == "$TMP/h1/snapshots/mgmt-h1-"*".db" ]]
        newest=$(tail -1 "$TMP/shipped")
        [ -f "$newest" ]
        etcdctl snapshot status "$newest"
        # retention: only the newest 2 remain
        [ "$(ls "$TMP/h1/snapshots/"*.db | wc -l)" -eq 2 ]
        [ ! -e "$first" ]
        # the failing command was logged and counted, and the daemon went on
        grep -q "snapshot-command failed for '$first' (exit status 3; 1 command failure so far)" "$TMP/h1.log"
        grep -q "4 command failures so far" "$TMP/h1.log"
        # the record in etcd and the listing agree with the file
        run "$SUP" snapshot list --prefix "$TMP/h1"
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(echo "$output" | grep -c ' yes ')" -eq 2 ]
        run "$SUP" snapshot list --prefix "$TMP/h1" --json
        [[ "$output" == *"\"sha256\":\"$(sha256sum "$newest" | cut -d' ' -f1)\""* ]]
}

@test "scheduled snapshots: the record /_mgmt/snapshot/<host> describes the newest good one" {
        start_sup h1 --ideal-cluster-size 1 --snapshot-interval 1
        wait_until 30 voter_count_is 1 "$URL_h1"
        wait_until 20 key_has_sha256 "$URL_h1"
        rec=$(etcdctl --endpoints "$URL_h1" get /_mgmt/snapshot/h1 --print-value-only)
        file=$(echo "$rec" | grep -o '"file":"[^"]*"' | cut -d'"' -f4)
        [ -f "$file" ]
        [[ "$rec" == *"\"sha256\":\"$(sha256sum "$file" | cut -d' ' -f1)\""* ]]
        [[ "$rec" == *'"revision":'* ]]
        [[ "$rec" == *'"time":'* ]]
}

shipped_at_least() {
        [ "$(cat "$TMP/shipped" 2>/dev/null | wc -l)" -ge "$1" ]
}

key_has_sha256() {
        etcdctl --endpoints "$1" get /_mgmt/snapshot/h1 --print-value-only | grep -q '"sha256"'
}

@test "a snapshot that fails etcd's verification is deleted and counted, never kept" {
        # an etcdutl beside --etcd-binary is preferred: this one refuses everything
        mkdir -p "$TMP/bin"
        ln -s "$(command -v etcd)" "$TMP/bin/etcd"
        printf '#!/bin/sh\necho "Error: invalid database" >&2\nexit 1\n' > "$TMP/bin/etcdutl"
        chmod +x "$TMP/bin/etcdutl"
        start_sup h1 --ideal-cluster-size 1 --snapshot-interval 1 --etcd-binary "$TMP/bin/etcd" \
                --snapshot-command "echo \"\$1\" >> $TMP/shipped"
        wait_until 30 voter_count_is 1 "$URL_h1"
        wait_until 20 grep -q "snapshot failed (2 failures so far): etcd's snapshot tool refused it (exit 1): Error: invalid database" \
                "$TMP/h1.log"
        stop_bg h1
        # nothing kept, nothing shipped, no temp file left, no record
        [ -z "$(ls -A "$TMP/h1/snapshots")" ]
        [ ! -e "$TMP/shipped" ]
}

@test "a snapshot dir that cannot be created: logged and counted, the member keeps serving" {
        touch "$TMP/afile"
        start_sup h1 --ideal-cluster-size 1 --snapshot-interval 1 --snapshot-dir "$TMP/afile/snaps"
        wait_until 30 voter_count_is 1 "$URL_h1"
        wait_until 20 grep -q "snapshot failed (2 failures so far): cannot create --snapshot-dir '$TMP/afile/snaps'" \
                "$TMP/h1.log"
        etcdctl --endpoints "$URL_h1" put /k v
        kill -0 "$(cat "$TMP/h1.pid")"
}

@test "restore a snapshot of 1,000 keys on a fresh prefix: the supervisor serves every key, alone" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1 "$URL_h1"
        put_keys "$URL_h1" 1000
        [ "$(key_count "$URL_h1")" -eq 1000 ]
        # the cluster record as a bootstrap would have written it
        etcdctl --endpoints "$URL_h1" put /_mgmt/cluster '{"id":"1234","generation":4,"created":"2026-01-01T00:00:00Z"}'
        "$SUP" snapshot save "$TMP/s.db" --seeds "$URL_h1"
        stop_bg h1
        # shellcheck disable=SC2046
        run "$SUP" restore --from "$TMP/s.db" --prefix "$TMP/r1" --hostname r1 $(ports_for r1)
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"generation 5"* ]]
        [ -d "$TMP/r1/etcd/member" ]
        grep -q '"generation":5' "$TMP/r1/cluster.json"
        start_sup r1
        wait_until 30 voter_count_is 1 "$URL_r1"
        [ "$(key_count "$URL_r1")" -eq 1000 ]
        [ "$(etcdctl --endpoints "$URL_r1" get /test/k/777 --print-value-only)" = "value-777" ]
        # only this host is nominated; the cluster records generation 5 and its new id
        run etcdctl --endpoints "$URL_r1" get --prefix /_mgmt/nominated/ --keys-only
        [ "$(echo "$output" | grep -c nominated/)" -eq 1 ]
        [[ "$output" == *"/_mgmt/nominated/r1"* ]]
        run etcdctl --endpoints "$URL_r1" get /_mgmt/cluster --print-value-only
        [[ "$output" == *'"generation":5'* ]]
        [[ "$output" != *'"id":"1234"'* ]]
        # and writes work
        etcdctl --endpoints "$URL_r1" put /after v
}

@test "restore over existing data moves it aside under PREFIX/old/, never deletes it" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1 "$URL_h1"
        etcdctl --endpoints "$URL_h1" put /before v
        "$SUP" snapshot save "$TMP/s.db" --seeds "$URL_h1"
        stop_bg h1
        before=$(cd "$TMP/h1/etcd" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        # shellcheck disable=SC2046
        run "$SUP" restore --from "$TMP/s.db" --prefix "$TMP/h1" --hostname h1 $(ports_for h1)
        echo "$output"
        [ "$status" -eq 0 ]
        old=$(ls -d "$TMP/h1/old/"*/etcd)
        [ "$(cd "$old" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" = "$before" ]
        start_sup h1
        wait_until 30 voter_count_is 1 "$URL_h1"
        [ "$(etcdctl --endpoints "$URL_h1" get /before --print-value-only)" = "v" ]
}

@test "restore refuses bad input (empty, truncated, random, missing) and a running supervisor; nothing changes" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1 "$URL_h1"
        "$SUP" snapshot save "$TMP/s.db" --seeds "$URL_h1"
        stop_bg h1
        : > "$TMP/empty.db"
        head -c 20000 "$TMP/s.db" > "$TMP/trunc.db"
        head -c 65568 /dev/urandom > "$TMP/random.db" # the right size for a snapshot, wrong content
        # one flipped byte
        cp "$TMP/s.db" "$TMP/flipped.db"
        printf 'X' | dd of="$TMP/flipped.db" bs=1 seek=5000 conv=notrunc 2>/dev/null
        echo 4242 > "$TMP/h1/lock" # as the daemon leaves it: its pid
        tree_sum "$TMP/h1" > "$TMP/before"
        for f in empty trunc random flipped missing; do
                # shellcheck disable=SC2046
                run "$SUP" restore --from "$TMP/$f.db" --prefix "$TMP/h1" --hostname h1 $(ports_for h1)
                echo "$f: $output"
                [ "$status" -eq 1 ]
                [[ "$output" == *"$TMP/$f.db"* ]]
                [[ "$output" == *"nothing was changed"* || "$f" == missing ]]
        done
        [[ "$(bash -c "\"$SUP\" restore --from \"$TMP/empty.db\" --prefix \"$TMP/h1\" 2>&1")" == *"is empty"* ]]
        [[ "$(bash -c "\"$SUP\" restore --from \"$TMP/flipped.db\" --prefix \"$TMP/h1\" 2>&1")" == *"sha256"* ]]
        # a supervisor holds the prefix's lock: refused (exit 3), naming its pid
        flock "$TMP/h1/lock" sleep 30 &
        holder=$!
        echo "$holder" >> "$TMP/.pids"
        wait_until 5 bash -c "! flock -n \"$TMP/h1/lock\" true"
        # shellcheck disable=SC2046
        run "$SUP" restore --from "$TMP/s.db" --prefix "$TMP/h1" --hostname h1 $(ports_for h1)
        echo "$output"
        [ "$status" -eq 3 ]
        [[ "$output" == *"is running (pid 4242"* ]]
        kill "$holder"
        wait "$holder" 2>/dev/null || true
        tree_sum "$TMP/h1" > "$TMP/after"
        diff "$TMP/before" "$TMP/after"
}

@test "recover refuses (exit 3) while a quorum answers, and without --yes off a terminal (exit 2); nothing changes" {
        # h3 stays a member while it is stopped: the coordinator must not
        # remove it as dead while the checks below run on a slow machine
        SUP_FLAGS="--dead-member-grace 300 --nominate-timeout 8 --stop-timeout 5"
        for h in h1 h2 h3; do ports_for $h >/dev/null; done
        start_sup h1 --ideal-cluster-size 3
        start_sup h2 --seeds "$URL_h1"
        start_sup h3 --seeds "$URL_h1"
        wait_until 90 voter_count_is 3
        stop_bg h3
        tree_sum "$TMP/h3" > "$TMP/before"
        # shellcheck disable=SC2046
        run "$SUP" recover --prefix "$TMP/h3" --hostname h3 $(ports_for h3) < /dev/null
        echo "$output"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--yes"* ]]
        # shellcheck disable=SC2046
        run "$SUP" recover --prefix "$TMP/h3" --hostname h3 $(ports_for h3) --yes
        echo "$output"
        [ "$status" -eq 3 ]
        [[ "$output" == *"refusing to recover"* ]]
        tree_sum "$TMP/h3" > "$TMP/after"
        diff "$TMP/before" "$TMP/after"
        voter_count_is 3
}

@test "recover on the survivor of a lost quorum: a one-member cluster with every key, that regrows" {
        for h in h1 h2 h3; do ports_for $h >/dev/null; done
        start_sup h1 --ideal-cluster-size 3
        start_sup h2 --seeds "$URL_h1"
        start_sup h3 --seeds "$URL_h1"
        wait_until 90 voter_count_is 3
        put_keys "$URL_h1" 300
        # two hosts lost for good, the survivor stopped
        stop_bg h2
        stop_bg h3
        stop_bg h1
        rm -rf "$TMP/h2" "$TMP/h3"
        # a snapshot directory that cannot be made: clear error, nothing changed
        touch "$TMP/afile"
        tree_sum "$TMP/h1" > "$TMP/before"
        # shellcheck disable=SC2046
        run "$SUP" recover --prefix "$TMP/h1" --hostname h1 $(ports_for h1) --yes --snapshot-dir "$TMP/afile/s"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot create snapshot directory '$TMP/afile/s'"*"nothing was changed"* ]]
        tree_sum "$TMP/h1" > "$TMP/after"
        diff "$TMP/before" "$TMP/after"
        # shellcheck disable=SC2046
        run "$SUP" recover --prefix "$TMP/h1" --hostname h1 $(ports_for h1) --yes
        echo "$output"
        [ "$status" -eq 0 ]
        snap=$(ls "$TMP/h1/snapshots/"*-before-recover.db)
        etcdctl snapshot status "$snap"
        start_sup h1 --ideal-cluster-size 3
        wait_until 30 voter_count_is 1 "$URL_h1"
        [ "$(key_count "$URL_h1")" -eq 300 ]
        # new hosts (the lost ones, empty) join by normal nomination
        start_sup h2 --seeds "$URL_h1"
        start_sup h3 --seeds "$URL_h1"
        wait_until 120 voter_count_is 3 "$URL_h1"
        [ "$(key_count "$URL_h1")" -eq 300 ]
}

# A graph writing $TMP/out-${hostname}/f with TAG.
disaster_graph() { # FILE TAG
        printf 'graph: d-%s\nresources:\n  file:\n  - name: f\n    path: "%s/out-${hostname}/f"\n    content: "%s on ${hostname}"\n' \
                "$2" "$TMP" "$2" > "$1"
}

@test "disaster: every host and prefix lost, one snapshot restored: every key and deploy back, one cluster, ideal size, agents converge" {
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        wait_until 90 voter_count_is 3
        put_keys "$URL_h1" 1000
        for t in one two three; do
                disaster_graph "$TMP/$t.yaml" "$t"
                "$MGMT_BIN/mgmt-deploy" --seeds "$(all_urls)" yaml "$TMP/$t.yaml"
        done
        "$SUP" snapshot save "$TMP/backup.db" --seeds "$(all_urls)"
        # every host lost: processes killed, prefixes gone
        for h in h1 h2 h3 h4; do kill_host $h; done
        for h in h1 h2 h3 h4; do rm -rf "$TMP/$h"; done
        # restore on one host (its old ports), then start every host
        # shellcheck disable=SC2046
        "$SUP" restore --from "$TMP/backup.db" --prefix "$TMP/h1" --hostname h1 $(ports_for h1)
        start_sup h1
        for h in h2 h3 h4; do start_sup $h --seeds "$URL_h1"; done
        for h in h1 h2 h3 h4; do start_bg "agent-$h" "$MGMT_BIN/mgmt-agent" --hostname $h --seeds "$(all_urls)"; done
        wait_until 90 voter_count_is 3
        one_cluster_id
        [ "$(key_count "$URL_h1")" -eq 1000 ]
        run "$MGMT_BIN/mgmt-deploy" --seeds "$(all_urls)" list
        [ "$(echo "$output" | grep -cE '^ *[123] ')" -eq 3 ] || { echo "$output"; false; }
        # every agent applies the latest deploy
        for h in h1 h2 h3 h4; do
                wait_until 60 test -f "$TMP/out-$h/f"
                [ "$(cat "$TMP/out-$h/f")" = "three on $h" ]
        done
        run etcdctl --endpoints "$URL_h1" get /_mgmt/cluster --print-value-only
        [[ "$output" == *'"generation":2'* ]]
}
