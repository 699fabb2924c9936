# The seed's model: AdaTAD, VideoMAE-S in adapter mode, 768 frames at 160x160 (THUMOS-14 avg mAP 69.03).
_base_ = [
    "../../_base_/datasets/thumos-14/e2e_train_trunc_test_sw_768x1_160.py",
    "../../_base_/models/adatad_videomae_actionformer.py",
]

solver = dict(
    train=dict(batch_size=2, num_workers=2, accumulate=1),
    val=dict(batch_size=2, num_workers=2),
    test=dict(batch_size=2, num_workers=2),
    clip_grad_norm=1.0,
    amp=True,
    fp16_compress=True,
    static_graph=True,
    ema=True,
    ema_decay=0.999,
)

optimizer = dict(
    type="AdamW",
    lr=1e-4,
    weight_decay=0.05,
    paramwise=True,
    # backbone: frozen (lr 0, not in the optimizer) except the adapters
    backbone=dict(lr=0.0, weight_decay=0.0, custom=[dict(name="adapter", lr=2e-4, weight_decay=0.05)], exclude=["backbone"]),
)
scheduler = dict(type="LinearWarmupCosineAnnealingLR", warmup_epoch=5, max_epoch=100)

post_processing = dict(
    pre_nms_thresh=0.001,
    pre_nms_topk=2000,
    nms=dict(use_soft_nms=True, sigma=0.7, max_seg_num=2000, multiclass=True, voting_thresh=0.7),
)

workflow = dict(
    logging_interval=50,
    checkpoint_interval=2,
    val_eval_interval=2,
    val_start_epoch=40,
    end_epoch=60,
)

# adatad infer: videos of other frame rates are sampled by time as if they were 30 fps (THUMOS' rate)
inference = dict(reference_fps=30.0)
