#!/usr/bin/env bats
# Operations (issue 8): man pages match --help, `make install` layout, the
# systemd units verify, the sd_notify protocol of the supervisor against a real
# NOTIFY_SOCKET, and `make demo` in its non-interactive mode.

load lib

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

# Flags in roff text: drop escapes (\- \fB \e) first.
roff_flags() {
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\e//g' | grep -o -- '--[a-z][a-z-]*' | sort -u
}

# check_man PROGRAM PAGE: every flag of --help is in PAGE and every flag in its
# OPTIONS section is in --help.
check_man() {
        local prog=$1 page=$REPO/docs/$2
        [ -f "$page" ] || { echo "missing man page $page"; return 1; }
        "$MGMT_BIN/$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u > "$TMP/help"
        [ -s "$TMP/help" ] || { echo "$prog --help printed no flags"; return 1; }
        roff_flags < "$page" > "$TMP/man"
        awk '/^\.SH +"?OPTIONS/ { on = 1; next } /^\.SH/ { on = 0 } on' "$page" | roff_flags > "$TMP/manopts"
        [ -s "$TMP/manopts" ] || { echo "$page has no OPTIONS section with flags"; return 1; }
        local missing extra
        missing=$(comm -23 "$TMP/help" "$TMP/man")
        extra=$(comm -13 "$TMP/help" "$TMP/manopts")
        [ -z "$missing" ] || echo "in '$prog --help' but not in $2: $missing"
        [ -z "$extra" ] || echo "in the OPTIONS of $2 but not in '$prog --help': $extra"
        [ -z "$missing" ] && [ -z "$extra" ]
}

@test "mgmt-supervisor --help and mgmt-supervisor(8) list the same flags" {
        check_man mgmt-supervisor mgmt-supervisor.8
        # and every flag's environment twin is documented
        for f in $("$MGMT_BIN/mgmt-supervisor" --help | grep -o 'env MGMT_[A-Z_]*' | cut -d' ' -f2); do
                grep -q "$f" "$REPO/docs/mgmt-supervisor.8" || { echo "$f not in the man page"; false; }
        done
}

@test "mgmt-agent --help and mgmt-agent(8) list the same flags" {
        check_man mgmt-agent mgmt-agent.8
}

@test "mgmt-deploy --help and mgmt-deploy(1) list the same flags" {
        check_man mgmt-deploy mgmt-deploy.1
}

# make install without rebuilding: `-o all` keeps make from remaking the
# programs (a sanitizer build in MGMT_BIN stays as it is).
install_tree() {
        for p in mgmt-supervisor mgmt-agent mgmt-deploy; do
                [ -x "$MGMT_BIN/$p" ] || { echo "$MGMT_BIN/$p not built"; return 1; }
        done
        make -s -C "$REPO" -o all install DESTDIR="$TMP/root" PREFIX=/usr B="$MGMT_BIN"
}

