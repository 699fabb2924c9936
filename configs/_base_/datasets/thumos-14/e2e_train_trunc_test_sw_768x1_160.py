# THUMOS-14, end to end from raw videos: random truncation for training, sliding windows for testing.
# Subset names follow OpenTAD's annotation file: THUMOS *validation* videos are "training",
# THUMOS *test* videos are "validation" (see tests/data/thumos14/README.md).
annotation_path = "data/thumos-14/annotations/thumos_14_anno.json"
class_map = "data/thumos-14/annotations/category_idx.txt"
data_path = "data/thumos-14/videos"  # OpenTAD's layout: data/thumos-14/raw_data/video
window_size = 768

dataset = dict(
    name="thumos",
    annotation_path=annotation_path,
    class_map=class_map,
    data_path=data_path,
    video_ext="mp4",
    block_list=None,
    feature_stride=4,
    sample_stride=1,  # snippet stride = 4 x 1 = 4 frames; 768 snippets = 3072 frames
    window_size=window_size,
    train=dict(subset_name="training", trunc_thresh=0.75, crop_ratio=[0.9, 1.0], skip_missing=False),
    val=dict(subset_name="validation", window_overlap_ratio=0.5),
    test=dict(subset_name="validation", window_overlap_ratio=0.5),
    transform=dict(
        train=dict(resize_short=182, crop_size=160, flip_ratio=0.5, imgaug=True, color_jitter=True),
        test=dict(resize_short=160, crop_size=160),
    ),
)

evaluation = dict(
    type="mAP",
    subset="validation",
    tiou_thresholds=[0.3, 0.4, 0.5, 0.6, 0.7],
    ground_truth_filename=annotation_path,
)
