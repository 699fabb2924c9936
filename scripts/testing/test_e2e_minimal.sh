#!/usr/bin/env bash
# Test the seed's minimal model: bash scripts/testing/test_e2e_minimal.sh [CHECKPOINT]
# Env: CONFIG (default: the seed's config), WORK_DIR (default: the run folder), PYTHON.
# Without an argument, tests best.pth of the most recent run folder of the config (exps/thumos/<config>/gpu*_id*/).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${CONFIG:-configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py}
PY=${PYTHON:-python}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
NAME=$(basename "$CONFIG" .py)
CKPT=${1:-}
if [ -z "$CKPT" ]; then
  CKPT=$(ls -t exps/thumos/"$NAME"/gpu*_id*/checkpoint/best.pth 2>/dev/null | head -n 1 || true)
  if [ -z "$CKPT" ]; then
    echo "test_e2e_minimal.sh: no best.pth under exps/thumos/$NAME/; pass a checkpoint path" >&2
    exit 1
  fi
fi
NGPU=$("$PY" -c "import torch; print(max(torch.cuda.device_count(), 1))")
NPROC=$(( NGPU > 2 ? 2 : NGPU ))
EXTRA=()
if [ -n "${WORK_DIR:-}" ]; then EXTRA=(--work-dir "$WORK_DIR"); fi
DEVICE=()
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || DEVICE=(--device cpu)
echo "test_e2e_minimal.sh: testing $CKPT on $NPROC process(es)"
exec "$PY" -m torch.distributed.run --nnodes=1 --nproc_per_node="$NPROC" --rdzv_backend=c10d --rdzv_endpoint=localhost:0 \
  tools/test.py "$CONFIG" --checkpoint "$CKPT" "${DEVICE[@]}" "${EXTRA[@]}"
