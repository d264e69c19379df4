#!/usr/bin/env bats
# svc.bats: the svc kind against a real systemd. These machines do not run
# systemd as PID 1, so the test boots one in a container it makes itself:
# systemd-nspawn --boot over a minimal Debian tree made with debootstrap
# from Debian's archive, cached in $MGMT_SVC_TREE (default
# /var/cache/mgmt-test/bookworm-systemd) between runs. Inside, the agent
# (bound in from $MGMT_BIN) manages a real unit: see svc/inside.sh, whose
# checks are reported here one by one. Needs root, systemd-container and
# debootstrap (make deps), and the network the first time.

load lib

# The packages of the shared libraries the agent links (so the tree follows
# the build: a new library means a new tree), comma-joined.
agent_lib_pkgs() {
        ldd "$MGMT_BIN/mgmt-agent" | awk '/=> \// { print $3 }' | xargs -r readlink -f |
                xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | paste -sd, -
}
LIBPKGS=$(agent_lib_pkgs)
TREE=${MGMT_SVC_TREE:-/var/cache/mgmt-test/bookworm-systemd-$(echo "$LIBPKGS" | sha256sum | cut -c1-8)}

setup() {
        mgmt_setup
}

teardown() {
        mgmt_teardown
}

# The cached tree, made once (a partial one is never used: it is built
# aside and renamed).
make_tree() {
        [ -x "$TREE/lib/systemd/systemd" ] && return 0
        mkdir -p "$(dirname "$TREE")"
        rm -rf "$TREE.tmp"
        debootstrap --variant=minbase \
                --include=systemd,systemd-sysv,dbus,procps,$LIBPKGS \
                bookworm "$TREE.tmp" http://deb.debian.org/debian > "$TMP/debootstrap.log" 2>&1 ||
                { tail -20 "$TMP/debootstrap.log"; return 1; }
        mv "$TREE.tmp" "$TREE"
}

@test "svc: the agent manages a real systemd unit (nspawn container): start, enable, drift, notify restart, stop" {
        [ "$(id -u)" -eq 0 ] || { echo "needs root (systemd-nspawn)"; false; }
        command -v systemd-nspawn debootstrap || {
                echo "needs systemd-nspawn and debootstrap: run 'make deps' (systemd-container, debootstrap)"; false; }
        make_tree
        etcd_bin=$(command -v etcd)
        mkdir -p "$TMP/io" "$TMP/etc-systemd/multi-user.target.wants"
        cp "$BATS_TEST_DIRNAME/svc/inside.sh" "$TMP/io/"
        cat > "$TMP/etc-systemd/mgmt-dummy.service" <<'EOF'
[Unit]
Description=mgmt svc test dummy
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
EOF
        cat > "$TMP/etc-systemd/mgmt-svc-test.service" <<'EOF'
[Unit]
Description=mgmt svc test driver
After=dbus.service
Requires=dbus.service
[Service]
Type=oneshot
# the sanitizer build works here; its leak check cannot stop the world in a container
Environment=ASAN_OPTIONS=detect_leaks=0
ExecStart=/io/inside.sh
[Install]
WantedBy=multi-user.target
EOF
        ln -s ../mgmt-svc-test.service "$TMP/etc-systemd/multi-user.target.wants/mgmt-svc-test.service"
        cat > "$TMP/io/g-run.yaml" <<'EOF'
graph: svc-run
resources:
  file:
  - name: conf
    path: /io/conf
    content: "setting=1\n"
  svc:
  - name: mgmt-dummy
    state: running
    startup: enabled
    session: false
edges:
- name: conf-restarts-dummy
  from: {kind: file, name: conf}
  to: {kind: svc, name: mgmt-dummy}
  notify: true
EOF
        printf 'graph: svc-stop\nresources:\n  svc:\n  - name: mgmt-dummy.service\n    state: stopped\n    startup: disabled\n' \
                > "$TMP/io/g-stop.yaml"
        printf 'graph: svc-missing\nresources:\n  svc:\n  - name: mgmt-no-such-unit\n    state: running\n' \
                > "$TMP/io/g-missing.yaml"
        run timeout 300 systemd-nspawn --quiet --register=no --keep-unit --boot --console=pipe -D "$TREE" \
                --machine="mgmt-svc-$$" \
                --bind="$TMP/etc-systemd:/etc/systemd/system" --bind="$TMP/io:/io" \
                --bind-ro="$MGMT_BIN:/mgmt" --bind-ro="$etcd_bin:/usr/local/bin/etcd"
        echo "$output" | tail -20
        echo "--- inside:"
        cat "$TMP/io/results" || true
        for f in inside daemon; do echo "--- $f.log"; tail -30 "$TMP/io/$f.log" 2>/dev/null || true; done
        [ -s "$TMP/io/results" ]
        ! grep -q '^FAIL' "$TMP/io/results"
        grep -qx done "$TMP/io/results"
        # sanitizer reports of the agents that ran inside
        ! grep -l -E 'ERROR: AddressSanitizer|runtime error:' "$TMP"/io/*.log
        [ "$(grep -c '^ok ' "$TMP/io/results")" -eq 16 ]
}
