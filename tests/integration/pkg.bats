#!/usr/bin/env bats
# pkg.bats: the pkg kind against the real dpkg and apt-get of this machine
# (the tests run as root), with small packages built here with dpkg-deb and
# served from a local apt repository in $TMP (APT_CONFIG points apt at it
# and only at it: the system's lists and caches are not touched). Every test
# purges its packages, whatever happens.

load lib

P1=mgmt-agent-testpkg-a
P2=mgmt-agent-testpkg-b

setup() {
        mgmt_setup
        AGENT=$MGMT_BIN/mgmt-agent
        # not skipped (a skip would count as passed): these tests need root
        [ "$(id -u)" -eq 0 ] || { echo "pkg tests need root (dpkg and apt-get change the system)"; return 1; }
        command -v dpkg-deb apt-get > /dev/null || { echo "pkg tests need dpkg-deb and apt-get"; return 1; }
        purge_test_packages
        mkdir -p "$TMP/repo" "$TMP/state/lists/partial" "$TMP/cache/archives/partial"
        cat > "$TMP/apt.conf" <<EOF
Dir::Etc::SourceList "$TMP/sources.list";
Dir::Etc::SourceParts "$TMP/nonexistent";
Dir::State "$TMP/state";
Dir::Cache "$TMP/cache";
Debug::NoLocking "false";
EOF
        echo "deb [trusted=yes] file:$TMP/repo ./" > "$TMP/sources.list"
        export APT_CONFIG=$TMP/apt.conf
}

teardown() {
        # agents first (an apt-get they run ends with them), then the packages
        local pid
        if [ -f "${TMP:-/nonexistent}/.pids" ]; then
                while read -r pid; do
                        kill -TERM "$pid" 2>/dev/null || true
                done < "$TMP/.pids"
        fi
        purge_test_packages
        mgmt_teardown
}

# purge, waiting for dpkg's lock (an apt-get may be finishing)
purge_test_packages() {
        local i
        for i in $(seq 1 100); do
                dpkg --purge "$P1" "$P2" > /dev/null 2>&1 && break
                sleep 0.2
        done
        dpkg --configure -a > /dev/null 2>&1 || true
        dpkg --purge "$P1" "$P2" > /dev/null 2>&1 || true
}

# build_pkg NAME VERSION: a tiny package into the repository.
build_pkg() {
        local d=$TMP/build-$1-$2
        mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$1"
        printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: mgmt tests <t@example.invalid>\nDescription: mgmt-agent test package\n' \
                "$1" "$2" > "$d/DEBIAN/control"
        echo "$1 $2" > "$d/usr/share/doc/$1/version"
        dpkg-deb --root-owner-group -Zgzip --build "$d" "$TMP/repo/$1_$2_all.deb" > /dev/null
}

