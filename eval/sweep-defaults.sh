#!/bin/bash
# The measurement behind EditConfig's defaults for t_u, k and lr (issue 5;
# docs/method.md "Defaults"). Runs `optedit eval run --method optimise` on a
# tuning case file drawn apart from the committed results cases
# (eval/cases.jsonl, seed 0), once per setting, one-at-a-time around the
# provisional defaults, JOBS settings at a time (one edit keeps about one
# core busy), and prints one markdown table.
#
#   BIN=target/release/optedit MODEL=models/optedit-demo OUT=target/sweep eval/sweep-defaults.sh
set -euo pipefail
: "${BIN:?}" "${MODEL:?}" "${OUT:?}"
JOBS=${JOBS:-2}
COUNT=${COUNT:-36}
mkdir -p "$OUT"
CASES="$OUT/tune-cases.jsonl"
[ -f "$CASES" ] || "$BIN" eval make-cases --out "$CASES" --count "$COUNT" --seed 7 --quiet
SETTINGS=(
  "t_u=10 k=3 lr=0.05|--t-u 10 --k 3 --lr 0.05"
  "t_u=5|--t-u 5 --k 3 --lr 0.05"
  "t_u=20|--t-u 20 --k 3 --lr 0.05"
  "t_u=30|--t-u 30 --k 3 --lr 0.05"
  "k=1|--t-u 10 --k 1 --lr 0.05"
  "k=5|--t-u 10 --k 5 --lr 0.05"
  "lr=0.01|--t-u 10 --k 3 --lr 0.01"
  "lr=0.02|--t-u 10 --k 3 --lr 0.02"
  "lr=0.1|--t-u 10 --k 3 --lr 0.1"
  "lr=0.2|--t-u 10 --k 3 --lr 0.2"
)
# The class references are rendered once and shared.
"$BIN" eval run --model "$MODEL" --cases "$CASES" --limit 1 --grid 0 --quiet \
  --out "$OUT/references-run" --references "$OUT/references.json" --method sdedit
run_one() {
  local name=${1%%|*} args=${1#*|}
  local dir="$OUT/$(echo "$name" | tr ' =' '_-')"
  # shellcheck disable=SC2086
  "$BIN" eval run --model "$MODEL" --cases "$CASES" --out "$dir" --grid 0 --quiet \
    --resume --references "$OUT/references.json" --method optimise $args
  echo "$name" > "$dir/setting"
}
export -f run_one
export BIN MODEL OUT CASES
printf '%s\n' "${SETTINGS[@]}" | xargs -d '\n' -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
first=1
for s in "${SETTINGS[@]}"; do
  name=${s%%|*}
  dir="$OUT/$(echo "$name" | tr ' =' '_-')"
  table=$(grep -v '^<!--' "$dir/summary.md")
  if [ $first = 1 ]; then
    echo "| setting $(sed -n 1p <<< "$table")"
    echo "|---$(sed -n 2p <<< "$table")"
    first=0
  fi
  echo "| $name $(sed -n 3p <<< "$table")"
done | tee "$OUT/sweep.md"
