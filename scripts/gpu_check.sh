#!/usr/bin/env bash
# The GPU checks for a session that is lent a device (H100/H200): CUDA tests, the gpu-marked
# attention benchmarks at longformer-base size, epoch throughput at FlagPerf's size (batch 16 x 1024,
# fp32 and bf16), and the embedded convergence run. Uses the device's own python3 (torch, transformers,
# pytest, pytest-benchmark preinstalled; nothing downloadable; the suite not pip-installed) and a
# synthetic longformer-base stand-in (fixtures/make_base.py) where the real files are absent.
# Writes at most 8 files to $OUT: summary.txt (versions, stage exit codes, the key numbers), log.txt,
# and one pytest-benchmark JSON per benchmark stage. Each stage has its own time limit ($LIMIT s).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
LIMIT=${LIMIT:-150}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# scipy (the verdicts' statistics) may be missing there: modules that need it fail to import, the rest run
PYTEST=("$PY" -m pytest -p fixtures.options -p no:cacheprovider -q -rs --continue-on-collection-errors)
BASE=$(mktemp -d)
SUMMARY="$OUT/summary.txt"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} > "$SUMMARY" 2>&1
"$PY" -m fixtures.make_base --out "$BASE" > /dev/null
FULL=(--model-dir="$BASE/model" --data-dir="$BASE/dataset" --batch-size=16 --seq-len=1024)

stage() {  # stage NAME COMMAND...: run with a time limit, log everything, note the exit code
    local name=$1
    shift
    echo "===== $name: $*" >> "$OUT/log.txt"
    local start=$SECONDS
    timeout "$LIMIT" "$@" >> "$OUT/log.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s" >> "$SUMMARY"
}

stage gpu-tests "${PYTEST[@]}" -m gpu tests
for dtype in fp32 bf16; do
    stage "attention-$dtype" "${PYTEST[@]}" bench/benchmarks/test_attention_step.py -m "gpu or slow" \
        -k "not flex or w512-L4096-b1 or speedup" "${FULL[@]}" --dtype "$dtype" \
        --benchmark-json "$OUT/attention_$dtype.json"
done
stage epoch-fp32 "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "not flagperf_path" "${FULL[@]}" --benchmark-json "$OUT/epoch_fp32.json"
stage epoch-bf16 "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "not flagperf_path" "${FULL[@]}" --dtype bf16 --benchmark-json "$OUT/epoch_bf16.json"
stage epoch-bf16-blocked "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py -k "not flagperf_path" "${FULL[@]}" \
    --dtype bf16 --attention blocked --benchmark-json "$OUT/epoch_bf16_blocked.json"
stage convergence "${PYTEST[@]}" -m convergence --benchmark-json "$OUT/convergence.json"

"$PY" - "$OUT" >> "$SUMMARY" 2>&1 <<'PYEOF'
import json, sys
from pathlib import Path

keys = ("p_whole", "p_train", "p_core", "mfu", "peak_memory_bytes", "speedup_over_hf", "times_floor",
        "achieved_flops_per_s", "peak_cuda_bytes", "time_to_target_s", "status")
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        print(f"{path.name}: unreadable ({err})")
        continue
    print(f"--- {path.name}")
    for bench in run["benchmarks"]:
        info = {k: bench["extra_info"][k] for k in keys if bench["extra_info"].get(k) is not None}
        print(f"{bench['name']}: median {bench['stats']['median']:.6f} s {json.dumps(info)}")
PYEOF
echo "done" >> "$SUMMARY"
