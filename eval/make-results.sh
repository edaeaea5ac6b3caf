#!/bin/bash
# Regenerates the measurements of docs/results.md (issues 7 and 22): the
# three methods (and DiffEdit with its estimated mask) on the committed cases
# (eval/cases.jsonl) with each of the edit seeds in SEEDS, pooled into one
# row per method; the calibration rows (identity, blank, oracle: no model
# call, so cheap) on the same cases; the lambda sweeps (at the defaults, and
# with the whole image preserved, where lambda trades the edit against the
# input) and the rough-mask rows on its first SUBSET cases (seed 0 only);
# and the picture grids.
#
#   BIN=target/release/optedit MODEL=models/optedit-demo OUT=target/results eval/make-results.sh
#
# Runs JOBS evaluation runs at a time (one edit keeps about one core busy);
# every run resumes, so an interrupted call continues where it stopped.
# OUT/{main,lambda,lambda-whole,masks}/compare.{md,png} are the tables and
# grids.
# The case file holds seven kinds (text, pose, text+pose, edges, scribble,
# layout, multi), so MODEL needs controlnet-pose/, controlnet-canny/,
# controlnet-scribble/ and controlnet-layout/ (models/optedit-demo has them).
set -euo pipefail
: "${BIN:?}" "${MODEL:?}" "${OUT:?}"
CASES=${CASES:-eval/cases.jsonl}
JOBS=${JOBS:-2}
SUBSET=${SUBSET:-63}
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$OUT/runs"
head -n "$SUBSET" "$CASES" > "$OUT/subset.jsonl"
REFS="$OUT/references.json"
# The class references are rendered once and shared by every run.
[ -f "$REFS" ] || "$BIN" eval run --model "$MODEL" --cases "$CASES" --limit 1 --grid 0 \
  --quiet --method sdedit --out "$OUT/runs/references" --references "$REFS" > /dev/null
# The mode in which lambda trades the edit against the input (docs/method.md,
# "Lambda with the edit region preserved too").
WHOLE="--preservation-inside 1 --k-late-outside-mask false"
# name|case file|arguments
RUNS=()
for seed in $SEEDS; do
  RUNS+=(
    "optimise-seed$seed|$CASES|--method optimise --seed $seed --grid 12"
    "diffedit-seed$seed|$CASES|--method diffedit --seed $seed --grid 12"
    "diffedit-estimated-seed$seed|$CASES|--method diffedit --mask-override estimated --seed $seed --grid 12"
    "sdedit-seed$seed|$CASES|--method sdedit --seed $seed --grid 12"
  )
done
RUNS+=(
  "identity|$CASES|--method identity --grid 12"
  "blank|$CASES|--method blank --grid 12"
  "oracle|$CASES|--method oracle --grid 12"
  "lambda-0.0|$OUT/subset.jsonl|--method optimise --lambda 0.0 --grid 6"
  "lambda-0.2|$OUT/subset.jsonl|--method optimise --lambda 0.2 --grid 6"
  "lambda-0.4|$OUT/subset.jsonl|--method optimise --lambda 0.4 --grid 6"
  "lambda-0.8|$OUT/subset.jsonl|--method optimise --lambda 0.8 --grid 6"
  "lambda-1.0|$OUT/subset.jsonl|--method optimise --lambda 1.0 --grid 6"
  "identity-subset|$OUT/subset.jsonl|--method identity --grid 0"
  "blank-subset|$OUT/subset.jsonl|--method blank --grid 0"
  "oracle-subset|$OUT/subset.jsonl|--method oracle --grid 0"
  "lambda-whole-0.0|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 0.0 --grid 6"
  "lambda-whole-0.2|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 0.2 --grid 6"
  "lambda-whole-0.4|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 0.4 --grid 6"
  "lambda-whole-0.6|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 0.6 --grid 6"
  "lambda-whole-0.8|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 0.8 --grid 6"
  "lambda-whole-1.0|$OUT/subset.jsonl|--method optimise $WHOLE --lambda 1.0 --grid 6"
  "optimise-dilate|$OUT/subset.jsonl|--method optimise --mask-override dilate:8 --grid 6"
  "optimise-erode|$OUT/subset.jsonl|--method optimise --mask-override erode:4 --grid 6"
  "optimise-paste-back|$OUT/subset.jsonl|--method optimise --paste-back --grid 6"
  "diffedit-dilate|$OUT/subset.jsonl|--method diffedit --mask-override dilate:8 --grid 6"
  "diffedit-erode|$OUT/subset.jsonl|--method diffedit --mask-override erode:4 --grid 6"
)
run_one() {
  IFS='|' read -r name cases args <<< "$1"
  # shellcheck disable=SC2086
  "$BIN" eval run --model "$MODEL" --cases "$cases" --out "$OUT/runs/$name" --quiet \
    --resume --references "$REFS" $args > "$OUT/runs/$name.log" 2>&1 \
    || { echo "run $name failed: see $OUT/runs/$name.log" >&2; return 1; }
  echo "done: $name"
}
export -f run_one
export BIN MODEL OUT REFS
printf '%s\n' "${RUNS[@]}" | xargs -d '\n' -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

# The subset's rows of the main optimise and DiffEdit runs (lambda 0.6, the
# case's own mask, seed 0, as the subset runs): their finished records,
# summarised again without rerunning.
cut -d'"' -f4 "$OUT/subset.jsonl" > "$OUT/subset.ids"
for m in optimise diffedit; do
  sub="$OUT/runs/$m-subset"
  mkdir -p "$sub/images"
  cp "$OUT/runs/$m-seed0/run.json" "$sub/"
  grep -F -f <(sed 's/.*/"id":"&"/' "$OUT/subset.ids") "$OUT/runs/$m-seed0/cases.jsonl" > "$sub/cases.jsonl"
  cp "$OUT/runs/$m-seed0"/images/*.png "$sub/images/" 2>/dev/null || true
  "$BIN" eval run --model "$MODEL" --cases "$OUT/subset.jsonl" --out "$sub" --quiet \
    --resume --references "$REFS" --method "$m" --seed 0 --grid 6 > /dev/null
done
R="$OUT/runs"
# One row per method pooling its seeds (RUN1,RUN2,... in eval compare), then
# the calibration rows.
pooled() {
  local list="" seed
  for seed in $SEEDS; do list+="${list:+,}$R/$1-seed$seed"; done
  printf '%s' "$list"
}
"$BIN" eval compare --cases "$CASES" --out "$OUT/main" --rows 9 \
  "$(pooled optimise)" "$(pooled diffedit)" "$(pooled diffedit-estimated)" "$(pooled sdedit)" \
  "$R/identity" "$R/blank" "$R/oracle"
"$BIN" eval compare --cases "$OUT/subset.jsonl" --out "$OUT/lambda" --rows 6 \
  "$R/lambda-0.0" "$R/lambda-0.2" "$R/lambda-0.4" "$R/optimise-subset" "$R/lambda-0.8" "$R/lambda-1.0"
"$BIN" eval compare --cases "$OUT/subset.jsonl" --out "$OUT/lambda-whole" --rows 6 \
  "$R"/lambda-whole-{0.0,0.2,0.4,0.6,0.8,1.0} "$R/diffedit-subset" \
  "$R/identity-subset" "$R/blank-subset" "$R/oracle-subset"
"$BIN" eval compare --cases "$OUT/subset.jsonl" --out "$OUT/masks" --rows 6 \
  "$R/optimise-subset" "$R/optimise-dilate" "$R/optimise-erode" "$R/optimise-paste-back" \
  "$R/diffedit-subset" "$R/diffedit-dilate" "$R/diffedit-erode"
