"""Fixtures shared by several test files."""

import shutil

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of many small ops, restored afterwards.

    On 2 cores shared by several workers, intra-op threads mostly spin: one thread made
    the model tests about 4x faster in wall and CPU time.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dfew(tmp_path_factory):
    """A small synthetic benchmark in the official DFEW layout, with 20% noisy training labels."""
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth") / "dfew"
    write_synthetic(root, layout="dfew", clips=30, noise=0.2, seed=3, size=40, progress=False)
    return root


@pytest.fixture()
def data(tiny_dfew, tmp_path):
    """A private copy of `tiny_dfew` (tests corrupt it)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dfew, root)
    return root
