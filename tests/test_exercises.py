"""Tests of isodl.core.ops.unit_rows and the exercise checks in isodl.checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from isodl import exercises
from isodl.core.checks import check_unit_rows
from isodl.core.ops import unit_rows
from isodl.exercises import CHECKS, CheckResult, compare_functions

# --------------------------------------------------------------------------- unit_rows


def test_unit_rows_basic_values():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-5.0, 12.0]])
    y = unit_rows(x)
    expected = torch.tensor([[0.6, 0.8], [0.0, 0.0], [-5 / 13, 12 / 13]])
    torch.testing.assert_close(y, expected)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert torch.equal(x, torch.tensor([[3.0, 4.0], [0.0, 0.0], [-5.0, 12.0]])), "input modified"


def test_unit_rows_other_dim_and_1d():
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    y = unit_rows(x, dim=1)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(4, 5, dtype=torch.float64))
    torch.testing.assert_close(unit_rows(x, dim=-2), y)
    v = unit_rows(torch.tensor([0.0, 2.0, 0.0]))
    torch.testing.assert_close(v, torch.tensor([0.0, 1.0, 0.0]))


def test_unit_rows_zero_rows_exactly_zero_and_gradient_finite():
    x = torch.randn(5, 4, dtype=torch.float64)
    x[[1, 3]] = 0.0
    x.requires_grad_(True)
    y = unit_rows(x)
    assert torch.equal(y[[1, 3]], torch.zeros(2, 4, dtype=torch.float64))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.zeros(3).equal(unit_rows(torch.zeros(3)))


def test_unit_rows_gradient_matches_naive_formula():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64)
    (g1,) = torch.autograd.grad((unit_rows(x) * w).sum(), x)
    (g2,) = torch.autograd.grad((x / x.norm(dim=-1, keepdim=True) * w).sum(), x)
    torch.testing.assert_close(g1, g2)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 6),
    exponent=st.sampled_from([-30, -20, -10, 0, 10, 20, 30]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
    zero_row=st.booleans(),
)
def test_unit_rows_property(rows, cols, exponent, dtype, seed, zero_row):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, cols, generator=gen, dtype=torch.float64) * 10.0**exponent).to(dtype)
    if zero_row:
        x[0] = 0.0
    y = unit_rows(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y).all()
    nonzero = (x != 0).any(dim=-1)
    norms = torch.linalg.vector_norm(y.double(), dim=-1)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(norms[nonzero], torch.ones_like(norms[nonzero]), atol=tol, rtol=0)
    assert torch.equal(y[~nonzero], torch.zeros_like(y[~nonzero]))
    # Same direction as the input: y is a positive multiple of x.
    ref = x.double() / x.double().norm(dim=-1, keepdim=True)
    assert torch.allclose(y.double()[nonzero], ref[nonzero], atol=10 * tol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("magnitude", [1e-30, 1e30])
def test_unit_rows_extreme_magnitudes_are_finite(dtype, magnitude):
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, -4.0, 0.0, 0.0]], dtype=torch.float64) * magnitude
    y = unit_rows(x.to(dtype))
    assert torch.isfinite(y).all()
    expected = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.6, -0.8, 0.0, 0.0]], dtype=dtype)
    torch.testing.assert_close(y, expected)


def test_unit_rows_numpy_in_numpy_out():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    y = unit_rows(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert not np.shares_memory(x, y)
    # Reversed (negative-stride) views work too.
    z = unit_rows(np.arange(6.0).reshape(2, 3)[::-1])
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), [1.0, 1.0])


@pytest.mark.parametrize(
    ("args", "error", "word"),
    [
        ((torch.tensor([[1, 2], [3, 4]]),), TypeError, "x"),
        ((np.array([[1, 2]]),), TypeError, "x"),
        ((torch.tensor(3.0),), ValueError, "x"),
        (([[1.0, 2.0]],), TypeError, "x"),
        ((torch.ones(2, 3), 2), ValueError, "dim"),
        ((torch.ones(2, 3), -3), ValueError, "dim"),
        ((torch.ones(2, 3), 1.0), TypeError, "dim"),
    ],
)
def test_unit_rows_bad_inputs_name_the_argument(args, error, word):
    with pytest.raises(error, match=rf"\b{word}\b"):
        unit_rows(*args)


# --------------------------------------------------------------------------- checks


def learner_correct(x):
    norm = torch.sqrt((x**2).sum(dim=-1, keepdim=True))
    return torch.where(norm > 0, x / norm, torch.zeros_like(x))


def learner_stub(x):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")


def learner_nan_on_zero_rows(x):
    return x / x.norm(dim=-1, keepdim=True)


def learner_columns(x):
    norm = x.norm(dim=0, keepdim=True)
    return torch.where(norm > 0, x / norm, torch.zeros_like(x))


def learner_squared(x):
    sq = (x**2).sum(dim=-1, keepdim=True)
    return torch.where(sq > 0, x / sq, torch.zeros_like(x))


def learner_list(x):
    return learner_correct(x).tolist()


def learner_numpy(x):
    a = x.numpy()
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def learner_edits_input(x):
    x.zero_()  # would make the reference see zeros if inputs were shared
    return x


def learner_crashes(x):
    return x @ torch.ones(99, dtype=x.dtype)


def learner_transposed(x):
    return learner_correct(x).T


@pytest.mark.parametrize("fn", [unit_rows, learner_correct, learner_numpy])
def test_check_unit_rows_passes(fn, capsys):
    result = check_unit_rows(fn)
    assert isinstance(result, CheckResult)
    assert result.passed and bool(result)
    assert result.trials >= 2
    out = capsys.readouterr().out
    assert out.startswith("PASS: unit_rows matched the reference on")
    assert len(out.strip().splitlines()) == 1
    assert str(result) == result.message and result.printed
    # shown as a cell's last expression, a verdict that was printed is not shown twice
    result._ipython_display_()
    assert capsys.readouterr().out == ""
    quiet = check_unit_rows(fn, verbose=False)
    assert capsys.readouterr().out == ""
    quiet._ipython_display_()
    assert capsys.readouterr().out.startswith("PASS: unit_rows")


@pytest.mark.parametrize(
    ("fn", "needles"),
    [
        (learner_stub, ["NotImplementedError", "not done yet"]),
        (learner_nan_on_zero_rows, ["NaN", "a zero row has norm 0"]),
        (learner_columns, ["normalise each row (dim=-1), not each column"]),
        (learner_squared, ["divide by the norm, not the squared norm"]),
        (learner_list, ["list", "torch.Tensor"]),
        (learner_edits_input, ["differs"]),
        (learner_crashes, ["RuntimeError"]),
        (learner_transposed, ["shape"]),
    ],
)
def test_check_unit_rows_fails_with_clear_message(fn, needles, capsys):
    result = check_unit_rows(fn)  # must not raise
    assert not result and not result.passed
    out = capsys.readouterr().out
    assert out.startswith("FAIL: unit_rows: ")
    for needle in needles:
        assert needle in result.message
        assert needle in out
    assert "Input that failed" in result.message and "x = tensor of shape" in result.message


def test_zero_row_trials_exist():
    # The NaN-on-zero-rows mistake is caught, so some trial has a zero row;
    # its failure is on a later trial than the first (the first has none).
    result = check_unit_rows(learner_nan_on_zero_rows, verbose=False)
    assert result.trials >= 2


def test_hint_only_when_it_applies():
    result = check_unit_rows(lambda x: 2 * learner_correct(x), verbose=False)
    assert not result.passed and "Hint" not in result.message.splitlines()[0]


def test_verbose_false_prints_nothing(capsys):
    check_unit_rows(learner_stub, verbose=False)
    assert capsys.readouterr().out == ""


def test_compare_functions_rejects_non_callable_candidate():
    with pytest.raises(TypeError, match="candidate"):
        compare_functions(torch.ones(3), unit_rows, lambda g: (torch.ones(2, 2),), name="x")
    with pytest.raises(TypeError, match="candidate"):
        check_unit_rows(None)


def test_compare_functions_validates_its_arguments():
    ok = dict(name="f")
    inputs = lambda g: (torch.randn(2, 3, generator=g),)  # noqa: E731
    with pytest.raises(ValueError, match="n_trials"):
        compare_functions(unit_rows, unit_rows, inputs, n_trials=0, **ok)
    with pytest.raises(ValueError, match="rtol"):
        compare_functions(unit_rows, unit_rows, inputs, rtol=-1.0, **ok)
    with pytest.raises(TypeError, match="hints"):
        compare_functions(unit_rows, unit_rows, inputs, hints=[("not callable", "text")], **ok)


def test_compare_functions_generic_outputs_and_hints():
    def inputs(gen):
        return (torch.randn(3, generator=gen, dtype=torch.float64),)

    ref = lambda v: (v.sum().item(), v * 2)  # noqa: E731
    assert compare_functions(lambda v: (float(v.sum()), v + v), ref, inputs, name="pair", verbose=False)
    bad = compare_functions(
        lambda v: (float(v.sum()) + 1, v + v),
        ref,
        inputs,
        name="pair",
        hints=[(lambda got, exp, ins: True, "check the sum")],
        verbose=False,
    )
    assert not bad and "output[0]" in bad.message and "Hint: check the sum." in bad.message
    # A predicate that raises is skipped, the next matching one is used.
    bad = compare_functions(
        lambda v: v + 1,
        lambda v: v,
        inputs,
        name="shift",
        hints=[
            (lambda got, exp, ins: 1 / 0, "never"),
            (lambda got, exp, ins: bool((got - exp > 0.5).all()), "off by one"),
        ],
        verbose=False,
    )
    assert "off by one" in bad.message and "never" not in bad.message
    # Infinity where the reference is finite.
    bad = compare_functions(lambda v: v / 0.0, lambda v: v, inputs, name="inf", verbose=False)
    assert "infinite" in bad.message


def test_checks_registry():
    assert CHECKS["unit_rows"] is check_unit_rows

    @exercises.register_check
    def check_double(fn, *, verbose=False):
        return compare_functions(
            fn, lambda v: 2 * v, lambda g: (torch.randn(4, generator=g),), name="double", verbose=verbose
        )

    try:
        assert CHECKS["double"] is check_double
        assert check_double(lambda v: v + v)
        assert not check_double(lambda v: v)
        assert exercises.all_checks()["double"] is check_double
    finally:
        CHECKS.pop("double", None)
    # every part's checks are registered once their modules are imported
    every = exercises.all_checks()
    for name in (
        "unit_rows",
        "isotropic_tanh",
        "cone_count",
        "plane_points",
        "top_k_purity",
        "rotate_neurons",
        "remove_last_neuron",
        "alternating_fraction",
        "predicted_step",
        "affine_like",
        "sensitivity_step",
    ):
        assert name in every, name
    with pytest.raises(ValueError, match="check_"):
        exercises.register_check(lambda fn: None)


def test_define_check_builds_registers_and_repeats_its_trials():
    calls = []

    def make_inputs(gen, trial):  # two parameters: the trial number is passed too
        calls.append(trial)
        return (torch.randn(3, generator=gen) * (trial + 1),)

    try:
        check_triple = exercises.define_check(
            "triple", lambda v: 3 * v, make_inputs, n_trials=3, label="triple (x3)", doc="Check triple."
        )
        assert check_triple.__name__ == "check_triple" and check_triple.__doc__ == "Check triple."
        assert CHECKS["triple"] is check_triple
        first = check_triple(lambda v: 3 * v, verbose=False)
        assert first and "triple (x3)" in first.message
        assert calls == [0, 1, 2]
        calls.clear()
        assert check_triple(lambda v: 3 * v, verbose=False) and calls == [0, 1, 2]  # every call sees the same trials
        assert not check_triple(lambda v: 2 * v, verbose=False)
    finally:
        CHECKS.pop("triple", None)
    with pytest.raises(ValueError, match="identifier"):
        exercises.define_check("not a name", lambda v: v, lambda g: (1,))
    with pytest.raises(TypeError, match="rtol, atol and hints"):
        exercises.define_check("extra", lambda v: v, lambda g: (1,), colour="red")


def test_exercise_check_decorator_takes_name_trials_and_doc_from_the_stub():
    try:

        @exercises.exercise_check(lambda v: v + 1, lambda g: (torch.randn(2, generator=g),))
        def check_increment(fn, *, n_trials: int = 4, seed: int = 0, verbose: bool = True):
            """Check increment."""

        assert CHECKS["increment"] is check_increment and check_increment.__doc__ == "Check increment."
        result = check_increment(lambda v: v + 1, verbose=False)
        assert result and result.trials == 4
        assert not check_increment(lambda v: v, verbose=False)
    finally:
        CHECKS.pop("increment", None)
    with pytest.raises(ValueError, match="check_"):
        exercises.exercise_check(lambda v: v, lambda g: (1,))(lambda fn: None)
