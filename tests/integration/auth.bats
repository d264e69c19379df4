#!/usr/bin/env bats
# auth.bats: least privilege in etcd (--auth) with real supervisors, agents
# and mgmt-deploy: supervisors are root, an agent may write only its own
# host's keys, the deployer only deploys; tokens renew across expiry; the
# cluster still forms, grows, shrinks and replaces members; bad password files.

load sup
load agents

setup() {
        mgmt_setup
        unset MGMT_SEEDS MGMT_ETCD_USER MGMT_ETCD_PASSWORD_FILE MGMT_AUTH MGMT_AUTH_ROOT_PASSWORD_FILE \
                MGMT_AUTH_HOST_PASSWORD_FILE MGMT_AUTH_DEPLOYER_PASSWORD_FILE
        mkdir -m 700 "$TMP/pw"
        (umask 077
                echo root-secret > "$TMP/pw/root"
                echo deploy-secret > "$TMP/pw/deployer"
                for h in h1 h2 h3 h4 h5; do echo "host-secret-$h" > "$TMP/pw/$h"; done)
}

teardown() {
        mgmt_teardown
}

# The flags of an auth supervisor NAME (its host password file is $TMP/pw/NAME).
auth_flags() {
        echo "--auth --auth-root-password-file $TMP/pw/root --auth-host-password-file $TMP/pw/$1"
}

# etcdctl as USER:PASSWORD against every supervisor
actl() { # USER:PASSWORD ARGS...
        local u=$1
        shift
        etcdctl --endpoints "$(all_urls)" --dial-timeout 2s --command-timeout 4s --user "$u" "$@"
}
root_ctl() { actl "root:root-secret" "$@"; }

auth_on() {
        grep -q "etcd auth is enabled" "$TMP/$1.log"
}

root_status_is() { # HOST DEPLOY STATE
        local s
        s=$(root_ctl get --print-value-only "/_mgmt/status/$1")
        [ "$(jq -r .deploy <<< "$s")" = "$2" ] && [ "$(jq -r .state <<< "$s")" = "$3" ]
}

set_ideal_root() {
        root_ctl put /_mgmt/idealClusterSize "$1" > /dev/null
}

# a token of USER from the gateway, as a client would get it
token_of() { # USER PASSWORD
        curl -fsS -X POST -d "{\"name\":\"$1\",\"password\":\"$2\"}" "$URL_h1/v3/auth/authenticate" | jq -r .token
}

# put KEY VALUE through the gateway with TOKEN; prints etcd's answer
gw_put() { # TOKEN KEY VALUE
        curl -sS -X POST -H "Authorization: $1" \
                -d "{\"key\":\"$(printf %s "$2" | base64 -w0)\",\"value\":\"$(printf %s "$3" | base64 -w0)\"}" \
                "$URL_h1/v3/kv/put"
}

