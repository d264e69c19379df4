#!/bin/bash
# tls-demo.sh: a three-member cluster on 127.0.0.1 with mutual TLS for clients
# and peers. Makes a CA and one certificate per host with openssl (subjectAltName
# IP:127.0.0.1, extendedKeyUsage serverAuth and clientAuth: the same
# certificate serves etcd and is presented to it), starts three supervisors
# with https URLs, prints the member list, and cleans up on exit or Ctrl-C.
#
#   MGMT_BIN=build examples/tls-demo.sh
#
# For real hosts, put every address and name a host advertises into its
# certificate's subjectAltName; mgmt-supervisor refuses to start otherwise and
# says what to add.
set -euo pipefail

MGMT_BIN=${MGMT_BIN:-build}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mgmt-tls-demo.XXXXXX")
PKI=$WORK/pki
PIDS=()

cleanup() {
        trap - EXIT INT TERM
        echo "cleaning up"
        for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$MGMT_BIN/mgmt-supervisor" ] || { echo "tls-demo.sh: no $MGMT_BIN/mgmt-supervisor (make, or set MGMT_BIN)" >&2; exit 1; }

# --- certificates -----------------------------------------------------------
mkdir -p "$PKI"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj /CN=mgmt-demo-ca -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
cert() { # NAME SAN
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
                -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
        cat > "$PKI/$1.ext" <<EXT
subjectAltName=$2
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
EXT
        openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
                -days 30 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
        echo "certificate $PKI/$1.crt: $2"
}
for n in n1 n2 n3 admin; do
        cert "$n" IP:127.0.0.1
done

# --- the cluster ------------------------------------------------------------
# ports: client 2379+10*i, peer 2380+10*i (n1: 2389/2390, n2: 2399/2400, n3: 2409/2410)
start_node() {
        local i=$1
        shift
        "$MGMT_BIN/mgmt-supervisor" --hostname "n$i" --prefix "$WORK/n$i" \
                --client-urls "https://127.0.0.1:$((2379 + 10 * i))" \
                --server-urls "https://127.0.0.1:$((2380 + 10 * i))" \
                --cert-file "$PKI/n$i.crt" --key-file "$PKI/n$i.key" --trusted-ca-file "$PKI/ca.crt" \
                --client-cert-auth \
                --peer-cert-file "$PKI/n$i.crt" --peer-key-file "$PKI/n$i.key" \
                --peer-trusted-ca-file "$PKI/ca.crt" --peer-client-cert-auth \
                "$@" > "$WORK/n$i.log" 2>&1 &
        PIDS+=($!)
}
ENDPOINTS=https://127.0.0.1:2389,https://127.0.0.1:2399,https://127.0.0.1:2409
ctl() {
        etcdctl --endpoints "$ENDPOINTS" --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
                --dial-timeout 2s "$@"
}

start_node 1
until ctl member list > /dev/null 2>&1; do sleep 0.5; done
start_node 2 --seeds https://127.0.0.1:2389
start_node 3 --seeds https://127.0.0.1:2389
echo "waiting for n2 and n3 to join (up to 2 minutes)"
for _ in $(seq 1 240); do
        n=$(ctl member list 2>/dev/null | awk -F', ' '$2 == "started" && $6 == "false"' | wc -l)
        [ "$n" -eq 3 ] && break
        sleep 0.5
done
ctl member list -w table
echo
echo "a client without a certificate is refused:"
curl -sS --max-time 5 --cacert "$PKI/ca.crt" https://127.0.0.1:2389/health || true
echo
echo "with one:"
curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" https://127.0.0.1:2389/health
echo
echo
echo "deploy over mutual TLS:"
echo "  $MGMT_BIN/mgmt-deploy --seeds $ENDPOINTS --cert-file $PKI/admin.crt --key-file $PKI/admin.key \\"
echo "      --trusted-ca-file $PKI/ca.crt yaml examples/hostname-deploy.yaml"
echo "logs: $WORK/n{1,2,3}.log"
if [ -t 0 ]; then
        read -r -p "press Enter to stop the cluster "
fi
