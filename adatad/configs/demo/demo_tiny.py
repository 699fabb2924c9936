# The demo: the seed's AdaTAD recipe shrunk to run on a CPU in minutes (configs/demo/cpu_small.py) on built-in
# synthetic videos (adatad.data.synthetic: 64x64 px, 30 fps; the classes differ only by motion over time).
# Same dataset classes, decoding, windows, transforms, model, losses, engine, post-processing and
# evaluator as configs/adatad/thumos/; only sizes and the schedule differ. `adatad demo` fills in the
# data paths (dataset.annotation_path / class_map / data_path) for the generated data folder.
_base_ = ["../adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py", "cpu_small.py"]

dataset = dict(
    name="demo",
    annotation_path="demo_data/annotations/anno.json",
    class_map="demo_data/annotations/category_idx.txt",
    data_path="demo_data/videos",
)
evaluation = dict(ground_truth_filename="demo_data/annotations/anno.json")
model = dict(head=dict(num_classes=5))
