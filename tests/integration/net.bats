#!/usr/bin/env bats
# net.bats: real networks and TLS (issue 7) and a network partition (issue 4
# item 9). Hosts are network namespaces the test creates, joined by a bridge
# inside a private namespace of their own: nothing in the root namespace is
# touched and nothing is routed anywhere else. Needs root.

load sup

setup() {
        mgmt_setup
        NETID=$(printf '%04x%02x' "$RANDOM" "$((RANDOM % 256))")
        SUBNET=10.213.$((RANDOM % 250 + 1))
        : > "$TMP/.netns"
}

# Processes first (mgmt_teardown), then whatever still runs in our namespaces
# (an orphaned etcd), then the namespaces themselves; even when a test failed.
teardown() {
        local nss="" ns pid rc=0
        [ -f "$TMP/.netns" ] && nss=$(tac "$TMP/.netns")
        mgmt_teardown || rc=$?
        for ns in $nss; do
                for pid in $(ip netns pids "$ns" 2>/dev/null); do
                        kill -KILL "$pid" 2>/dev/null || true
                done
        done
        for ns in $nss; do
                ip netns del "$ns" 2>/dev/null || true
        done
        return $rc
}

ns_of() { echo "mgmt-$NETID-h$1"; }
ip_of() { echo "$SUBNET.$1"; }
BRNS() { echo "mgmt-$NETID-br"; }

# net_up N: hosts 1..N, each a namespace with eth0 at $SUBNET.i/24 whose veth
# peer vi is a port of br0 in the bridge namespace.
net_up() {
        local n=$1 i ns br
        br=$(BRNS)
        ip netns add "$br"
        echo "$br" >> "$TMP/.netns"
        ip -n "$br" link set lo up
        ip -n "$br" link add br0 type bridge
        ip -n "$br" link set br0 up
        for i in $(seq 1 "$n"); do
                ns=$(ns_of "$i")
                ip netns add "$ns"
                echo "$ns" >> "$TMP/.netns"
                ip -n "$ns" link set lo up
                ip -n "$br" link add "v$i" type veth peer name eth0 netns "$ns"
                ip -n "$br" link set "v$i" master br0 up
                ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
                ip -n "$ns" link set eth0 up
        done
}

# start_host I [flags...]: supervisor hI in namespace I on the standard ports,
# listening on every interface, advertise URLs derived by the supervisor.
start_host() {
        local i=$1
        shift
        # shellcheck disable=SC2086
        start_bg "h$i" ip netns exec "$(ns_of "$i")" "$MGMT_BIN/mgmt-supervisor" --hostname "h$i" \
                --prefix "$TMP/h$i" --client-urls http://0.0.0.0:2379 --server-urls http://0.0.0.0:2380 \
                $SUP_FLAGS "$@"
}

# ectl_on I ARGS...: etcdctl run in host I's namespace against its own etcd.
ectl_on() {
        local i=$1
        shift
        ip netns exec "$(ns_of "$i")" etcdctl --endpoints "http://$(ip_of "$i"):2379" \
                --dial-timeout 2s --command-timeout 4s "$@"
}

