#!/bin/bash
# Runs the UNet benches on a CUDA GPU next to PyTorch CUDA in the same run
# (issue 8) and writes the numbers, with the device named, to OUT.
#
#   cargo bench -p optedit-benches --bench unet --features cuda --no-run   # prints the binary
#   strip -o gpu/unet-bench target/release/deps/unet-<hash> && xz -6 gpu/unet-bench
#   BENCH=gpu/unet-bench.xz OUT=out benches/gpu-bench.sh
#
# Run from the repository root (the benches read tests/fixtures). When the
# machine's python3 lacks diffusers, carry its wheel in .whl/ (see
# docs/benchmarks.md). LATENT (default 64) sets the SD 1.5 latent size.
set -u
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
if ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi
case "$BENCH" in
  *.xz) xz -dc "$BENCH" > /tmp/unet-bench && chmod +x /tmp/unet-bench && BENCH=/tmp/unet-bench ;;
esac
echo "== PyTorch"
python3 benches/torch/unet_cuda.py --latent "${LATENT:-64}" --out "$OUT/torch_cuda.json"
python3 benches/torch/unet_cuda.py --latent "${LATENT:-64}" --tf32 --out "$OUT/torch_cuda_tf32.json"
for group in tiny forward backward; do
  echo "== optedit $group"
  OPTEDIT_BENCH_ONLY=$group OPTEDIT_BENCH_LATENT=${LATENT:-64} \
    "$BENCH" --bench --noplot --warm-up-time 3 --measurement-time 15 2>&1 \
    | grep -E "time:|Benchmarking .*: Analyzing|rror|panic"
done
