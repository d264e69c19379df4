#!/usr/bin/env bats
# Chaos: five supervisors on loopback, a writer, and for CHAOS_SECONDS (40 in
# make check, 240 with `make chaos`) random faults: power loss of one host
# (supervisor and etcd SIGKILLed, back a few seconds later), etcd crashes,
# supervisor restarts, and resizes among 1..5. At most one host is down at a
# time, so every quorum loss would be our own doing. After the last fault the
# cluster must reach the ideal size within 30 s, with every acknowledged
# write readable. Only processes this test started are signalled (by PID).
# CHAOS_SEED replays a run; the schedule is printed on failure.

load sup

setup() { mgmt_setup; }
teardown() { mgmt_teardown; }

restart_host() {
        if [ "$1" = h1 ]; then start_sup h1 --ideal-cluster-size 3; else start_sup "$1" --seeds "$URL_h1"; fi
}

alive() { kill -0 "$(cat "$TMP/$1.pid")" 2>/dev/null; }

@test "chaos: kills, crashes, restarts and resizes among 1..5; reconverges to the last size asked for, no acknowledged write lost" {
        local seconds=${CHAOS_SECONDS:-40} seed=${CHAOS_SEED:-$RANDOM}
        RANDOM=$seed
        echo "chaos seed $seed, $seconds s" | tee "$TMP/chaos.log"
        start_sup h1 --ideal-cluster-size 3
        for h in h2 h3 h4 h5; do start_sup $h --seeds "$URL_h1"; done
        wait_until 90 voter_count_is 3
        start_writer
        local ideal=3 down="" end=$(( $(date +%s) + seconds ))
        while [ "$(date +%s)" -lt "$end" ]; do
                h=h$(( RANDOM % 5 + 1 ))
                case $(( RANDOM % 4 )) in
                0)
                        ideal=$(( RANDOM % 5 + 1 ))
                        echo "$(date +%T) resize to $ideal" >> "$TMP/chaos.log"
                        set_ideal "$ideal" || echo "  (resize not written: no quorum)" >> "$TMP/chaos.log"
                        ;;
                1)
                        if [ -z "$down" ]; then
                                echo "$(date +%T) power loss of $h" >> "$TMP/chaos.log"
                                kill_host "$h"
                                down=$h
                        fi
                        ;;
                2)
                        if alive "$h" && p=$(etcd_pid_of "$h"); then
                                echo "$(date +%T) etcd of $h crashes" >> "$TMP/chaos.log"
                                kill -KILL "$p"
                        fi
                        ;;
                3)
                        if [ -z "$down" ] && alive "$h"; then
                                echo "$(date +%T) $h restarts (SIGTERM)" >> "$TMP/chaos.log"
                                stop_bg "$h" TERM
                                restart_host "$h"
                        fi
                        ;;
                esac
                sleep $(( RANDOM % 4 + 2 ))
                if [ -n "$down" ] && [ $(( RANDOM % 2 )) -eq 0 ]; then
                        echo "$(date +%T) $down is back" >> "$TMP/chaos.log"
                        restart_host "$down"
                        down=""
                fi
        done
        if [ -n "$down" ]; then
                echo "$(date +%T) $down is back" >> "$TMP/chaos.log"
                restart_host "$down"
        fi
        echo "$(date +%T) last fault; ideal $ideal" >> "$TMP/chaos.log"
        cat "$TMP/chaos.log"
        # the size an operator last asked for (a resize lost to a fault is re-put)
        until set_ideal "$ideal"; do sleep 0.5; done
        # from a cluster of 1 to 5 is four nominations in a row, each of them
        # retried after --nominate-timeout if its host was just restarted
        local t0=$SECONDS
        wait_until 120 voter_count_is "$ideal"
        echo "$ideal voters after $((SECONDS - t0)) s"
        check_writes
        ! grep -h "invariant\|moved aside the data of member" "$TMP"/h*.log
}
