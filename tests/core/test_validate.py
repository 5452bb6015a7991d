"""The shared argument checks of isodl.validate."""

import numpy as np
import pytest

from isodl.core import train
from isodl.core.validate import check_widths
from isodl.normalisation import experiments
from isodl.symmetry import autoencoder
from isodl.topology import network


def test_check_widths_returns_plain_ints():
    out = check_widths((np.int64(8), 4, 2))
    assert out == [8, 4, 2] and all(type(w) is int for w in out)


@pytest.mark.parametrize("bad", [40, "64,10", b"ab", None, 3.0])
def test_check_widths_rejects_non_sequences(bad):
    with pytest.raises(TypeError, match=r"widths must be a sequence of layer sizes like \[64, 32, 10\]"):
        check_widths(bad)


def test_check_widths_names_the_short_list_and_the_bad_entry():
    with pytest.raises(
        ValueError,
        match=r"needs at least an input size, 1 hidden width\(s\) and an output size \(3 sizes\), got \[4, 2\]",
    ):
        check_widths([4, 2], minimum_length=3, layout="an input size, 1 hidden width(s) and an output size")
    with pytest.raises(ValueError, match=r"layers\[1\] must be >= 1, got 0"):
        check_widths([4, 0, 2], name="layers")
    with pytest.raises(TypeError, match=r"widths\[2\] must be an integer"):
        check_widths([4, 3, 2.5])


def test_every_model_constructor_uses_the_shared_check():
    # one bad width, four constructors: each message names the entry
    for build in (
        lambda w: train.MLP(w),
        lambda w: autoencoder.AutoEncoder(w),
        lambda w: experiments.build_mlp("none", w),
    ):
        with pytest.raises(ValueError, match=r"widths\[1\] must be >= 1"):
            build([4, 0, 2])
        with pytest.raises(ValueError, match=r"widths needs at least"):
            build([4])
    with pytest.raises(ValueError, match=r"widths needs at least an input size, 1 hidden"):
        network.check_network_widths([4, 2])


def test_check_ints_checks_each_argument_by_name():
    from isodl.core.validate import check_ints

    assert check_ints(minimum=1, a=3, b=np.int64(4)) == (3, 4)
    with pytest.raises(ValueError, match="b"):
        check_ints(minimum=1, a=3, b=0)
    with pytest.raises(TypeError, match="a"):
        check_ints(minimum=1, a=2.5)
