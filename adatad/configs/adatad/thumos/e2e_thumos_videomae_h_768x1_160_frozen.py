# VideoMAE-H, frozen: the VideoMAE-S frozen recipe with the H backbone.
_base_ = ["e2e_thumos_videomae_s_768x1_160_frozen.py", "../../_base_/models/videomae_h.py"]
