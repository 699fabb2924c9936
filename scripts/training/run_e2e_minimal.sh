#!/usr/bin/env bash
# Train the seed's minimal end-to-end model (AdaTAD, VideoMAE-S adapter, THUMOS-14) on every visible GPU,
# keeping the recipe's effective batch of 4 (2 GPUs x batch 2): 1 GPU -> batch 2 x 2 accumulation steps,
# 4+ GPUs -> batch 1 per GPU where 4 divides evenly. Extra arguments go to tools/train.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${CONFIG:-configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py}
PY=${PYTHON:-python}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi

NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" -lt 1 ]; then
  echo "run_e2e_minimal.sh: no CUDA GPU found; this recipe needs at least one GPU (try 'make demo' on a CPU)" >&2
  exit 1
fi
case "$NGPU" in
  1) NPROC=1; OPTS=(--cfg-options solver.train.batch_size=2 --keep-effective-batch) ;;
  2|3) NPROC=2; OPTS=() ;;
  *) NPROC=4; OPTS=(--cfg-options solver.train.batch_size=1) ;;
esac
echo "run_e2e_minimal.sh: $NGPU GPU(s) visible -> torchrun --nproc_per_node=$NPROC ${OPTS[*]:-}"
exec "$PY" -m torch.distributed.run --nnodes=1 --nproc_per_node="$NPROC" --rdzv_backend=c10d --rdzv_endpoint=localhost:0 \
  tools/train.py "$CONFIG" "${OPTS[@]}" "$@"
