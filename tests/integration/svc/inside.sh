#!/bin/bash
# inside.sh: runs inside a booted systemd container (svc.bats) as the unit
# mgmt-svc-test.service: the agent manages the real unit mgmt-dummy.service
# through the container's systemd over D-Bus. One line per check goes to
# /io/results ("ok NAME" or "FAIL NAME: why"); the container powers off.
exec > /io/inside.log 2>&1
set -x
cd /io
AG=/mgmt/mgmt-agent
R=/io/results
: > "$R"
ok() { echo "ok $1" >> "$R"; }
bad() { echo "FAIL $1: $2" >> "$R"; }
check() { # NAME CMD...: ok if CMD succeeds
        local n=$1
        shift
        if "$@"; then ok "$n"; else bad "$n" "'$*' failed"; fi
}
wait_for() { # SECONDS CMD...
        local t=$(( $1 * 10 ))
        shift
        while [ $t -gt 0 ]; do
                "$@" && return 0
                sleep 0.1
                t=$((t - 1))
        done
        return 1
}
active() { [ "$(systemctl is-active mgmt-dummy)" = active ]; }
inactive() { [ "$(systemctl is-active mgmt-dummy)" = inactive ]; }
mainpid() { systemctl show -p MainPID --value mgmt-dummy; }

# --once: running and enabled, idempotent
check once-run "$AG" --file /io/g-run.yaml --once
check once-active active
check once-enabled test "$(systemctl is-enabled mgmt-dummy)" = enabled
"$AG" --file /io/g-run.yaml --once > /io/once2.log 2>&1
check once-idempotent bash -c '! grep -q "StartUnit\|enabling" /io/once2.log'

# noop: reports, changes nothing
systemctl stop mgmt-dummy
"$AG" --file /io/g-run.yaml --once --noop > /io/noop.log 2>&1
check noop-unchanged inactive
check noop-reported grep -q "noop: svc 'mgmt-dummy.service': would start" /io/noop.log

# the daemon: drift repaired from PropertiesChanged, notify restarts
/usr/local/bin/etcd --data-dir /tmp/etcd --listen-client-urls http://127.0.0.1:2379 \
        --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 > /io/etcd.log 2>&1 &
"$AG" --hostname c --seeds http://127.0.0.1:2379 --file /io/g-run.yaml > /io/daemon.log 2>&1 &
agent=$!
check daemon-started wait_for 30 active
wait_for 10 grep -q "engine: converged" /io/daemon.log
systemctl stop mgmt-dummy
check drift-repaired wait_for 10 active
check drift-from-signal grep -q "properties changed, checking" /io/daemon.log
pid1=$(mainpid)
echo tampered > /io/conf
check notify-restart wait_for 10 bash -c "[ \"\$(systemctl show -p MainPID --value mgmt-dummy)\" != $pid1 ] && [ \"\$(systemctl is-active mgmt-dummy)\" = active ]"
check notify-logged grep -q "RestartUnit" /io/daemon.log
kill "$agent"
wait "$agent"

# stopped and disabled
check once-stop "$AG" --file /io/g-stop.yaml --once
check stopped inactive
check disabled test "$(systemctl is-enabled mgmt-dummy)" = disabled
# a unit that does not exist: a clear error
"$AG" --file /io/g-missing.yaml --once > /io/missing.log 2>&1
check missing-fails test $? -eq 1
check missing-said grep -q "unit not found" /io/missing.log

echo done >> "$R"
systemctl poweroff
