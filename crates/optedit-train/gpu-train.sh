#!/bin/bash
# Trains the demo model on one CUDA GPU within a fixed wall-clock budget
# (about 9 minutes; each stage's share is set below and can be overridden)
# and packs the exported pipeline folder, the loss logs and the latent
# metadata into OUT/pack.tar.xz.NN (15 MiB parts).
#
#   cargo build --release -p optedit-train -p optedit-cli \
#       --features optedit-train/cuda,optedit-cli/cuda
#   BIN=target/release VAE=run/checkpoints/vae OUT=out crates/optedit-train/gpu-train.sh
#   BIN=target/release INIT=models/optedit-demo OUT=out crates/optedit-train/gpu-train.sh
#
# With `optedit-train/cuda-autotune` instead of `cuda`, burn-cuda tunes its
# convolution kernels per shape (minutes the first time); OUT/autotune.tar.xz
# holds the results, and a run that finds them in target/autotune skips that.
#
# BIN holds `optedit-train` and `optedit` built with CUDA; VAE is the VAE
# checkpoint folder of an earlier run (the VAE trains well on a CPU), or INIT
# an exported pipeline folder whose VAE, UNet and text encoder the run starts
# from; OUT receives the results. Run from the repository root (the tokenizer is read
# from tests/fixtures; DEV=cpu with small COUNT, batches, warm-ups (*_W) and
# budgets is a dry run without a GPU). docs/demo-model.md records what one H200 did with it.
set -u
T0=$(date +%s)
R=${R:-/tmp/optedit-gpu-run}
mkdir -p "$R" "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
# Seconds a stage may take: its own cap, or what is left of the 540 s
# budget after 30 s kept for export and packing. CLS_S=0 or Q_S=0 skips
# the classifier or the quality report. X0_FLOOR sets the UNet and
# ControlNet stages' --x0-weight-floor (default 0: plain min-SNR-5), OFFSET
# their --offset-noise (default 0), PYRAMID their --pyramid-noise (default 0).
# CN_KINDS lists the ControlNets trained (default "pose canny"; add scribble
# and layout for every kind the evaluation's cases ask for).
cap() { local left=$(( 510 - ($(date +%s) - T0) )); [ $left -lt $1 ] && echo $left || echo $1; }
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
pack() {
  el "packing"
  for s in text_to_image controlnet-pose controlnet-canny controlnet-scribble controlnet-layout classifier; do
    [ -f "$R/checkpoints/$s/loss.csv" ] && cp "$R/checkpoints/$s/loss.csv" "$R/loss-$s.csv"
  done
  (cd "$R" && tar cf - optedit-demo quality loss-*.csv latents.json 2>/dev/null) | xz -T0 -6 > "$R.tar.xz"
  split -b 15M -d "$R.tar.xz" "$OUT/pack.tar.xz."
  # burn-cuda's autotune results (a `cuda-autotune` build): carry the folder
  # back as target/autotune so that the next run skips the tuning.
  [ -d target/autotune ] && tar cf - target/autotune | xz -T0 -6 > "$OUT/autotune.tar.xz"
  ls -la "$OUT"
}
trap pack EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
if [ -n "${INIT:-}" ]; then
  FROM="--vae-from $INIT"; UNET_INIT="--init-from $INIT"
else
  FROM=""; UNET_INIT=""
  mkdir -p "$R/checkpoints" && cp -r "$VAE" "$R/checkpoints/vae"
fi
TR="$BIN/optedit-train --dir $R --device ${DEV:-cuda} --tokenizer tests/fixtures/tiny-sd/tokenizer"
el "latents"
timeout $((60 + ${COUNT:-16000} / 400)) $TR latents --count ${COUNT:-16000} $FROM || exit 1
el "unet"
# TEXT_TIME=H gives the UNet a text-time embedding with H pooling heads.
TEXT_TIME_ARG=""
if [ -n "${TEXT_TIME:-}" ]; then TEXT_TIME_ARG="--text-time-heads $TEXT_TIME"; fi
timeout $((${UNET_S:-230} + 40)) $TR unet $UNET_INIT $TEXT_TIME_ARG --steps 30000 --batch ${UNET_BATCH:-256} --lr ${UNET_LR:-1e-3} --warmup ${UNET_W:-100} --x0-weight-floor ${X0_FLOOR:-0} --offset-noise ${OFFSET:-0} --pyramid-noise ${PYRAMID:-0} --checkpoint-every 100 --time-budget ${UNET_S:-230} \
  || el "unet stopped early: the last checkpoint is exported"
for kind in ${CN_KINDS:-pose canny}; do
  el "controlnet $kind"
  timeout $(cap 100) $TR controlnet --kind $kind --steps 20000 --batch ${CN_BATCH:-128} --lr 2e-4 --warmup ${CN_W:-60} --x0-weight-floor ${X0_FLOOR:-0} --offset-noise ${OFFSET:-0} --pyramid-noise ${PYRAMID:-0} --checkpoint-every 50 --time-budget ${CN_S:-55}
done
if [ "${CLS_S:-30}" -gt 0 ]; then
  el "classifier"
  timeout $(cap 60) $TR classifier --steps 4000 --batch ${CLS_BATCH:-128} --lr 1e-3 --warmup ${CLS_W:-50} --checkpoint-every 1000 --time-budget ${CLS_S:-30}
fi
el "export"
$TR export --out "$R/optedit-demo" $FROM || exit 1
# CLS_S=0 keeps the classifier of INIT (it judges the world, not the model).
if [ "${CLS_S:-30}" -eq 0 ] && [ -n "${INIT:-}" ]; then
  cp -r "$INIT/classifier" "$R/optedit-demo/" || exit 1
fi
if [ "${Q_S:-60}" -gt 0 ]; then
  el "quality"
  timeout $(cap ${Q_S:-60}) "$BIN/optedit" eval quality --model "$R/optedit-demo" --device ${DEV:-cuda} --count ${Q_N:-48} --steps 25 --out "$R/quality"
fi
el "done"
