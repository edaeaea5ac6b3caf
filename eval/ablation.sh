#!/bin/bash
# Issue 23's optimiser ablation: each latent optimiser (OPTIMIZERS) with a
# lambda sweep (LAMBDAS), on TUNING cases drawn with their own seed (SEED,
# never used for a reported table), so that nothing is tuned on the
# committed cases of docs/results.md.
#
#   BIN=target/release/optedit MODEL=models/optedit-demo OUT=target/ablation eval/ablation.sh
#
# COUNT cases cycle through the seven kinds (21: three of each). Runs JOBS
# evaluation runs at a time; every run resumes, so an interrupted call
# continues where it stopped. OUT/table/<optimizer>/compare.md holds one
# optimiser's lambda rows (lambda 0 first), OUT/table/all/compare.md every
# row.
set -euo pipefail
: "${BIN:?}" "${MODEL:?}" "${OUT:?}"
SEED=${SEED:-7001}
COUNT=${COUNT:-21}
JOBS=${JOBS:-2}
OPTIMIZERS=${OPTIMIZERS:-adam adam-kept normalized-gd}
LAMBDAS=${LAMBDAS:-0 0.2 0.4 0.6 0.8 1}
EXTRA=${EXTRA:-}
mkdir -p "$OUT/runs"
CASES="$OUT/tuning-seed$SEED.jsonl"
[ -f "$CASES" ] || "$BIN" eval make-cases --out "$CASES" --count "$COUNT" --seed "$SEED" --quiet
REFS="$OUT/references.json"
[ -f "$REFS" ] || "$BIN" eval run --model "$MODEL" --cases "$CASES" --limit 1 --grid 0 \
  --quiet --method sdedit --out "$OUT/runs/references" --references "$REFS" > /dev/null
RUNS=()
for o in $OPTIMIZERS; do
  for l in $LAMBDAS; do
    RUNS+=("$o-lambda$l|--method optimise --optimizer $o --lambda $l --grid 4 $EXTRA")
  done
done
run_one() {
  IFS='|' read -r name args <<< "$1"
  # shellcheck disable=SC2086
  "$BIN" eval run --model "$MODEL" --cases "$CASES" --out "$OUT/runs/$name" --quiet \
    --resume --references "$REFS" $args > "$OUT/runs/$name.log" 2>&1 \
    || { echo "run $name failed: see $OUT/runs/$name.log" >&2; return 1; }
  echo "done: $name"
}
export -f run_one
export BIN MODEL OUT REFS CASES
printf '%s\n' "${RUNS[@]}" | xargs -d '\n' -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
all=()
for o in $OPTIMIZERS; do
  rows=()
  for l in $LAMBDAS; do rows+=("$OUT/runs/$o-lambda$l"); done
  all+=("${rows[@]}")
  "$BIN" eval compare --cases "$CASES" --out "$OUT/table/$o" --rows 0 "${rows[@]}"
done
"$BIN" eval compare --cases "$CASES" --out "$OUT/table/all" --rows 0 "${all[@]}"
