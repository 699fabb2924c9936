# VideoMAE V2-g, fullft: the VideoMAE-S fullft recipe with the giant backbone.
_base_ = ["e2e_thumos_videomae_s_768x1_160_fullft.py", "../../_base_/models/videomaev2_g.py"]
