# VideoMAE V2-g, frozen: the VideoMAE-S frozen recipe with the giant backbone.
_base_ = ["e2e_thumos_videomae_s_768x1_160_frozen.py", "../../_base_/models/videomaev2_g.py"]
