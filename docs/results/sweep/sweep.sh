#!/bin/bash
# Side-by-side learning runs (docs/learning.md, section 4): one `run_one.py` per line of sweep.txt ("name|overrides"),
# each on one thread for MINUTES of wall clock; logs and metrics go to runs/NAME/, a tarball of them to $OUT.
# Usage (repository root, package importable): OUT=/tmp bash docs/results/sweep/sweep.sh [MINUTES]
here=$(dirname "$0")
M=${1:-8}
mkdir -p runs
while IFS='|' read -r name sets; do
  [ -z "$name" ] && continue
  OMP_NUM_THREADS=1 python3 "$here/run_one.py" "$name" "$M" $sets > "runs/$name.log" 2>&1 &
done < "$here/sweep.txt"
wait
tar czf "${OUT:-.}/sweep.tar.gz" runs/*.log runs/*/metrics.jsonl runs/*/summary.json 2>/dev/null
