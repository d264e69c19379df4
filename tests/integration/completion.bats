#!/usr/bin/env bats
# completion.bats: bash completion of mgmt-deploy after a URL argument
# (bash splits words at ':'), and installed man pages naming the PREFIX.

load lib

setup() {
        mgmt_setup
        REPO=$BATS_TEST_DIRNAME/../..
}

teardown() {
        mgmt_teardown
}

# complete LINE: what mgmt-deploy's completion offers at the end of LINE,
# with COMP_WORDS split the way bash splits them (':' a word of its own).
complete_line() {
        bash -c '
                . "$1/scripts/completion/mgmt-deploy"
                COMP_LINE=$2; COMP_POINT=${#2}; COMP_WORDBREAKS=$'"'"' \t\n"\x27><=;|&(:'"'"'
                l=${2//:/ : }; read -ra COMP_WORDS <<< "$l"; [[ $2 == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                _mgmt_deploy
                echo "${COMPREPLY[*]}"' _ "$REPO" "$1"
}

@test "completion: mgmt-deploy subcommands after a --seeds URL with a port" {
        run complete_line "mgmt-deploy --seeds http://127.0.0.1:2379 "
        echo "$output"
        [ "$output" = "yaml validate empty list show status prune keygen help" ]
        run complete_line "mgmt-deploy --seeds http://127.0.0.1:2379,http://10.0.0.2:2379 --wait va"
        [ "$output" = validate ]
        run complete_line "mgmt-deploy --seeds http://h:2379 help st"
        [ "$output" = "status" ]
        # a URL being typed: only the text after the last ':' is replaced
        run complete_line "mgmt-deploy --seeds http:"
        [ "$output" = "//" ]
        run complete_line "mgmt-deploy --seeds htt"
        [ "$output" = "http:// https://" ]
}

@test "make install: man pages name the installed PREFIX, no placeholder left" {
        for p in mgmt-supervisor mgmt-agent mgmt-deploy; do
                [ -x "$MGMT_BIN/$p" ] || { echo "$MGMT_BIN/$p not built"; false; }
        done
        make -s -C "$REPO" -o all install DESTDIR="$TMP/root" PREFIX=/opt/mgmt B="$MGMT_BIN"
        M=$TMP/root/opt/mgmt/share/man
        ! grep -rq '@[A-Z]*@' "$M"
        grep -q '/opt/mgmt/share/mgmt/examples/hostname-deploy.yaml' "$M/man8/mgmt-agent.8"
        grep -q '/opt/mgmt/share/mgmt/examples' "$M/man5/mgmt-graph.5"
        [ -f "$TMP/root/opt/mgmt/share/mgmt/examples/hostname-deploy.yaml" ]
}
