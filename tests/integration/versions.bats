#!/usr/bin/env bats
# versions.bats: the suite runs on the etcd it was asked to (scripts/check.sh
# runs it on etcd 3.4, the system's, and 3.5 with MGMT_TEST_ETCD_DIR): every
# etcd a test starts, the supervisors' children included, and etcdctl are
# that one, not whatever else is installed.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

# want_version: "3.5.16", the version of the etcd the tests are meant to run
want_version() {
        "${MGMT_TEST_ETCD_DIR:+$MGMT_TEST_ETCD_DIR/}etcd" --version | sed -n 's/^etcd Version: //p'
}

# server_version URL: the version a running etcd reports over HTTP
server_version() {
        curl -fsS --max-time 2 "$1/version" | jq -er .etcdserver
}

@test "etcd and etcdctl come from MGMT_TEST_ETCD_DIR when it is set, else from PATH" {
        want=$(want_version)
        [ -n "$want" ]
        if [ -n "${MGMT_TEST_ETCD_DIR:-}" ]; then
                [ "$(command -v etcd)" = "$MGMT_TEST_ETCD_DIR/etcd" ]
                if [ -x "$MGMT_TEST_ETCD_DIR/etcdctl" ]; then
                        [ "$(command -v etcdctl)" = "$MGMT_TEST_ETCD_DIR/etcdctl" ]
                fi
        fi
        start_etcd e1
        [ "$(server_version "$ETCD_ENDPOINT")" = "$want" ]
        # etcdctl talks to it (its own version is not checked: the system's
        # etcdctl is used when MGMT_TEST_ETCD_DIR has none)
        ectl put /v x
        [ "$(ectl get /v --print-value-only)" = x ]
}

@test "a supervisor runs the etcd of MGMT_TEST_ETCD_DIR (or PATH) as its child" {
        want=$(want_version)
        start_sup h1 --ideal-cluster-size 1
        wait_until 30 etcd_healthy "$URL_h1"
        [ "$(server_version "$URL_h1")" = "$want" ]
        pid=$(etcd_pid_of h1)
        exe=$(readlink -f "/proc/$pid/exe")
        [ "$exe" = "$(readlink -f "$(command -v etcd)")" ]
}
