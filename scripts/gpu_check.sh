#!/usr/bin/env bash
# The one command a session with a lent GPU (H100/H200) runs: the CUDA tests, longformer-base's
# attention layer at 4096 tokens (every implementation, fp32 and bf16, speedup over HF and distance
# from the matmul floor), the epoch benchmark's fast form and the training step at FlagPerf's size
# (batch 16 x 1024, fp32 and bf16), and the embedded convergence run.
#
# Sized by construction: each stage has its own limit and the limits add up to 470 s (under 8
# minutes; the device tool allows 10 a command). A stage that reaches its limit gets SIGINT, so
# pytest still writes the JSON of the benchmarks that finished; summary.txt grows after every stage
# (versions, each stage's exit code and time, then each finished benchmark's figures), so whatever
# finished is kept even if the whole command is cut short.
#
# Uses the device's own python3 (torch, transformers, pytest, pytest-benchmark preinstalled; nothing
# downloadable; the suite not pip-installed; scipy maybe absent, so modules that need it fail to
# import and the rest run) and a synthetic longformer-base stand-in (fixtures/make_base.py).
# Writes to $OUT: summary.txt, log.txt, one pytest-benchmark JSON per stage, results/ (saved runs,
# the convergence event log and accuracy PNG).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PYTEST=("$PY" -m pytest -p fixtures.options -p no:cacheprovider -q -rs --continue-on-collection-errors
    --benchmark-storage="$OUT/results")
BASE=$(mktemp -d)
SUMMARY="$OUT/summary.txt"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'device', torch.cuda.get_device_name())"
} > "$SUMMARY" 2>&1
"$PY" -m fixtures.make_base --out "$BASE" > /dev/null
FULL=(--model-dir="$BASE/model" --data-dir="$BASE/dataset" --batch-size=16 --seq-len=1024)

figures() {  # figures JSON: one line per finished benchmark (bench/verdicts/summary.py), appended to the summary
    "$PY" - "$1" >> "$SUMMARY" 2>&1 <<'PYEOF'
import json, sys
from bench.verdicts.summary import Measured, summary_lines
try:
    run = json.load(open(sys.argv[1]))
except (OSError, ValueError) as err:
    sys.exit(f"  no figures: {sys.argv[1]} unreadable ({err})")
benchmarks = [Measured(b["name"], b.get("group"), b["stats"]["median"], b["extra_info"]) for b in run["benchmarks"]]
for b in benchmarks:
    print(f"  {b.name}: median {b.median:.6f} s")
print("\n".join("  " + line for entry in summary_lines(benchmarks) for line in entry.splitlines()))
PYEOF
}

stage() {  # stage NAME LIMIT COMMAND...: run within LIMIT seconds, log everything, summarize at once
    local name=$1 limit=$2
    shift 2
    echo "===== $name (limit $limit s): $*" >> "$OUT/log.txt"
    local start=$SECONDS
    timeout -s INT -k 5 "$limit" "$@" --benchmark-json="$OUT/$name.json" >> "$OUT/log.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s (limit $limit s)" >> "$SUMMARY"
    [ -s "$OUT/$name.json" ] && figures "$OUT/$name.json"
}

# limits: 30 s of setup above, then 50 + 120 + 60 + 90 + 60 + 60 = 470 s in all
stage gpu-tests 50 "${PYTEST[@]}" -m gpu tests
stage attention-bf16 120 "${PYTEST[@]}" bench/benchmarks/test_attention_step.py -m "gpu or slow" \
    -k "w512-L4096-b1 or speedup" "${FULL[@]}" --dtype bf16
stage attention-fp32 60 "${PYTEST[@]}" bench/benchmarks/test_attention_step.py -m "gpu or slow" \
    -k "(w512-L4096-b1 or speedup) and not flex" "${FULL[@]}" --dtype fp32
# the fast step on CUDA trains at the run's batch with the run's attention (hf): test_train_step[hf]'s
# work, so the hf case is left to it and the blocked one runs beside it
STEPS="epoch_slice or train_step_fast or (train_step and blocked)"
stage epoch-fp32 90 "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "$STEPS" "${FULL[@]}" --dtype fp32
stage epoch-bf16 60 "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "$STEPS" "${FULL[@]}" --dtype bf16
stage convergence 60 "${PYTEST[@]}" -m convergence bench/benchmarks/test_convergence.py
echo "done in $SECONDS s" >> "$SUMMARY"