@test "make install DESTDIR= PREFIX=/usr lays out binaries, units, man pages, examples, completion" {
        run install_tree
        echo "$output"
        [ "$status" -eq 0 ]
        R=$TMP/root/usr
        for f in sbin/mgmt-supervisor sbin/mgmt-agent bin/mgmt-deploy; do
                [ -x "$R/$f" ] || { echo "missing $f"; false; }
        done
        for f in lib/systemd/system/mgmt-supervisor.service lib/systemd/system/mgmt-agent.service \
                share/man/man8/mgmt-supervisor.8 share/man/man8/mgmt-agent.8 share/man/man1/mgmt-deploy.1 \
                share/man/man5/mgmt-graph.5 \
                share/mgmt/examples/mgmt-seed.env share/mgmt/examples/mgmt-joiner.env \
                share/mgmt/examples/mgmt-client.env share/mgmt/examples/hostname-deploy.yaml \
                share/bash-completion/completions/mgmt-supervisor \
                share/bash-completion/completions/mgmt-agent \
                share/bash-completion/completions/mgmt-deploy; do
                [ -f "$R/$f" ] || { echo "missing $f"; false; }
        done
        # units point at the installed programs, no placeholder left
        grep -qx 'ExecStart=/usr/sbin/mgmt-supervisor' "$R/lib/systemd/system/mgmt-supervisor.service"
        grep -qx 'ExecStart=/usr/sbin/mgmt-agent' "$R/lib/systemd/system/mgmt-agent.service"
        ! grep -q '@[A-Z]*DIR@' "$R"/lib/systemd/system/*.service
        # the installed programs run
        "$R/sbin/mgmt-supervisor" --version | grep -q '^mgmt-supervisor '
        # completion scripts load and register
        run bash -c 'for f in "$1"/*; do . "$f"; done; complete -p mgmt-supervisor mgmt-agent mgmt-deploy' _ \
                "$R/share/bash-completion/completions"
        [ "$status" -eq 0 ]
        [ "$(echo "$output" | grep -c '^complete -F')" -eq 3 ]
}

@test "the installed units pass systemd-analyze verify" {
        command -v systemd-analyze || { echo "systemd-analyze not installed: run 'make deps' (package systemd)"; false; }
        install_tree
        R=$TMP/root/usr
        # verify checks that ExecStart= exists: point it at the DESTDIR copy,
        # and let Documentation=man: find the installed pages
        mkdir -p "$TMP/units"
        for f in "$R"/lib/systemd/system/*.service; do
                sed "s|=/usr/sbin/|=$R/sbin/|; s|=/usr/bin/|=$R/bin/|" "$f" > "$TMP/units/$(basename "$f")"
        done
        # Documentation=man: pages are checked when man(1) is there to look them up
        man=no
        command -v man >/dev/null && man=yes
        run env MANPATH="$R/share/man" systemd-analyze verify --man="$man" "$TMP"/units/mgmt-supervisor.service \
                "$TMP"/units/mgmt-agent.service
        echo "$output"
        [ "$status" -eq 0 ]
        # warnings (unknown keys, bad values) count as failures too
        [ -z "$output" ]
        # the contract of the supervisor unit
        u=$R/lib/systemd/system/mgmt-supervisor.service
        for kv in Type=notify NotifyAccess=main Restart=on-failure KillMode=mixed StateDirectory=mgmt \
                EnvironmentFile=-/etc/default/mgmt NoNewPrivileges=yes ProtectSystem=strict; do
                grep -qx "$kv" "$u" || { echo "no $kv in $u"; false; }
        done
        # TimeoutStopSec above the supervisor's own --stop-timeout default (15 s)
        stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s*$/\1/p' "$u")
        [ "${stop:-0}" -gt 15 ]
        grep -qx Type=notify "$R/lib/systemd/system/mgmt-agent.service"
}

# A NOTIFY_SOCKET listener: appends "<sender pid> <line>" for every line of
# every datagram to $TMP/notify.log (the sender's pid from SCM_CREDENTIALS, so
# the etcd child's own messages can be told apart).
start_notify_listener() {
        start_bg notify python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = 0
    for lvl, typ, data in anc:
        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    for line in msg.decode(errors="replace").splitlines():
        out.write("%d %s\n" % (pid, line))
' "$TMP/notify" "$TMP/notify.log"
        wait_until 10 test -S "$TMP/notify"
}

# sup_msgs PATTERN: count of lines from the supervisor matching PATTERN
sup_msgs() {
        awk -v pid="$SUP_PID" '$1 == pid' "$TMP/notify.log" | grep -c -- "$1"
}
sup_sent() { [ "$(sup_msgs "$1")" -ge "${2:-1}" ]; }

@test "sd_notify: READY, STATUS, periodic WATCHDOG; a stopped loop stops the watchdog" {
        command -v python3 || { echo "python3 not installed: run 'make deps'"; false; }
        : > "$TMP/notify.log"
        start_notify_listener
        cport=$(free_port)
        pport=$(free_port)
        start_bg sup env -u WATCHDOG_PID NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=1000000 \
                "$MGMT_BIN/mgmt-supervisor" --hostname n1 --prefix "$TMP/p" --ideal-cluster-size 1 \
                --client-urls "http://127.0.0.1:$cport" --server-urls "http://127.0.0.1:$pport"
        SUP_PID=$(cat "$TMP/sup.pid")
        wait_until 30 sup_sent '^[0-9]* READY=1$'
        wait_until 10 sup_sent '^[0-9]* STATUS=.'
        # the status names the role and the sizes
        awk -v pid="$SUP_PID" '$1 == pid' "$TMP/notify.log" | grep 'STATUS=' | tail -n 1 |
                grep -E 'member.*ideal 1'
        # WATCHDOG=1 about every 0.5 s with WATCHDOG_USEC=1 s
        n0=$(sup_msgs '^[0-9]* WATCHDOG=1$')
        sleep 2
        n1=$(sup_msgs '^[0-9]* WATCHDOG=1$')
        echo "watchdog pings in 2 s: $((n1 - n0))"
        [ $((n1 - n0)) -ge 2 ]
        # a hung loop (SIGSTOP) sends no more pings: systemd would restart it
        kill -STOP "$SUP_PID"
        sleep 1 # pings sent before the stop reach the listener's log
        n2=$(sup_msgs '^[0-9]* WATCHDOG=1$')
        sleep 3
        n3=$(sup_msgs '^[0-9]* WATCHDOG=1$')
        kill -CONT "$SUP_PID"
        echo "watchdog pings while stopped: $((n3 - n2))"
        [ "$n3" -eq "$n2" ]
        # and they resume
        wait_until 5 sup_sent '^[0-9]* WATCHDOG=1$' $((n3 + 1))
        # only the supervisor itself talks to systemd (NotifyAccess=main would
        # drop and log anything its etcd child sent)
        others=$(awk -v pid="$SUP_PID" '$1 != pid' "$TMP/notify.log")
        echo "notifications from other processes: $others"
        [ -z "$others" ]
        # an orderly stop says STOPPING=1
        stop_bg sup
        sup_sent '^[0-9]* STOPPING=1$'
}

@test "sd_notify: STATUS says the supervisor waits for unreachable seeds, then its role once connected" {
        : > "$TMP/notify.log"
        start_notify_listener
        seed_c=$(free_port)
        seed_p=$(free_port)
        cport=$(free_port)
        pport=$(free_port)
        start_bg sup env NOTIFY_SOCKET="$TMP/notify" "$MGMT_BIN/mgmt-supervisor" --hostname n2 --prefix "$TMP/p2" \
                --seeds "http://127.0.0.1:$seed_c" --client-urls "http://127.0.0.1:$cport" \
                --server-urls "http://127.0.0.1:$pport"
        SUP_PID=$(cat "$TMP/sup.pid")
        wait_until 20 sup_sent "^[0-9]* STATUS=waiting for etcd at http://127.0.0.1:$seed_c: "
        ! sup_sent '^[0-9]* READY=1$'
        # the seed comes up: the status turns to the role and READY follows
        start_bg seed "$MGMT_BIN/mgmt-supervisor" --hostname n1 --prefix "$TMP/p1" --ideal-cluster-size 1 \
                --client-urls "http://127.0.0.1:$seed_c" --server-urls "http://127.0.0.1:$seed_p"
        wait_until 60 sup_sent '^[0-9]* READY=1$'
        awk -v pid="$SUP_PID" '$1 == pid' "$TMP/notify.log" | grep 'STATUS=' | tail -n 1 | grep -E 'STATUS=volunteer'
}

@test "agent sd_notify: READY even when its first deploy is invalid, STATUS with deploy id and state" {
        : > "$TMP/notify.log"
        start_notify_listener
        start_etcd etcd
        # deploy 1: a well-formed record whose graph is invalid (mgmt-deploy would refuse it)
        printf 'graph: bad\nresources:\n  file:\n  - name: f\n    state: exists\n' > "$TMP/bad.yaml"
        hash=$(sha256sum < "$TMP/bad.yaml" | cut -d' ' -f1)
        payload=$(jq -cn --arg hash "$hash" --rawfile g "$TMP/bad.yaml" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
                '{id: 1, hash: $hash, previous: null, graph: $g, time: $t}')
        ectl put /_mgmt/deploy/1/payload "$payload" > /dev/null
        ectl put /_mgmt/deploy/1/hash "$hash" > /dev/null
        start_bg agent env NOTIFY_SOCKET="$TMP/notify" "$MGMT_BIN/mgmt-agent" --hostname a1 --seeds "$ETCD_ENDPOINT"
        SUP_PID=$(cat "$TMP/agent.pid")
        # systemd's start job must end: READY=1 although nothing could be applied
        wait_until 20 sup_sent '^[0-9]* READY=1$'
        wait_until 10 sup_sent '^[0-9]* STATUS=deploy 1 failed'
        # a good deploy follows: STATUS says so
        printf 'graph: good\nresources:\n  noop:\n  - name: n\n' > "$TMP/good.yaml"
        run "$MGMT_BIN/mgmt-deploy" --seeds "$ETCD_ENDPOINT" --wait --timeout 30 yaml "$TMP/good.yaml"
        [ "$status" -eq 0 ]
        wait_until 10 sup_sent '^[0-9]* STATUS=.*deploy 2.*converged'
        [ "$(sup_msgs '^[0-9]* READY=1$')" -eq 1 ]
}

@test "make demo (DEMO_ONCE=1): 3 members, a coordinator, every host converged" {
        run env DEMO_ONCE=1 MGMT_BIN="$MGMT_BIN" TMPDIR="$TMP" "$REPO/scripts/demo.sh"
        echo "$output"
        [ "$status" -eq 0 ]
        # the table of `mgmt-supervisor status`: three member rows (name, role, 16-hex id), a coordinator
        [ "$(echo "$output" | grep -cE '^h[1-4] +member +[0-9a-f]{1,16} ')" -eq 3 ]
        echo "$output" | grep -E '^cluster .*voters 3 .*coordinator h[1-4]$'
        # one row per host, converged on deploy 1 or later
        for h in h1 h2 h3 h4; do
                echo "$output" | grep -E "^$h +(member|volunteer) .* [0-9]+ +converged " || { echo "no row for $h"; false; }
        done
        # it cleaned up: nothing it started is left
        dir=$(echo "$output" | sed -n 's/^demo: temp dir \([^;]*\);.*/\1/p')
        [ -n "$dir" ]
        [ ! -e "$dir" ]
        ! pgrep -f -- "--prefix $dir/" >/dev/null
}