# members_on I: "name peerURLs clientURLs isLearner" per member, sorted, as host I's etcd sees them.
members_on() {
        ectl_on "$1" member list -w json 2>/dev/null |
                jq -r '.members[] | [(.name // ""), (.peerURLs | join(",")), ((.clientURLs // []) | join(",")),
                        (.isLearner // false | tostring)] | join(" ")' | sort
}

# voters_are I "hA hB ...": host I's etcd lists exactly these started voting members.
voters_are() {
        local got
        got=$(members_on "$1") || return 1
        [ -n "$got" ] || return 1
        echo "$got"
        [ "$(echo "$got" | awk '$1 != "" && $4 == "false" { print $1 }' | sort | xargs)" = "$(echo "$2" | xargs -n1 | sort | xargs)" ] &&
                [ "$(echo "$got" | wc -l)" -eq "$(echo "$2" | wc -w)" ]
}

# Every member advertises exactly its own host's address, never loopback or a wildcard.
urls_are_own() {
        local name peer client i
        while read -r name peer client _; do
                i=${name#h}
                [ "$peer" = "http://$(ip_of "$i"):2380" ] || { echo "$name advertises peer URLs $peer"; return 1; }
                [ "$client" = "http://$(ip_of "$i"):2379" ] || { echo "$name advertises client URLs $client"; return 1; }
        done < <(members_on "$1")
}

# seed_graph_on I X: the seed example for host letter X with paths under $TMP/hI.
seed_graph_on() {
        sed "s|/tmp/mgmt|$TMP/h$1/mgmt|g" "$BATS_TEST_DIRNAME/../../examples/etcd1$2.yaml" > "$TMP/h$1-etcd1$2.yaml"
        echo "$TMP/h$1-etcd1$2.yaml"
}

file_is() {
        [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# cluster_id_on I: the cluster id host I's etcd reports (exact digits, no float rounding).
cluster_id_on() {
        ectl_on "$1" endpoint status -w json 2>/dev/null | grep -o '"cluster_id":[0-9]*' | cut -d: -f2
}

# one_cluster N: every host 1..N answers, all agree on the member list and the
# cluster id, and it has N started voting members.
one_cluster() {
        local n=$1 i first="" firstid="" l id
        for i in $(seq 1 "$n"); do
                l=$(members_on "$i") || return 1
                id=$(cluster_id_on "$i")
                if [ -z "$l" ] || [ -z "$id" ]; then echo "h$i does not answer"; return 1; fi
                if [ "$i" -eq 1 ]; then
                        first=$l
                        firstid=$id
                        echo "$l"
                        [ "$(echo "$l" | awk '$1 != "" && $4 == "false"' | wc -l)" -eq "$n" ] || return 1
                else
                        [ "$l" = "$first" ] || { echo "h$i sees:"; echo "$l"; return 1; }
                        [ "$id" = "$firstid" ] || { echo "h$i is in cluster $id, h1 in $firstid"; return 1; }
                fi
        done
}

@test "net: three hosts in namespaces form a cluster on their own addresses and exchange files" {
        net_up 3
        start_host 1
        wait_until 30 voters_are 1 h1
        start_host 2 --seeds "http://$(ip_of 1):2379"
        start_host 3 --seeds "http://$(ip_of 1):2379"
        wait_until 90 voters_are 1 "h1 h2 h3"
        for i in 1 2 3; do
                wait_until 20 voters_are "$i" "h1 h2 h3"
                urls_are_own "$i"
        done
        ! members_on 1 | grep -E '127\.|0\.0\.0\.0|localhost|\[::' || false

        # agents on the three hosts, each talking to its own etcd, exchange exported files
        local -a letter=(x a b c)
        for i in 1 2 3; do
                start_bg "agent$i" ip netns exec "$(ns_of "$i")" "$MGMT_BIN/mgmt-agent" --hostname "h$i" \
                        --prefix "$TMP/agent$i" --seeds "http://$(ip_of "$i"):2379" \
                        --file "$(seed_graph_on "$i" "${letter[$i]}")"
        done
        for i in 1 2 3; do
                H=${letter[$i]^^}
                for F in A B C; do
                        wait_until 30 file_is "$TMP/h$i/mgmt$H/f$F" "i am f$F, exported from host $F"
                done
        done
}

@test "net: a partitioned minority makes no membership change; after healing one cluster remains" {
        net_up 5
        start_host 1 --ideal-cluster-size 5
        wait_until 30 voters_are 1 h1
        for i in 2 3 4 5; do
                start_host "$i" --seeds "http://$(ip_of 1):2379"
        done
        wait_until 150 one_cluster 5

        # acknowledged writes before the fault
        : > "$TMP/acked"
        for k in $(seq 1 20); do
                ectl_on 1 put "/test/pre/$k" "$k" > /dev/null
                echo "/test/pre/$k" >> "$TMP/acked"
        done

        # cut h4 and h5 off the bridge; remember how far their logs had got
        local -a lines
        lines[4]=$(wc -l < "$TMP/h4.log")
        lines[5]=$(wc -l < "$TMP/h5.log")
        ip -n "$(BRNS)" link set v4 down
        ip -n "$(BRNS)" link set v5 down

        # the majority keeps serving writes through the partition (and may
        # remove h4 and h5 once the grace has passed)
        local deadline=$((SECONDS + 20)) k=0 i
        while [ "$SECONDS" -lt "$deadline" ]; do
                k=$((k + 1))
                i=$((k % 3 + 1))
                if ectl_on "$i" put "/test/during/$k" "$k" > /dev/null 2>&1; then
                        echo "/test/during/$k" >> "$TMP/acked"
                fi
                sleep 0.1
        done
        local during
        during=$(grep -c /test/during/ "$TMP/acked")
        echo "majority acknowledged $during writes of $k during the partition"
        [ "$during" -gt $((k / 2)) ]

        # the minority made no membership decision and still knows all five members
        for i in 4 5; do
                tail -n +"$((lines[i] + 1))" "$TMP/h$i.log" > "$TMP/h$i.partition.log"
                ! grep -E 'coordinator: |un-nominating' "$TMP/h$i.partition.log" || false
                grep -q 'quorum lost' "$TMP/h$i.partition.log"
                if l=$(members_on "$i") && [ -n "$l" ]; then
                        echo "$l"
                        [ "$(echo "$l" | wc -l)" -eq 5 ]
                fi
                ! ectl_on "$i" put /test/minority x || false
        done

        # heal: one cluster of five, every acknowledged write readable on every host
        ip -n "$(BRNS)" link set v4 up
        ip -n "$(BRNS)" link set v5 up
        wait_until 180 one_cluster 5
        for i in 1 2 3 4 5; do
                ectl_on "$i" --command-timeout 10s get --prefix /test/ --keys-only | grep . | sort > "$TMP/read$i"
                missing=$(sort "$TMP/acked" | comm -23 - "$TMP/read$i" | wc -l)
                echo "h$i: $(wc -l < "$TMP/acked") acknowledged, $missing missing"
                [ "$missing" -eq 0 ]
        done
}

# make_cert NAME SAN [SUBJECT]: NAME.key/NAME.crt signed by the test CA, for
# servers and clients; SUBJECT defaults to /CN=NAME.
make_cert() {
        local d=$TMP/pki
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "${3:-/CN=$1}" \
                -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
                "$2" > "$d/$1.ext"
        openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
                -extfile "$d/$1.ext" -out "$d/$1.crt" 2>/dev/null
}

make_ca() {
        mkdir -p "$TMP/pki"
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
                -subj /CN=mgmt-test-ca -keyout "$TMP/pki/ca.key" -out "$TMP/pki/ca.crt" 2>/dev/null
}

# tls_flags NAME: the supervisor's client and peer TLS flags with NAME's certificate.
tls_flags() {
        local d=$TMP/pki
        echo --cert-file "$d/$1.crt" --key-file "$d/$1.key" --trusted-ca-file "$d/ca.crt" --client-cert-auth \
                --peer-cert-file "$d/$1.crt" --peer-key-file "$d/$1.key" --peer-trusted-ca-file "$d/ca.crt" \
                --peer-client-cert-auth
}

# start_tls NAME [flags...]: supervisor NAME with https client and peer URLs on free loopback ports.
start_tls() {
        local name=$1 cport pport
        shift
        cport=$(free_port)
        pport=$(free_port)
        echo "https://127.0.0.1:$cport" > "$TMP/$name.url"
        # shellcheck disable=SC2086,SC2046
        start_bg "$name" "$MGMT_BIN/mgmt-supervisor" --hostname "$name" --prefix "$TMP/$name" \
                --client-urls "https://127.0.0.1:$cport" --server-urls "https://127.0.0.1:$pport" \
                $SUP_FLAGS $(tls_flags "$name") "$@"
}

tls_urls() { cat "$TMP"/t*.url | paste -sd, -; }

tctl() {
        etcdctl --endpoints "$(tls_urls)" --cacert "$TMP/pki/ca.crt" --cert "$TMP/pki/client.crt" \
                --key "$TMP/pki/client.key" --dial-timeout 2s --command-timeout 4s "$@"
}

tls_voters_are() {
        local got
        got=$(tctl member list 2>/dev/null) || return 1
        echo "$got"
        [ "$(echo "$got" | awk -F', ' '$2 == "started" && $6 == "false" { print $3 }' | sort | xargs)" = "$1" ] &&
                [ "$(echo "$got" | grep -c .)" -eq "$(echo "$1" | wc -w)" ]
}

@test "net: a TLS cluster of three with client and peer certificates everywhere" {
        make_ca
        for n in t1 t2 t3 client; do
                make_cert "$n" IP:127.0.0.1
        done
        make_cert wrongip IP:127.0.0.2
        start_tls t1
        wait_until 30 tls_voters_are t1
        start_tls t2 --seeds "$(cat "$TMP/t1.url")"
        start_tls t3 --seeds "$(cat "$TMP/t1.url")"
        wait_until 90 tls_voters_are "t1 t2 t3"
        # https everywhere
        ! tctl member list | grep -q 'http://' || false

        local url
        url=$(cat "$TMP/t1.url")
        # with a client certificate: served
        curl -fsS --max-time 5 --cacert "$TMP/pki/ca.crt" --cert "$TMP/pki/client.crt" --key "$TMP/pki/client.key" \
                "$url/health" | grep -q '"health":"true"'
        # without one: refused
        run curl -fsS --max-time 5 --cacert "$TMP/pki/ca.crt" "$url/health"
        [ "$status" -ne 0 ]
        [[ "$output" != *'"health"'* ]]
        run etcdctl --endpoints "$url" --cacert "$TMP/pki/ca.crt" --dial-timeout 2s --command-timeout 4s get /x
        [ "$status" -ne 0 ]
        # plain http: nothing
        run curl -fsS --max-time 5 "http://127.0.0.1:${url##*:}/health"
        [ "$status" -ne 0 ]
        [[ "$output" != *'"health"'* ]]

        # mgmt-deploy and an agent over mutual TLS
        local -a ctls=(--cert-file "$TMP/pki/client.crt" --key-file "$TMP/pki/client.key" --trusted-ca-file "$TMP/pki/ca.crt")
        printf 'graph: tls\nresources:\n  file:\n  - name: hello\n    path: "%s/tls/hello"\n    content: |\n      hello over tls\n    state: exists\nedges: []\n' \
                "$TMP" > "$TMP/tls.yaml"
        run "$MGMT_BIN/mgmt-deploy" --seeds "$(tls_urls)" "${ctls[@]}" yaml "$TMP/tls.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        run "$MGMT_BIN/mgmt-deploy" --seeds "$(tls_urls)" "${ctls[@]}" list
        echo "$output"
        [ "$status" -eq 0 ]
        echo "$output" | grep -qE '^1 '
        # status over mutual TLS asks every member on its own https URL
        run "$MGMT_BIN/mgmt-supervisor" status --json --seeds "$(tls_urls)" "${ctls[@]}"
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(echo "$output" | jq '.healthy_voters')" -ge 1 ]
        [ "$(echo "$output" | jq '.healthy_voters == .voters')" = true ]
        run "$MGMT_BIN/mgmt-supervisor" status --seeds "$(tls_urls)" --trusted-ca-file "$TMP/pki/ca.crt"
        [ "$status" -eq 1 ]
        start_bg agent "$MGMT_BIN/mgmt-agent" --hostname a1 --prefix "$TMP/agent" --seeds "$(tls_urls)" "${ctls[@]}"
        wait_until 30 file_is "$TMP/tls/hello" "hello over tls"
        # the same deploy without a client certificate is refused
        run "$MGMT_BIN/mgmt-deploy" --seeds "$(tls_urls)" --trusted-ca-file "$TMP/pki/ca.crt" --timeout 5 list
        [ "$status" -eq 1 ]

        # a certificate that does not cover the advertised address is refused at start-up
        local d=$TMP/pki
        run timeout 20 "$MGMT_BIN/mgmt-supervisor" --hostname bad --prefix "$TMP/bad" \
                --client-urls "https://127.0.0.1:$(free_port)" --server-urls "https://127.0.0.1:$(free_port)" \
                --seeds "$url" --cert-file "$d/wrongip.crt" --key-file "$d/wrongip.key" --trusted-ca-file "$d/ca.crt" \
                --client-cert-auth --peer-cert-file "$d/t1.crt" --peer-key-file "$d/t1.key" \
                --peer-trusted-ca-file "$d/ca.crt" --peer-client-cert-auth
        echo "$output"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "does not cover 127.0.0.1"
        echo "$output" | grep -q "subjectAltName"
        echo "$output" | grep -q -- "--cert-file"
        # ... and so is a peer certificate
        run timeout 20 "$MGMT_BIN/mgmt-supervisor" --hostname bad --prefix "$TMP/bad" \
                --client-urls "https://127.0.0.1:$(free_port)" --server-urls "https://127.0.0.1:$(free_port)" \
                --seeds "$url" --cert-file "$d/t1.crt" --key-file "$d/t1.key" --trusted-ca-file "$d/ca.crt" \
                --peer-cert-file "$d/wrongip.crt" --peer-key-file "$d/wrongip.key" --peer-trusted-ca-file "$d/ca.crt"
        echo "$output"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q -- "--peer-cert-file.*add IP:127.0.0.1 to its subjectAltName"
        # an unreadable certificate: a clear message too
        run timeout 20 "$MGMT_BIN/mgmt-supervisor" --hostname bad --prefix "$TMP/bad" \
                --client-urls "https://127.0.0.1:$(free_port)" --server-urls "https://127.0.0.1:$(free_port)" \
                --cert-file "$d/missing.crt" --key-file "$d/t1.key" --trusted-ca-file "$d/ca.crt" \
                --peer-cert-file "$d/t1.crt" --peer-key-file "$d/t1.key" --peer-trusted-ca-file "$d/ca.crt"
        echo "$output"
        [ "$status" -eq 1 ]
        echo "$output" | grep -q "missing.crt"
        # the cluster is untouched
        tls_voters_are "t1 t2 t3"
}

has_arg() { tr '\0' '\n' < "/proc/$1/cmdline" | grep -qx -- "$2"; }
has_env() { tr '\0' '\n' < "/proc/$1/environ" | grep -qx -- "$2"; }

@test "net: --etcd-arg and ETCD_* variables reach etcd" {
        export ETCD_SNAPSHOT_COUNT=1234
        start_sup d1 --etcd-arg=--heartbeat-interval=500 --etcd-arg=--election-timeout=5000
        # shellcheck disable=SC2154 # set by start_sup
        wait_until 30 voter_count_is 1 "$URL_d1"
        local pid
        pid=$(etcd_pid_of d1)
        [ -n "$pid" ]
        has_arg "$pid" --heartbeat-interval=500
        has_arg "$pid" --election-timeout=5000
        has_env "$pid" ETCD_SNAPSHOT_COUNT=1234
}

# ns_curl I ARGS...: curl in host I's namespace with host I's client certificate.
ns_curl() {
        local i=$1
        shift
        ip netns exec "$(ns_of "$i")" curl -sS --max-time 5 --cacert "$TMP/pki/ca.crt" \
                --cert "$TMP/pki/h$i.crt" --key "$TMP/pki/h$i.key" "$@"
}

@test "net: etcd auth over mutual TLS in namespaces: hosts exchange exports, each writes only its own keys" {
        net_up 3
        make_ca
        mkdir -m 700 "$TMP/pw"
        (umask 077
                echo root-secret > "$TMP/pw/root"
                echo deploy-secret > "$TMP/pw/deployer"
                for i in 1 2 3; do echo "host-secret-$i" > "$TMP/pw/h$i"; done)
        local i
        # with auth, etcd's gateway refuses client certificates that carry a CN: SANs only
        for i in 1 2 3; do make_cert "h$i" "IP:$(ip_of "$i")" /O=mgmt-test; done
        local seed="https://$(ip_of 1):2379"
        # ... and a certificate with one is refused at start, saying so
        make_cert cn1 "IP:$(ip_of 1)"
        run ip netns exec "$(ns_of 1)" "$MGMT_BIN/mgmt-supervisor" --hostname h1 --prefix "$TMP/cn1" \
                --client-urls https://0.0.0.0:2379 --server-urls https://0.0.0.0:2380 $(tls_flags cn1) \
                --auth --auth-root-password-file "$TMP/pw/root"
        echo "$output"
        [ "$status" -eq 2 ]
        [[ "$output" == *"cn1.crt' (--cert-file) has the subject CN 'cn1'"*"empty subject CN"* ]]
        [ ! -e "$TMP/cn1" ]
        run ip netns exec "$(ns_of 1)" "$MGMT_BIN/mgmt-deploy" --seeds "$seed" --cert-file "$TMP/pki/cn1.crt" \
                --key-file "$TMP/pki/cn1.key" --trusted-ca-file "$TMP/pki/ca.crt" --etcd-user deployer \
                --etcd-password-file "$TMP/pw/deployer" list
        [ "$status" -eq 1 ]
        [[ "$output" == *"has the subject CN 'cn1'"* ]]
        for i in 1 2 3; do
                # shellcheck disable=SC2046
                start_bg "h$i" ip netns exec "$(ns_of "$i")" "$MGMT_BIN/mgmt-supervisor" --hostname "h$i" \
                        --prefix "$TMP/h$i" --client-urls https://0.0.0.0:2379 --server-urls https://0.0.0.0:2380 \
                        $SUP_FLAGS $(tls_flags "h$i") --ideal-cluster-size 3 --auth \
                        --auth-root-password-file "$TMP/pw/root" --auth-host-password-file "$TMP/pw/h$i" \
                        --auth-deployer-password-file "$TMP/pw/deployer" $([ "$i" -gt 1 ] && echo --seeds "$seed")
        done
        wait_until 30 grep -q "etcd auth is enabled" "$TMP/h1.log"
        tvoters() {
                ip netns exec "$(ns_of 1)" etcdctl --endpoints "$seed" --cacert "$TMP/pki/ca.crt" \
                        --cert "$TMP/pki/h1.crt" --key "$TMP/pki/h1.key" --user root:root-secret \
                        --dial-timeout 2s --command-timeout 4s member list |
                        awk -F', ' '$2 == "started" && $6 == "false" { print $3 }' | sort | xargs | grep -qx "h1 h2 h3"
        }
        wait_until 40 tvoters

        # agents over mutual TLS, each as its host's user, exchanging exported files
        local -a letter=(x a b c)
        for i in 1 2 3; do
                start_bg "agent$i" ip netns exec "$(ns_of "$i")" "$MGMT_BIN/mgmt-agent" --hostname "h$i" \
                        --prefix "$TMP/agent$i" --seeds "https://$(ip_of "$i"):2379" \
                        --cert-file "$TMP/pki/h$i.crt" --key-file "$TMP/pki/h$i.key" \
                        --trusted-ca-file "$TMP/pki/ca.crt" --etcd-password-file "$TMP/pw/h$i" \
                        --file "$(seed_graph_on "$i" "${letter[$i]}")"
        done
        for i in 1 2 3; do
                H=${letter[$i]^^}
                for F in A B C; do
                        wait_until 60 file_is "$TMP/h$i/mgmt$H/f$F" "i am f$F, exported from host $F"
                done
        done

        # h1's certificate and password: its own keys only
        local tok
        tok=$(ns_curl 1 -X POST -d '{"name":"host-h1","password":"host-secret-1"}' "$seed/v3/auth/authenticate" | jq -r .token)
        [ -n "$tok" ] && [ "$tok" != null ]
        for key in /_mgmt/status/h2 /_mgmt/exported/h2/resources/file/x /_mgmt/deploy/9/payload /_mgmt/idealClusterSize; do
                run ns_curl 1 -X POST -H "Authorization: $tok" \
                        -d "{\"key\":\"$(printf %s "$key" | base64 -w0)\",\"value\":\"eA==\"}" "$seed/v3/kv/put"
                echo "$key: $output"
                [[ "$output" == *"permission denied"* ]]
        done
        # a client certificate alone (no token) reads nothing
        run ns_curl 1 -X POST -d "{\"key\":\"$(printf /_mgmt/idealClusterSize | base64 -w0)\"}" "$seed/v3/kv/range"
        [[ "$output" == *"user name is empty"* ]]

        # the deployer over mutual TLS from host 2: a deploy replaces the local graphs, --wait sees all three
        printf 'graph: tls\nresources:\n  file:\n  - name: hello\n    path: "%s/tls/${hostname}"\n    content: "hello over tls and auth"\n' \
                "$TMP" > "$TMP/tls.yaml"
        run ip netns exec "$(ns_of 2)" "$MGMT_BIN/mgmt-deploy" --seeds "https://$(ip_of 2):2379" \
                --cert-file "$TMP/pki/h2.crt" --key-file "$TMP/pki/h2.key" --trusted-ca-file "$TMP/pki/ca.crt" \
                --etcd-user deployer --etcd-password-file "$TMP/pw/deployer" --wait --timeout 60 yaml "$TMP/tls.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        for i in 1 2 3; do file_is "$TMP/tls/h$i" "hello over tls and auth"; done
        ! grep -r -e root-secret -e deploy-secret -e host-secret- "$TMP"/*.log
}