@test "auth: an agent writes only its own host's keys, the deployer only deploys; tokens renew on expiry" {
        # a 2 s token: the deploys and status writes below outlive several tokens
        start_sup h1 --ideal-cluster-size 1 $(auth_flags h1) \
                --auth-deployer-password-file "$TMP/pw/deployer" --etcd-arg=--auth-token-ttl=2 \
                --snapshot-interval 3
        wait_until 30 auth_on h1
        ETCD_ENDPOINT=$URL_h1
        start_bg agent-h1 "$MGMT_BIN/mgmt-agent" --hostname h1 --seeds "$URL_h1" \
                --etcd-password-file "$TMP/pw/h1"
        DEP=(--etcd-user deployer --etcd-password-file "$TMP/pw/deployer")

        deploy_graph "$TMP/d1.yaml" one
        run md "${DEP[@]}" --wait --timeout 30 yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-h1/f" "one on h1"
        grep -q "talking to etcd as user 'host-h1'" "$TMP/agent-h1.log"

        # the roles as the supervisor made them
        root_ctl role get host-h1 | tee "$TMP/role"
        grep -q '\[/_mgmt/, /_mgmt0) (prefix /_mgmt/)' "$TMP/role"
        [ "$(sed -n '/KV Write:/,$p' "$TMP/role" | grep -c _mgmt)" -eq 3 ]
        sed -n '/KV Write:/,$p' "$TMP/role" | grep -qx $'\t/_mgmt/status/h1'
        sed -n '/KV Write:/,$p' "$TMP/role" | grep -qx $'\t/_mgmt/converged/h1'
        sed -n '/KV Write:/,$p' "$TMP/role" | grep -q 'prefix /_mgmt/exported/h1/'

        # h1's credentials, through the gateway with its token
        tok=$(token_of host-h1 host-secret-h1)
        [ -n "$tok" ] && [ "$tok" != null ]
        for key in /_mgmt/status/h2 /_mgmt/converged/h2 /_mgmt/exported/h2/resources/file/x \
                /_mgmt/deploy/9/payload /_mgmt/idealClusterSize /_mgmt/nominated/h9 /_mgmt/volunteer/h9 \
                /_mgmt/exported/h1x/resources/file/x /other \
                /_mgmt/status/h10 /_mgmt/converged/h10 /_mgmt/exported/h10/resources/file/x \
                /_mgmt/status/h1/x /_mgmt/status/h1.example.com /_mgmt/exported/h1; do
                run gw_put "$tok" "$key" x
                echo "$key: $output"
                [[ "$output" == *"permission denied"* ]]
        done
        run gw_put "$tok" /_mgmt/exported/h1/resources/file/x '{}'
        [[ "$output" == *'"revision"'* ]]
        root_ctl del /_mgmt/exported/h1/resources/file/x
        # and with etcdctl: the same refusals
        run actl host-h1:host-secret-h1 put /_mgmt/status/h2 x
        [ "$status" -ne 0 ]
        [[ "$output" == *"permission denied"* ]]
        run actl host-h1:host-secret-h1 get /_mgmt/idealClusterSize --print-value-only
        [ "$output" = 1 ]

        # the deployer: deploys, never membership or sizing keys
        tok=$(token_of deployer deploy-secret)
        for key in /_mgmt/idealClusterSize /_mgmt/nominated/h9 /_mgmt/status/h1 /_mgmt/coordinator; do
                run gw_put "$tok" "$key" 5
                echo "$key: $output"
                [[ "$output" == *"permission denied"* ]]
        done
        run actl deployer:deploy-secret del /_mgmt/nominated/h1
        [[ "$output" == *"permission denied"* ]]
        # anonymous: nothing at all
        run etcdctl --endpoints "$URL_h1" put /_mgmt/idealClusterSize 7
        [ "$status" -ne 0 ]
        [ "$(root_ctl get /_mgmt/idealClusterSize --print-value-only)" = 1 ]
        root_ctl get /_mgmt/nominated/h1 --print-value-only | grep -q http://

        # past several token lifetimes: the agent still follows, the deployer still deploys
        sleep 5
        deploy_graph "$TMP/d2.yaml" two
        run md "${DEP[@]}" --wait --timeout 30 yaml "$TMP/d2.yaml"
        echo "$output"
        [ "$status" -eq 0 ]
        file_is "$TMP/out-h1/f" "two on h1"
        sleep 3
        deploy_graph "$TMP/d3.yaml" three
        md "${DEP[@]}" yaml "$TMP/d3.yaml"
        wait_until 20 file_is "$TMP/out-h1/f" "three on h1"
        wait_until 20 root_status_is h1 3 converged
        # renewed quietly: no warning, no error in the agent's log
        grep -q "authenticating again" "$TMP/agent-h1.log"
        ! grep -E ": (warning|error):" "$TMP/agent-h1.log"

        # etcd restarts: every token is gone (simple tokens live in memory); the
        # agent's watches come back with new ones and miss no deploy
        local renewals
        renewals=$(grep -c "etcd: authenticated as 'host-h1'" "$TMP/agent-h1.log")
        kill -KILL "$(etcd_pid_of h1)"
        wait_until 30 etcd_healthy "$URL_h1"
        deploy_graph "$TMP/d4.yaml" four
        md "${DEP[@]}" yaml "$TMP/d4.yaml"
        wait_until 30 file_is "$TMP/out-h1/f" "four on h1"
        wait_until 20 root_status_is h1 4 converged
        # some request (the deploy watch, a keepalive, the status write: whichever
        # comes first) found its token gone and the agent authenticated again
        # (a refused request says "authenticating again"; a watch stream that
        # etcd 3.4 ends with HTTP 500 just drops the token: count the logins)
        [ "$(grep -c "etcd: authenticated as 'host-h1'" "$TMP/agent-h1.log")" -gt "$renewals" ]
        # the supervisor kept its session and coordinator role across expiries
        ! grep -E "mgmt-supervisor: (warning|error):.*(token|user name)" "$TMP/h1.log"
        # the deployer prunes, reads the status table; snapshots are root's
        run md "${DEP[@]}" prune --keep 2
        echo "$output"
        [ "$status" -eq 0 ]
        [ -z "$(root_ctl get /_mgmt/deploy/1/payload --print-value-only)" ]
        run "$MGMT_BIN/mgmt-supervisor" status --seeds "$URL_h1" "${DEP[@]}"
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"h1 "*"member"* ]]
        run "$MGMT_BIN/mgmt-supervisor" snapshot save "$TMP/snap.db" --seeds "$URL_h1" \
                --auth-root-password-file "$TMP/pw/root"
        echo "$output"
        [ "$status" -eq 0 ]
        [ -s "$TMP/snap.db" ]
        run "$MGMT_BIN/mgmt-supervisor" snapshot save "$TMP/snap2.db" --seeds "$URL_h1" "${DEP[@]}"
        [ "$status" -ne 0 ]
        [ ! -e "$TMP/snap2.db" ]
        # scheduled snapshots (a root-only stream) kept going across token expiries and the restart
        wait_until 20 bash -c "etcdctl --endpoints '$URL_h1' --user root:root-secret get /_mgmt/snapshot/h1 --print-value-only | jq -e '.revision > 0'"
        [ "$(ls "$TMP/h1/snapshots/" | grep -c '\.db$')" -ge 2 ]
        # no password in any log
        ! grep -r -e root-secret -e deploy-secret -e host-secret "$TMP"/*.log
}

@test "auth: a cluster running without auth gets it when a supervisor with --auth coordinates; again is a no-op" {
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 voter_count_is 1
        etcdctl --endpoints "$URL_h1" put /_mgmt/keep me > /dev/null
        stop_bg h1
        start_sup h1 $(auth_flags h1)
        wait_until 30 auth_on h1
        [ "$(root_ctl get /_mgmt/keep --print-value-only)" = me ]
        run etcdctl --endpoints "$URL_h1" get /_mgmt/keep
        [ "$status" -ne 0 ]
        # a restart with --auth on an auth-enabled cluster: ensured again, nothing fails
        stop_bg h1
        start_sup h1 $(auth_flags h1)
        wait_until 30 auth_on h1
        wait_until 30 voter_count_is 1
        ! grep -E "mgmt-supervisor: (warning|error):.*auth" "$TMP/h1.log"
        tok=$(token_of host-h1 host-secret-h1)
        [ -n "$tok" ] && [ "$tok" != null ]
        # a changed host password file takes effect at the next start
        (umask 077; echo host-secret-new > "$TMP/pw/h1")
        stop_bg h1
        start_sup h1 $(auth_flags h1)
        wait_until 30 auth_on h1
        wait_until 10 bash -c "curl -fsS -X POST -d '{\"name\":\"host-h1\",\"password\":\"host-secret-new\"}' '$URL_h1/v3/auth/authenticate' | grep -q token"
}

@test "auth: supervisors form 3, grow to 5, shrink to 3 and replace a killed member under auth" {
        start_sup h1 --ideal-cluster-size 3 $(auth_flags h1)
        for h in h2 h3 h4 h5; do start_sup $h --seeds "$URL_h1" $(auth_flags $h); done
        wait_until 60 voter_count_is 3
        wait_until 30 grep -q "etcd auth is enabled" "$TMP"/h*.log
        # every host's user is there, its password the host's file
        wait_until 30 bash -c "etcdctl --endpoints '$URL_h1' --user root:root-secret user list | grep -c '^host-h' | grep -qx 5"
        for h in h1 h2 h3 h4 h5; do
                tok=$(token_of "host-$h" "host-secret-$h")
                [ -n "$tok" ] && [ "$tok" != null ]
        done
        WRITER_AUTH=root:root-secret start_writer
        wait_until 20 acked_at_least 5
        set_ideal_root 5
        wait_until 90 voter_count_is 5
        set_ideal_root 3
        wait_until 60 voter_count_is 3
        victim=$(voters | grep -v h1 | head -1)
        kill_host "$victim"
        # dead-member-grace 4: removed, and a volunteer takes its place
        wait_until 90 bash -c "! etcdctl --endpoints '$URL_h1' member list | grep -q ', $victim,'"
        wait_until 90 voter_count_is 3 "$URL_h1"
        WRITER_AUTH=root:root-secret check_writes
        # auth stayed on throughout
        run etcdctl --endpoints "$URL_h1" put /x y
        [ "$status" -ne 0 ]
}

@test "auth: bad password files and wrong passwords: clear errors, non-zero exit, nothing written" {
        # supervisor: refused before anything is written
        chmod 644 "$TMP/pw/root"
        run "$MGMT_BIN/mgmt-supervisor" --hostname b1 --prefix "$TMP/b1" --auth --auth-root-password-file "$TMP/pw/root"
        echo "$output"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--auth-root-password-file: password file '$TMP/pw/root' is accessible by group or others (mode 0644)"* ]]
        [ ! -e "$TMP/b1" ]
        chmod 600 "$TMP/pw/root"
        run "$MGMT_BIN/mgmt-supervisor" --hostname b1 --prefix "$TMP/b1" --auth
        [ "$status" -eq 2 ]
        [[ "$output" == *"--auth needs --auth-root-password-file"* ]]
        : > "$TMP/pw/empty"
        chmod 600 "$TMP/pw/empty"
        run "$MGMT_BIN/mgmt-supervisor" --hostname b1 --prefix "$TMP/b1" --auth --auth-root-password-file "$TMP/pw/root" \
                --auth-host-password-file "$TMP/pw/empty"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--auth-host-password-file: password file '$TMP/pw/empty' is empty"* ]]
        run "$MGMT_BIN/mgmt-supervisor" --hostname b1 --prefix "$TMP/b1" --auth --auth-root-password-file "$TMP/pw/none"
        [ "$status" -eq 2 ]
        [[ "$output" == *"cannot open password file '$TMP/pw/none': No such file or directory"* ]]
        [ ! -e "$TMP/b1" ]

        start_sup h1 --ideal-cluster-size 1 $(auth_flags h1) --auth-deployer-password-file "$TMP/pw/deployer"
        wait_until 30 auth_on h1
        ETCD_ENDPOINT=$URL_h1
        deploy_graph "$TMP/d1.yaml" one
        # mgmt-deploy: every bad input exits 1 and writes no deploy
        (umask 077; echo wrong > "$TMP/pw/wrong")
        run md --etcd-user deployer --etcd-password-file "$TMP/pw/wrong" yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"etcd at $URL_h1 refused user 'deployer': etcdserver: authentication failed, invalid user ID or password"* ]]
        run md --etcd-user nobody --etcd-password-file "$TMP/pw/deployer" yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"refused user 'nobody'"* ]]
        chmod 640 "$TMP/pw/deployer"
        run md --etcd-user deployer --etcd-password-file "$TMP/pw/deployer" yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"is accessible by group or others (mode 0640)"* ]]
        chmod 600 "$TMP/pw/deployer"
        run md --etcd-user deployer --etcd-password-file "$TMP/pw/empty" yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"is empty"* ]]
        run md --etcd-user deployer yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"--etcd-user 'deployer' needs --etcd-password-file"* ]]
        run md yaml "$TMP/d1.yaml"
        [ "$status" -eq 1 ]
        [[ "$output" == *"has authentication enabled and no etcd user was given"* ]]
        # a host's credentials cannot deploy either
        run md --etcd-user host-h1 --etcd-password-file "$TMP/pw/h1" yaml "$TMP/d1.yaml"
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"permission denied"* ]]
        [ -z "$(root_ctl get --prefix /_mgmt/deploy/ --keys-only)" ]

        # the agent: a bad file exits non-zero at once, having written nothing
        chmod 644 "$TMP/pw/h1"
        run timeout 10 "$MGMT_BIN/mgmt-agent" --hostname h1 --seeds "$URL_h1" --etcd-password-file "$TMP/pw/h1"
        [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
        [[ "$output" == *"password file '$TMP/pw/h1' is accessible by group or others (mode 0644)"* ]]
        chmod 600 "$TMP/pw/h1"
        # a wrong password: the agent says so, naming the user and the endpoint, and writes nothing
        start_bg agent-bad "$MGMT_BIN/mgmt-agent" --hostname h1 --seeds "$URL_h1" --etcd-password-file "$TMP/pw/wrong"
        wait_until 20 grep -q "etcd at $URL_h1 refused user 'host-h1': etcdserver: authentication failed" "$TMP/agent-bad.log"
        [ -z "$(root_ctl get /_mgmt/status/h1 --print-value-only)" ]
        ! grep -q wrong "$TMP/agent-bad.log"

        # a supervisor without the root password is told what it lacks
        start_sup h2 --seeds "$URL_h1"
        wait_until 30 grep -q "supervisors of this cluster need --auth-root-password-file" "$TMP/h2.log"
        [ -z "$(root_ctl get /_mgmt/volunteer/h2 --print-value-only)" ]
}
