#!/usr/bin/env bash
# The device check on one GPU, in under 8 minutes: configs/cifar10_vdvae.py's train step time and
# images/s at bfloat16 and float32, model FLOP utilization against a matmul peak measured in the
# same run, peak device memory, and the evaluator's log weights/s (benchmarks/device_check.py).
# Installs a CUDA jax and the package if they are missing, runs each phase in a process of its own
# (so that each peak of device memory is that phase's), prints one table and writes the JSON.
#
#   bash benchmarks/device_check.sh [--tiny] [--json PATH]
#
# PYTHON: the interpreter (default .venv/bin/python if there is one, else python3);
# DEVICE_CHECK_SECONDS: the time budget (480): a phase that would start past it is skipped, one
# that runs past it is stopped. --tiny: small sizes on any backend, nothing installed (the tests
# run it on a CPU). Then `python -m benchmarks.device_check --table --json PATH --write` puts the
# table into BENCHMARKS.md.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi
BUDGET="${DEVICE_CHECK_SECONDS:-480}"
TINY=""
JSON="${TMPDIR:-/tmp}/device_check.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY="--tiny" ;;
    --json) JSON="$2"; shift ;;
    *) echo "usage: bash benchmarks/device_check.sh [--tiny] [--json PATH]" >&2; exit 2 ;;
  esac
  shift
done

has_gpu() { "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null; }
if [ -z "$TINY" ] && ! has_gpu; then
  echo "device_check: $PY's jax sees no GPU; installing jax[cuda12]" >&2
  "$PY" -m pip install -q -U "jax[cuda12]" || exit 1
  has_gpu || { echo "device_check: jax still sees no GPU" >&2; exit 1; }
fi
if ! "$PY" -c 'import jaxvae' 2>/dev/null; then
  echo "device_check: installing the package (pip install -e .)" >&2
  "$PY" -m pip install -q -e . || exit 1
fi

rm -f "$JSON"
for phase in matmul train_bfloat16 train_float32 eval; do
  left=$((BUDGET - SECONDS - 10))
  if [ "$left" -lt 30 ]; then
    echo "device_check: $phase skipped, the ${BUDGET} s budget is spent" >&2
    continue
  fi
  timeout "$left" "$PY" -m benchmarks.device_check --phase "$phase" --json "$JSON" $TINY ||
    echo "device_check: $phase stopped (exit status $?)" >&2
done
"$PY" -m benchmarks.device_check --table --json "$JSON"
echo "device_check: results in $JSON, $SECONDS s in all"
