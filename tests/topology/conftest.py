"""Shared set-up of the topology tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are tiny: one thread avoids synchronisation overhead on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
