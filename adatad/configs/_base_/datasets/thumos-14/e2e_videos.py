# THUMOS-14 from raw videos, OpenTAD's annotation file. Subset names follow that file: THUMOS *validation* videos
# are "training", THUMOS *test* videos are "validation" (see adatad/data/thumos14/README.md). The rest of the
# dataset settings (snippet stride 4, subsets, truncation and sliding windows) are the schema defaults in
# adatad/config.py, which are OpenTAD's THUMOS end-to-end defaults; each recipe states what it changes.
annotation_path = "data/thumos-14/annotations/thumos_14_anno.json"

dataset = dict(
    name="thumos",
    annotation_path=annotation_path,
    class_map="data/thumos-14/annotations/category_idx.txt",
    data_path="data/thumos-14/videos",  # OpenTAD's layout: data/thumos-14/raw_data/video
)
evaluation = dict(ground_truth_filename=annotation_path)