# index_repo: the Packages file, written the way dpkg-scanpackages would.
index_repo() {
        local f
        : > "$TMP/repo/Packages"
        for f in "$TMP"/repo/*.deb; do
                { dpkg-deb -f "$f"
                  echo "Filename: ./$(basename "$f")"
                  echo "Size: $(stat -c %s "$f")"
                  echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"
                  echo; } >> "$TMP/repo/Packages"
        done
        apt-get update -q > "$TMP/apt-update.log" 2>&1
}

installed_version() { # NAME: the installed version, or nothing
        dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'
}

is_installed() { [ -n "$(installed_version "$1")" ]; }
is_absent() { [ -z "$(installed_version "$1")" ]; }

pkg_graph() { # FILE STATE [NAMES...]
        local f=$1 st=$2 n
        shift 2
        { printf 'graph: pkgs\nresources:\n  pkg:\n'
          for n in "$@"; do printf '  - name: %s\n    state: %s\n' "$n" "$st"; done; } > "$f"
}

@test "pkg: installed from apt, idempotent, then uninstalled; one apt-get at a time" {
        build_pkg "$P1" 1.0
        build_pkg "$P2" 1.0
        index_repo
        pkg_graph "$TMP/g.yaml" installed "$P1" "$P2"
        run "$AGENT" --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(installed_version "$P1")" = 1.0 ]
        [ "$(installed_version "$P2")" = 1.0 ]
        # serialized: the second apt-get starts after the first one ended
        a_end=$(grep -n "exec 'pkg\[$P1\]': cmd exited 0" <<< "$output" | cut -d: -f1)
        b_start=$(grep -n "pkg\[$P2\]: installing" <<< "$output" | cut -d: -f1)
        [ -n "$a_end" ] && [ -n "$b_start" ] && [ "$b_start" -gt "$a_end" ]
        # apt-get's output is in the log, line by line
        [[ "$output" == *"exec 'pkg[$P1]': "*"Setting up $P1 (1.0)"* ]]
        run "$AGENT" --file "$TMP/g.yaml" --once
        [ "$status" -eq 0 ]
        [[ "$output" != *installing* ]]
        # a dry run says what it would do and does nothing
        pkg_graph "$TMP/u.yaml" uninstalled "$P1" "$P2"
        run "$AGENT" --file "$TMP/u.yaml" --once --noop
        [ "$status" -eq 0 ]
        [[ "$output" == *"noop: pkg '$P1': would remove it"* ]]
        is_installed "$P1"
        run "$AGENT" --file "$TMP/u.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        is_absent "$P1"
        is_absent "$P2"
}

@test "pkg: removed by hand, the agent installs it again; installed by hand, it removes it" {
        build_pkg "$P1" 1.0
        index_repo
        start_etcd etcd
        pkg_graph "$TMP/g.yaml" installed "$P1"
        start_bg agent "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$TMP/g.yaml"
        wait_until 60 is_installed "$P1"
        wait_until 10 grep -q "engine: converged" "$TMP/agent.log"
        wait_until 30 dpkg -r "$P1"
        is_absent "$P1"
        # noticed from dpkg's status file (inotify), not a timer
        wait_until 60 is_installed "$P1"
        grep -q "dpkg status changed\|pkg\[$P1\]: installing" "$TMP/agent.log"
        stop_bg agent

        pkg_graph "$TMP/u.yaml" uninstalled "$P1"
        start_bg agent2 "$AGENT" --hostname ha --seeds "$ETCD_ENDPOINT" --file "$TMP/u.yaml"
        wait_until 60 is_absent "$P1"
        # (the agent's apt-get may still hold dpkg's lock for a moment)
        wait_until 30 dpkg -i "$TMP/repo/${P1}_1.0_all.deb"
        wait_until 60 is_absent "$P1"
        [ "$(grep -c "pkg\[$P1\]: removing" "$TMP/agent2.log")" -ge 2 ]
}

@test "pkg: newest upgrades when apt has a newer version, not otherwise" {
        build_pkg "$P1" 1.0
        dpkg -i "$TMP/repo/${P1}_1.0_all.deb" > /dev/null
        mv "$TMP/repo/${P1}_1.0_all.deb" "$TMP/"
        build_pkg "$P1" 2.0
        index_repo
        pkg_graph "$TMP/g.yaml" newest "$P1"
        run "$AGENT" --file "$TMP/g.yaml" --once --noop
        [ "$status" -eq 0 ]
        [ "$(installed_version "$P1")" = 1.0 ]
        [[ "$output" == *"would run cmd"* ]]
        run "$AGENT" --file "$TMP/g.yaml" --once
        echo "$output"
        [ "$status" -eq 0 ]
        [ "$(installed_version "$P1")" = 2.0 ]
        run "$AGENT" --file "$TMP/g.yaml" --once
        [ "$status" -eq 0 ]
        [[ "$output" == *"ifcmd exited non-zero, not running cmd"* ]]
        # a package apt does not know fails, with apt's words in the log
        pkg_graph "$TMP/n.yaml" installed mgmt-agent-no-such-pkg
        run "$AGENT" --file "$TMP/n.yaml" --once
        echo "$output"
        [ "$status" -eq 1 ]
        [[ "$output" == *"Unable to locate package mgmt-agent-no-such-pkg"* ]]
}
