"""Shared fixtures: a tiny synthetic dataset."""

import pytest
from tinyrun import TINY_DATA, write_tiny_config


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from adatad.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny_data")
    return generate_dataset(root, **TINY_DATA, progress=False)


@pytest.fixture
def cfg_file(tmp_path, tiny_dataset):
    """A tiny config (the seed's recipe shrunk) over the tiny dataset."""
    return write_tiny_config(tmp_path / "tiny.py", tiny_dataset)


@pytest.fixture
def decoded_frames(monkeypatch):
    """The index of every frame the PyAV backend decodes from now on, in decoding order (a list that fills up)."""
    from adatad.data import video as vmod

    seen: list[int] = []
    orig = vmod._PyAVBackend._frame_index

    def counting(self, frame, fallback):
        seen.append(orig(self, frame, fallback))
        return seen[-1]

    monkeypatch.setattr(vmod._PyAVBackend, "_frame_index", counting)
    return seen
