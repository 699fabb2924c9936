# VideoMAE V2-g in adapter mode: the VideoMAE-S adapter recipe with the giant backbone and adapter lr 1e-4.
_base_ = ["e2e_thumos_videomae_s_768x1_160_adapter.py", "../../_base_/models/videomaev2_g.py"]

model = dict(backbone=dict(adapter_index=list(range(40))))  # every block
optimizer = dict(backbone=dict(custom=[dict(name="adapter", lr=1e-4, weight_decay=0.05)]))
