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
#
# VARIANTS adds runs beside the grid, one per line as `name|eval run flags`
# (the levers of docs/method.md), e.g.
#   VARIANTS=$'ngd-klate1|--method optimise --optimizer normalized-gd --lambda 1 --k-late 1\n
#   diffedit|--method diffedit'
# They are listed in OUT/table/variants/compare.md (and in all/).
set -euo pipefail
: "${BIN:?}" "${MODEL:?}" "${OUT:?}"
SEED=${SEED:-7001}
COUNT=${COUNT:-21}
JOBS=${JOBS:-2}
OPTIMIZERS=${OPTIMIZERS:-adam adam-kept normalized-gd}
LAMBDAS=${LAMBDAS:-0 0.2 0.4 0.6 0.8 1}
EXTRA=${EXTRA:-}
VARIANTS=${VARIANTS:-}
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
# Calibration rows (no model runs): what the referee makes of the input
# unchanged, the region blanked and the target itself; in every table.
calibration=()
for m in identity blank oracle; do
  RUNS+=("calibration-$m|--method $m --grid 0")
  calibration+=("$OUT/runs/calibration-$m")
done
variant_names=()
while IFS= read -r line; do
  [ -n "$line" ] || continue
  RUNS+=("$line --grid 0")
  variant_names+=("$OUT/runs/${line%%|*}")
done <<< "$VARIANTS"
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
  "$BIN" eval compare --cases "$CASES" --out "$OUT/table/$o" --rows 0 "${rows[@]}" "${calibration[@]}"
done
if [ ${#variant_names[@]} -gt 0 ]; then
  "$BIN" eval compare --cases "$CASES" --out "$OUT/table/variants" --rows 0 "${variant_names[@]}" "${calibration[@]}"
  all+=("${variant_names[@]}")
fi
"$BIN" eval compare --cases "$CASES" --out "$OUT/table/all" --rows 0 "${all[@]}" "${calibration[@]}"
