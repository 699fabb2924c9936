"""Test a checkpoint (the seed's entry point). Works plainly or under torchrun:

    torchrun --nnodes=1 --nproc_per_node=2 --rdzv_backend=c10d --rdzv_endpoint=localhost:0 \
        tools/test.py configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py --checkpoint best.pth
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adatad.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
