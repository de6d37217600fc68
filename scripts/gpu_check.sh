#!/usr/bin/env bash
# The one command a session with a lent GPU (H100/H200) runs: the CUDA tests, longformer-base's
# attention layer at 4096 tokens (every implementation in bf16, speedup over HF and distance from
# the matmul floor; the speedup in fp32 too), the epoch benchmark's fast form and the training step
# at FlagPerf's size (batch 16 x 1024, fp32 and bf16), the embedded model's training step in bf16
# under torch.compile (inductor, mode default), and the embedded convergence run, on cuda:0.
#
#   OUT=<folder> scripts/gpu_check.sh [--cpu] [--stages NAME,...] [-- PYTEST_ARGS...]
#
# --cpu: the same stages, selections and summary on the CPU against the embedded model, for CI
# (tests/test_gpu_check.py). Timing them there would cost minutes (the attention stages time
# longformer-base's layer at 4096 tokens whatever the model; convergence trains to a target), and
# what CI can check is that each stage's -m/-k selection selects what it should and that the
# summary is written: so every stage runs with --collect-only (its selection listed in log.txt),
# but epoch-fp32, which runs for real at batch 2 x 128 tokens in one worker, so that the figures
# step reads a real JSON. A selection that selects nothing (pytest's exit 5) fails the script in
# either mode. --stages runs only the named stages (a rerun after one failed); PYTEST_ARGS go to
# every stage's pytest after its own.
#
# Each stage has a limit, and a stage that reaches it gets SIGINT, so pytest still writes the JSON
# of the benchmarks that finished; summary.txt grows after every stage (versions, each stage's exit
# code and time, then each finished benchmark's figures), so whatever finished is kept even if the
# whole command is cut short. No stage has run on a GPU yet: the limits are sized from what is
# known, not measured (the device tool allows 10 minutes a command; these add up to 9 min 25 s):
# - setup, about 20 s, unlimited: nvidia-smi, torch's import and the card's name (~10 s), the
#   longformer-base stand-in (fixtures/make_base.py: a config and 288 blocks of random ids, ~5 s).
# - every pytest: importing torch and transformers, collecting, CUDA's initialization ~15 s; the
#   benchmarks' worker server imports torch again alongside (~5 s), each worker initializes CUDA.
# - flex_attention compiles cold in 20-40 s (public H100 reports) for each new shape and dtype (a
#   forward+backward pair compiles as one), the first in a process slowest (inductor's and
#   Triton's imports); another process loads the same graph from inductor's on-disk cache in ~5 s.
# - building the 148M-parameter model (random init on the host, copied to the card) ~5-10 s, once
#   per job in each worker: a job's end drops the cached model (bench/measure/worker.py).
# gpu-tests 130 s: 4 cold flex compiles (tests/test_attention.py: 2 shapes x fp32, bf16), 80-160
#   s, the first ~40; plus ~25 s for the start, blocked against HF at 5 shapes, fixtures, masking.
#   About 115 s expected; at 40 s a compile the last shape and the later files are cut.
# attention-bf16 120 s, 2 workers: flex's forward and forward+backward at 4096 tokens compile
#   cold once (~50 s), then load from the cache in the other worker and in pytest's own process
#   (its peak-memory pass), ~20 s; the 8 other layers ~2 s each; the start ~25 s. About 110 s.
# attention-fp32 40 s: the speedup alone (blocked and HF forward+backward, the 8192^3 matmul), no
#   flex; ~30 s. The fp32 layer cases would add a minute the total has not got.
# epoch-fp32 90 s, 1 worker (each job builds the model once; the plan's budget is for all workers,
#   so whole epochs of the 256-sample stand-in are likelier to fit it): the probe (a build, two steps at batch 1) ~10 s; the epoch
#   plan, bounded by its estimate of at most 60 s (bench/measure/budget.py: scaled from batch 1, an
#   overestimate), likely ~20 s; the hf and blocked steps at batch 16, ~10 s each; the start ~20 s.
#   About 70 s expected; 110 s if the plan spends its whole bound, and then the blocked step is cut
#   (at 90 s the blocked step is cut from 90 s of plan on).
# epoch-bf16 65 s: the epoch slice and the hf step (the blocked one ran in fp32), steps ~2x
#   faster; about 50 s.
# convergence 40 s: the embedded run (a 2-layer model, launch-bound steps of ~15 ms, to accuracy
#   0.90 in at most 40 epochs of 64 steps) and the determinism test (16 steps); about 35 s.
# compiled-bf16 60 s, 1 worker: the embedded model's fast step (batch 16 x 256) under torch.compile,
#   as `--compile default` trains it (bench/harness/compiled.py): two cold inductor compiles of the
#   2-layer model, the parity check's (eval mode) and the training's, each a forward and backward
#   of 4 graphs (HF's encoder breaks on `.item()`), Triton kernels compiled in parallel on the
#   host, the second reusing most of the first's; ~15-20 s each, the start ~20 s. About 50 s.
#   longformer-base's compile would take minutes (12 layers of kernels): not within a stage.
#
# Uses the device's own python3 (torch, transformers, pytest, pytest-benchmark preinstalled; nothing
# downloadable; the suite not pip-installed; scipy maybe absent, so modules that need it fail to
# import and the rest run) and a synthetic longformer-base stand-in (fixtures/make_base.py).
# Writes to $OUT: summary.txt, log.txt, one pytest-benchmark JSON per stage, results/ (saved runs,
# the convergence event log and accuracy PNG). Exits 1 when a stage did not exit 0.
set -uo pipefail
cd "$(dirname "$0")/.."
NAMES=,gpu-tests,attention-bf16,attention-fp32,epoch-fp32,epoch-bf16,convergence,compiled-bf16,
refuse() {
    echo "gpu_check.sh: $1 (options: --cpu, --stages NAME,..., -- PYTEST_ARGS)" >&2
    exit 2
}
CPU=0 STAGES=
while [ $# -gt 0 ]; do
    case $1 in
        --cpu) CPU=1 ;;
        --stages)
            [ $# -ge 2 ] || refuse "--stages needs a list of stages"
            STAGES=,$2,
            for name in ${2//,/ }; do
                [[ $NAMES == *",$name,"* ]] || refuse "--stages: no stage $name; the stages: ${NAMES:1:-1}"
            done
            shift
            ;;
        --) shift && break ;;
        *) refuse "unknown option $1" ;;
    esac
    shift
