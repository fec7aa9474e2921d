"""Fixtures shared by several test files."""

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
