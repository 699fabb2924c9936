# VideoMAE-L, fullft: the VideoMAE-S fullft recipe with the L backbone.
_base_ = ["e2e_thumos_videomae_s_768x1_160_fullft.py", "../../_base_/models/videomae_l.py"]
