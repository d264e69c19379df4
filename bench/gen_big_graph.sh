#!/bin/bash
# bench/gen_big_graph.sh DIR NFILE NEXEC NPKG: a graph of NFILE files under DIR/out,
# NEXEC execs whose ifcmd says "done" once their file exists, and NPKG pkg
# resources naming packages installed here (converges with nothing to do).
# Used for the re-check measurement in the issue-19 report.
d=$1; nf=$2; ne=$3; np=$4
echo "graph: big"
echo "resources:"
echo "  file:"
for i in $(seq 1 $nf); do printf '  - name: f%d\n    path: %s/out/d%d/f%d\n    content: "file %d\\n"\n    mode: "0644"\n' $i "$d" $((i % 20)) $i $i; done
echo "  exec:"
for i in $(seq 1 $ne); do printf '  - name: e%d\n    cmd: "echo %d >> %s/out/exec-ran"\n    ifcmd: "test ! -e %s/out/d%d/f%d"\n' $i $i "$d" "$d" $((i % 20)) $i; done
echo "  pkg:"
dpkg-query -W -f='${Package}\n' | head -n $np | while read -r p; do printf '  - name: %s\n    state: installed\n' "$p"; done
