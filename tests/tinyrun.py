"""A tiny config that runs the real pipeline in seconds (used by the engine, infer and custom tests)."""

import sys
from pathlib import Path

from adatad.config import packaged_config

ROOT = Path(__file__).resolve().parents[1]

#: torchrun with 2 processes on this machine (gloo on CPU), as the seed's commands start it
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--nnodes=1",
    "--nproc_per_node=2",
    "--rdzv_backend=c10d",
    "--rdzv_endpoint=localhost:0",
]


def assert_same_weights(a: dict, b: dict) -> None:
    """Two state dicts hold the same tensors bit for bit."""
    import torch

    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


TINY_DATA = dict(num_train=4, num_test=2, duration_range=(8.0, 10.0), fps=30.0, size=(32, 32), seed=0)


def copy_dataset(data: dict, root: Path) -> dict:
    """Copy a generated dataset (``generate_dataset``'s dict) to ``root``; its dict with the paths moved there."""
    import shutil

    shutil.copytree(data["root"], root, dirs_exist_ok=True)
    return {k: str(v).replace(str(data["root"]), str(root)) if isinstance(v, str) else v for k, v in data.items()}


def write_tiny_config(path: Path, data: dict, **extra) -> Path:
    """A config that inherits the demo (and so the seed's THUMOS recipe) with everything shrunk."""
    lines = [
        f'_base_ = ["{packaged_config("demo/demo_tiny.py")}"]',
        "window_size = 64",
        "dataset = dict(",
        f'    annotation_path="{data["anno_file"]}", class_map="{data["class_file"]}", data_path="{data["video_dir"]}",',
        "    window_size=window_size,",
        "    transform=dict(train=dict(resize_short=36, crop_size=32), test=dict(resize_short=32, crop_size=32)),",
        ")",
        f'evaluation = dict(ground_truth_filename="{data["anno_file"]}")',
        "model = dict(backbone=dict(embed_dims=32, depth=1, num_heads=2, adapter_index=[0]),",
        "             projection=dict(in_channels=32, out_channels=32), head=dict(feat_channels=32))",
        "solver = dict(train=dict(batch_size=2, num_workers=0), val=dict(batch_size=2, num_workers=0),",
        "              test=dict(batch_size=2, num_workers=0))",
        "scheduler = dict(warmup_epoch=1, max_epoch=4)",
        "workflow = dict(logging_interval=1, checkpoint_interval=1, val_eval_interval=1, val_start_epoch=0, end_epoch=2)",
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {value!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def save_tiny_checkpoint(path: Path, cfg_path: Path, seed: int = 0, class_names=None, cfg_options=None) -> Path:
    """A checkpoint as adatad training writes it (weights, resolved config, class names) with random weights of
    seed ``seed``: enough for the inference paths (``adatad infer``, :class:`adatad.Detector`)."""
    import torch

    from adatad.annotation_io import load_class_map
    from adatad.config import load_config
    from adatad.models.detector import build_detector

    cfg = load_config(cfg_path, cfg_options or [])
    torch.manual_seed(seed)
    model = build_detector(cfg, load_pretrained=False)
    names = list(class_names) if class_names is not None else load_class_map(cfg["dataset"]["class_map"])
    config = {k: v for k, v in cfg.items() if k != "_meta"}
    torch.save({"state_dict": model.state_dict(), "config": config, "class_names": names, "epoch": 0}, path)
    return path
