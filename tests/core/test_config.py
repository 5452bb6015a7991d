import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import isodl
from isodl.core import config


@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_same_seed_same_numbers_in_all_three_libraries(seed):
    isodl.set_seed(seed)
    a = (random.random(), np.random.rand(3), torch.randn(3))
    isodl.set_seed(seed)
    b = (random.random(), np.random.rand(3), torch.randn(3))
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    assert torch.equal(a[2], b[2])


def test_different_seeds_differ():
    isodl.set_seed(0)
    a = torch.randn(5)
    isodl.set_seed(1)
    assert not torch.equal(a, torch.randn(5))


@pytest.mark.parametrize(
    "bad, err", [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError), (2**40, ValueError)]
)
def test_set_seed_rejects_bad_seeds(bad, err):
    with pytest.raises(err, match="seed"):
        isodl.set_seed(bad)


def test_scale_defaults_and_environment_override(monkeypatch):
    monkeypatch.delenv("ISODL_SCALE", raising=False)
    assert isodl.resolve_scale("course") == "course"
    assert isodl.resolve_scale("Paper") == "paper"
    assert isodl.resolve_scale(None) == "course"
    monkeypatch.setenv("ISODL_SCALE", "paper")
    assert isodl.resolve_scale("course") == "paper"


def test_unknown_scale_is_rejected(monkeypatch):
    monkeypatch.delenv("ISODL_SCALE", raising=False)
    with pytest.raises(ValueError, match="SCALE.*'course', 'paper'"):
        isodl.resolve_scale("huge")
    monkeypatch.setenv("ISODL_SCALE", "tiny")
    with pytest.raises(ValueError, match="ISODL_SCALE"):
        isodl.resolve_scale("course")
    with pytest.raises(TypeError, match="SCALE"):
        monkeypatch.delenv("ISODL_SCALE")
        isodl.resolve_scale(3)


def test_by_scale_picks_the_right_size():
    assert isodl.by_scale("course", course=10, paper=1000) == 10
    assert isodl.by_scale("paper", course=10, paper=1000) == 1000
    with pytest.raises(ValueError, match="scale"):
        isodl.by_scale("medium", course=1, paper=2)


def test_device_is_cpu_by_default_and_cuda_is_never_required(monkeypatch):
    monkeypatch.delenv("ISODL_DEVICE", raising=False)
    assert isodl.get_device().type == "cpu"
    assert isodl.get_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            isodl.get_device("cuda")
    with pytest.raises(ValueError, match="prefer"):
        isodl.get_device("tpu")


def test_threads(monkeypatch):
    monkeypatch.delenv("ISODL_THREADS", raising=False)
    n = isodl.configure_threads()
    assert n == 1 and torch.get_num_threads() == 1
    assert isodl.configure_threads(2) == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("ISODL_THREADS", "2")
    assert isodl.configure_threads() == 2
    with pytest.raises(ValueError, match="num_threads"):
        isodl.configure_threads(0)
    monkeypatch.setenv("ISODL_THREADS", "two")
    with pytest.raises(ValueError, match="ISODL_THREADS"):
        isodl.configure_threads()
    monkeypatch.delenv("ISODL_THREADS")
    isodl.configure_threads()


def test_headless_flag(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False), ("no", False)]:
        monkeypatch.setenv("ISODL_HEADLESS", value)
        assert config.is_headless() is expected


def test_setup_reports_its_decisions(monkeypatch):
    monkeypatch.delenv("ISODL_SCALE", raising=False)
    cfg = isodl.setup(3, "course")
    assert (cfg.seed, cfg.scale, cfg.device.type) == (3, "course", "cpu")
    assert "seed=3 scale=course device=cpu" in str(cfg)
    a = torch.randn(2)
    isodl.setup(3, "course")
    assert torch.equal(a, torch.randn(2))
