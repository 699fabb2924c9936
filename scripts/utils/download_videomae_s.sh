#!/usr/bin/env bash
# Download OpenTAD's converted VideoMAE-S (K400) weights into pretrained/ and check that they load.
# Needs the optional dependency gdown: pip install 'adatad[download]'
# Usage: bash scripts/utils/download_videomae_s.sh [--out pretrained] [--force]
set -euo pipefail
PYTHON="${PYTHON:-python}"
exec "$PYTHON" -m adatad.download videomae-s "$@"
