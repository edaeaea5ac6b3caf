#!/bin/bash
# Runs `optedit eval run` over a case file as JOBS parallel processes (one
# shard of the cases each; a GPU that one edit leaves mostly idle serves
# several), then merges the shards into one results folder and lets
# `optedit eval run --resume` write its summary, markdown row and grid.
#
#   JOBS=8 BIN=target/release/optedit MODEL=models/optedit-demo CASES=eval/cases.jsonl \
#     OUT=results/optimise eval/run-parallel.sh --method optimise --device cuda
#
# Every argument after the script's name goes to each `eval run` unchanged
# (method, lambda, mask override, device, ...). OUT/shards/NN holds each
# shard's own folder; OUT/all the merged results.
set -euo pipefail
: "${BIN:?}" "${MODEL:?}" "${CASES:?}" "${OUT:?}"
JOBS=${JOBS:-4}
if [ -e "$OUT/all/cases.jsonl" ]; then
  echo "$OUT already holds merged results; choose another OUT" >&2
  exit 2
fi
mkdir -p "$OUT/shards"
split -n l/"$JOBS" -d -a 2 --additional-suffix=.jsonl "$CASES" "$OUT/shards/cases-"
pids=()
for f in "$OUT"/shards/cases-*.jsonl; do
  [ -s "$f" ] || continue
  dir=${f%.jsonl}
  "$BIN" eval run --model "$MODEL" --cases "$f" --out "$dir" --quiet --resume "$@" \
    > "$dir.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ $status -ne 0 ]; then
  echo "a shard failed (see $OUT/shards/*.log); rerun the same command to resume it" >&2
  exit 1
fi
first=$(ls -d "$OUT"/shards/cases-*/ | head -1)
mkdir -p "$OUT/all/images"
cp "$first/run.json" "$OUT/all/"
[ -f "$first/references.json" ] && cp "$first/references.json" "$OUT/all/"
for d in "$OUT"/shards/cases-*/; do
  cat "$d/cases.jsonl" >> "$OUT/all/cases.jsonl"
  cp "$d"/images/*.png "$OUT/all/images/" 2>/dev/null || true
done
"$BIN" eval run --model "$MODEL" --cases "$CASES" --out "$OUT/all" --resume "$@"
