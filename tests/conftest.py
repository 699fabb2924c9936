"""Shared fixtures: a tiny synthetic dataset."""

import pytest
from tinyrun import TINY_DATA


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from adatad.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny_data")
    return generate_dataset(root, **TINY_DATA, progress=False)