done
EXTRA=("$@")
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SUMMARY="$OUT/summary.txt"
if [ "$CPU" = 1 ]; then
    DEVICE=cpu
    echo "cpu mode: each stage's selection collected, epoch-fp32 run (embedded model)" > "$SUMMARY"
    FULL=(--batch-size=2 --seq-len=128)
    ATTENTION_WORKERS=1 EPOCH_WORKERS=1
else
    DEVICE=cuda:0
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$SUMMARY" 2>&1
    BASE=$(mktemp -d)
    "$PY" -m fixtures.make_base --out "$BASE" > /dev/null
    FULL=(--model-dir="$BASE/model" --data-dir="$BASE/dataset" --batch-size=16 --seq-len=1024)
    ATTENTION_WORKERS=2 EPOCH_WORKERS=1
fi
"$PY" - "$DEVICE" >> "$SUMMARY" 2>&1 <<'PYEOF'
import sys
import torch, transformers
from bench.harness.fingerprint import cpu_model
device = torch.device(sys.argv[1])
name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)
print("device", device, name)
PYEOF
PYTEST=("$PY" -m pytest -p fixtures.options -p no:cacheprovider -q -rs --continue-on-collection-errors
    --benchmark-storage="$OUT/results" --device="$DEVICE")
FAILED=()

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
print("\n".join("  " + line for entry in summary_lines(benchmarks, width=98) for line in entry.splitlines()))
PYEOF
}

stage() {  # stage NAME LIMIT CPU_FORM COMMAND...: within LIMIT seconds; CPU_FORM (collect or run) in CPU mode
    local name=$1 limit=$2 form=$3
    shift 3
    [ -n "$STAGES" ] && [[ $STAGES != *",$name,"* ]] && return
    local args=("$@" "${EXTRA[@]}")
    if [ "$CPU" = 1 ]; then
        limit=300  # a guard against a hang: the limits above are the GPU's
        [ "$form" = collect ] && args+=(--collect-only)
    fi
    echo "===== $name (limit $limit s): ${args[*]}" >> "$OUT/log.txt"
    local start=$SECONDS code
    timeout -s INT -k 5 "$limit" "${args[@]}" --benchmark-json="$OUT/$name.json" >> "$OUT/log.txt" 2>&1
    code=$?
    local note=
    [ $code = 5 ] && note=": its selection selected no test"
    [ $code = 124 ] && note=": reached its limit"
    echo "$name: exit $code in $((SECONDS - start)) s (limit $limit s)$note" >> "$SUMMARY"
    [ $code = 0 ] || FAILED+=("$name")
    [ -s "$OUT/$name.json" ] && figures "$OUT/$name.json"
}

stage gpu-tests 130 collect "${PYTEST[@]}" -m gpu tests
stage attention-bf16 120 collect "${PYTEST[@]}" bench/benchmarks/test_attention_step.py -m "gpu or slow" \
    -k "w512-L4096-b1 or speedup" "${FULL[@]}" --dtype=bf16 --workers=$ATTENTION_WORKERS
stage attention-fp32 40 collect "${PYTEST[@]}" bench/benchmarks/test_attention_step.py -m slow \
    -k "speedup and not flex" "${FULL[@]}" --dtype=fp32 --workers=$ATTENTION_WORKERS
# the fast step on CUDA trains at the run's batch with the run's attention (hf): test_train_step[hf]'s
# work, so the hf case is left to it and the blocked one runs beside it (in fp32 only)
stage epoch-fp32 90 run "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "epoch_slice or train_step_fast or (train_step and blocked)" "${FULL[@]}" --dtype=fp32 \
    --workers=$EPOCH_WORKERS
stage epoch-bf16 65 collect "${PYTEST[@]}" bench/benchmarks/test_epoch_throughput.py bench/benchmarks/test_train_step.py \
    -k "epoch_slice or train_step_fast" "${FULL[@]}" --dtype=bf16 --workers=$EPOCH_WORKERS
stage convergence 40 collect "${PYTEST[@]}" -m convergence bench/benchmarks/test_convergence.py
# the compile latency, parity check and dynamo's counts on CUDA, in bf16: the embedded model
stage compiled-bf16 60 collect "${PYTEST[@]}" bench/benchmarks/test_train_step.py -k train_step_fast \
    --compile=default --dtype=bf16 --batch-size=16 --workers=1
echo "done in $SECONDS s; stages that did not exit 0: ${FAILED[*]:-none}" >> "$SUMMARY"
[ ${#FAILED[@]} = 0 ]
