#!/usr/bin/env bash
# The suite's stability proof: one clean clone of a commit runs `make test` (what `.ci/run` runs) again and
# again, and the loop stops at the first red run. Each run's exit code, wall time and pytest summary go
# to runs.log; each run's whole output to runN.log beside it.
#
#   scripts/stability-loop.sh [RUNS=20] [COMMIT=HEAD] [DIR=/tmp/sapien-stability]
#
# It takes the machine for RUNS times the suite's length (8 to 10 minutes a run on 2 cores).
set -uo pipefail

runs=${1:-20}
commit=$(git -C "$(dirname "$0")/.." rev-parse "${2:-HEAD}") || exit 2
dir=${3:-/tmp/sapien-stability}
source=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)

mkdir -p "$dir"
if [ ! -d "$dir/clone" ]; then
  git clone --quiet "$source" "$dir/clone" || exit 2
fi
git -C "$dir/clone" fetch --quiet "$source" || exit 2  # a clone kept from an earlier loop may not have the commit
git -C "$dir/clone" checkout --quiet "$commit" || exit 2

for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  (cd "$dir/clone" && make test) > "$dir/run$run.log" 2>&1
  status=$?
  summary=$(grep -E "^=+ .*(passed|failed|error).* =+$" "$dir/run$run.log" | tail -1)
  echo "run $run commit ${commit:0:7} rc $status secs $(( $(date +%s) - started )) ended $(date -u +%H:%M) $summary" | tee -a "$dir/runs.log"
  if [ "$status" -ne 0 ]; then
    echo "run $run failed: $dir/run$run.log" | tee -a "$dir/runs.log"
    exit 1
  fi
done
echo "$runs runs of ${commit:0:7} in a row, every one green" | tee -a "$dir/runs.log"
