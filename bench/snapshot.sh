#!/bin/bash
# bench/snapshot.sh: time and peak RSS of `mgmt-supervisor snapshot save`
# against `etcdctl snapshot save` (the floor) on a keyspace of about SIZE_MB
# (default 100), and of `mgmt-supervisor restore` against `etcdctl snapshot
# restore`. One real etcd on free loopback ports in a temp dir.
#   MGMT_BIN=DIR (default build)  SIZE_MB=N  RUNS=N (default 3)
set -eu
cd "$(dirname "$0")/.."
BIN=${MGMT_BIN:-build}
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-3}
T=$(mktemp -d /tmp/mgmt-bench-snap.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
C=http://127.0.0.1:$(port) P=http://127.0.0.1:$(port)
etcd --name b --data-dir "$T/etcd" --listen-client-urls "$C" --advertise-client-urls "$C" \
        --listen-peer-urls "$P" --initial-advertise-peer-urls "$P" --initial-cluster "b=$P" \
        --quota-backend-bytes $((4 << 30)) > "$T/etcd.log" 2>&1 &
EPID=$!
trap 'kill $EPID 2>/dev/null; wait $EPID 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
for _ in $(seq 1 100); do curl -fs "$C/health" >/dev/null 2>&1 && break; sleep 0.1; done
# SIZE_MB of incompressible values, 256 KiB each
head -c $((256 * 1024)) /dev/urandom | base64 -w0 | head -c $((256 * 1024)) > "$T/value"
for i in $(seq 1 $((SIZE_MB * 4))); do
        ETCDCTL_API=3 etcdctl --endpoints "$C" put "/bench/$i" < "$T/value" > /dev/null
done
measure() { # LABEL CMD...: prints "LABEL seconds maxrss_kB"
        local label=$1
        shift
        /usr/bin/time -f "%e %M user=%U sys=%S" -o "$T/time" "$@" > /dev/null 2>&1 || { echo "$label failed"; return; }
        echo "$label $(cat "$T/time")"
}
# a stub etcdutl that accepts every file: our streaming, hashing and fsync alone
mkdir -p "$T/stub"
cat > "$T/stub/etcdutl" <<'STUB'
#!/bin/sh
echo '{"hash":0,"revision":1,"totalKey":1,"totalSize":1}'
STUB
chmod +x "$T/stub/etcdutl"
for r in $(seq 1 "$RUNS"); do
        rm -f "$T/ours.db" "$T/theirs.db"
        measure "mgmt-supervisor-snapshot-save" "$BIN/mgmt-supervisor" snapshot save "$T/ours.db" --seeds "$C"
        measure "etcdctl-snapshot-save" env ETCDCTL_API=3 etcdctl --endpoints "$C" snapshot save "$T/theirs.db"
        measure "etcdctl-snapshot-status(verify-step)" env ETCDCTL_API=3 etcdctl snapshot status "$T/theirs.db"
        measure "curl-gateway-stream-to-null(floor-of-the-gateway)" curl -s -X POST -d '{}' -o /dev/null "$C/v3/maintenance/snapshot"
        rm -f "$T/ours2.db"
        measure "mgmt-supervisor-snapshot-save(stub-verify)" env PATH="$T/stub:$PATH" "$BIN/mgmt-supervisor" \
                snapshot save "$T/ours2.db" --seeds "$C"
        rm -rf "$T/r1" "$T/r2"
        P2=http://127.0.0.1:$(port) C2=http://127.0.0.1:$(port)
        measure "mgmt-supervisor-restore" "$BIN/mgmt-supervisor" restore --from "$T/ours.db" --prefix "$T/r1" \
                --hostname r --client-urls "$C2" --server-urls "$P2"
        measure "etcdctl-snapshot-restore" env ETCDCTL_API=3 etcdctl snapshot restore "$T/theirs.db" \
                --data-dir "$T/r2" --name r --initial-cluster "r=$P2" --initial-advertise-peer-urls "$P2"
done
ls -l "$T/ours.db" "$T/theirs.db" | awk '{ print $5, $9 }'
