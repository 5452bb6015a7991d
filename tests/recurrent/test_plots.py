"""Tests for isodl.recurrent.plots (notebook 13's figures) and the notebook-13 exercise check."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from isodl import exercises
from isodl.core import widgets
from isodl.recurrent import checks, models, sensitivity, tasks
from isodl.recurrent import plots as rnn_plots
from isodl.recurrent.sensitivity import CostMeasurement

D = torch.float64


# --------------------------------------------------------------------------- truncation_errors


def _per_step_gradients(model, x, y, loss_fn):
    """Gradient with respect to the recurrent parameters as used at each step, [L, P]."""
    names = model.recurrent_names
    copies = [{k: getattr(model, k).detach().clone().requires_grad_(True) for k in names} for _ in range(len(x))]
    params = dict(model.named_parameters())
    h = model.initial_state()
    outputs = []
    for t in range(len(x)):
        h = model.cell(h, x[t], copies[t])
        outputs.append(model.readout(h, params))
    loss = loss_fn(torch.stack(outputs), y)
    grads = torch.autograd.grad(loss, [c[k] for c in copies for k in names])
    per = len(names)
    return torch.stack([torch.cat([g.reshape(-1) for g in grads[t * per : (t + 1) * per]]) for t in range(len(x))])


@pytest.mark.parametrize("seed", [0, 1])
def test_truncation_errors_match_library_tbptt(seed):
    torch.manual_seed(seed)
    model = models.TanhRNN(4, 6, 3, recurrent_gain=1.0, dtype=D)
    x, y = tasks.recall_task(12, 3, seed=seed, dtype=D)
    exact = sensitivity.bptt_gradients(model, x, y, tasks.recall_loss)
    total = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in exact.values()])))
    errors = rnn_plots.truncation_errors(_per_step_gradients(model, x, y, tasks.recall_loss), total)
    L = x.shape[0]
    assert errors.shape == (L,)
    assert errors[-1] == 0.0
    for k in (1, 3, 7, L - 1):
        tb = sensitivity.truncated_bptt_gradients(model, x, y, tasks.recall_loss, k)
        assert float(errors[k - 1]) == pytest.approx(sensitivity.relative_error(tb, exact), rel=1e-10, abs=1e-15)


def test_truncation_errors_small_example():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [2.0, 0.0]], dtype=D)  # sum = (3, 2)
    errors = rnn_plots.truncation_errors(g)
    ref = np.sqrt(13.0)
    np.testing.assert_allclose(errors.numpy(), [np.sqrt(5.0) / ref, 1.0 / ref, 0.0])
    np.testing.assert_allclose(rnn_plots.truncation_errors(g, 2.0).numpy(), [np.sqrt(5.0) / 2, 0.5, 0.0])


def test_truncation_errors_bad_input():
    with pytest.raises(ValueError, match="step_gradients must have 2 dimensions"):
        rnn_plots.truncation_errors(torch.ones(3, dtype=D))
    with pytest.raises(TypeError, match="step_gradients must be a floating-point"):
        rnn_plots.truncation_errors(torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one row"):
        rnn_plots.truncation_errors(torch.ones(0, 2, dtype=D))
    with pytest.raises(ValueError, match="reference_norm must be a positive"):
        rnn_plots.truncation_errors(torch.ones(2, 2, dtype=D), -1.0)
    with pytest.raises(TypeError, match="reference_norm"):
        rnn_plots.truncation_errors(torch.ones(2, 2, dtype=D), "1")
    with pytest.raises(ValueError, match="exact gradient is zero"):
        rnn_plots.truncation_errors(torch.zeros(2, 2, dtype=D))


# --------------------------------------------------------------------------- plot_truncation and its widget


def _truncation_data(L=8):
    errors = torch.linspace(0.5, 0.0, L, dtype=D)
    norms = torch.logspace(-6, 0, L, dtype=D)
    return {0.5: (errors * 0.01, norms * 1e-3), 1.0: (errors, norms)}


def test_plot_truncation_returns_figure_and_marks_window():
    data = _truncation_data()
    fig = rnn_plots.plot_truncation(data, k=3, recurrent_gain=1.0)
    assert isinstance(fig, Figure)
    ax0, ax1 = fig.axes[:2]
    assert "k=3" in ax1.get_title() and "gain 1.0" in ax1.get_title()
    assert len(ax0.get_lines()) >= 2  # one curve per gain
    # k >= L: nothing dropped, no shaded region
    fig = rnn_plots.plot_truncation(data, k=50)
    assert "drops nothing" in fig.axes[1].get_title()
    assert not fig.axes[1].patches


def test_plot_truncation_bad_input():
    data = _truncation_data()
    with pytest.raises(ValueError, match="recurrent_gain must be one of"):
        rnn_plots.plot_truncation(data, k=2, recurrent_gain=2.0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        rnn_plots.plot_truncation(data, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        rnn_plots.plot_truncation(data, k=2.5)
    with pytest.raises(TypeError, match="data must be a non-empty dict"):
        rnn_plots.plot_truncation([], k=2)
    with pytest.raises(TypeError, match="pair"):
        rnn_plots.plot_truncation({1.0: torch.ones(3)}, k=2)
    with pytest.raises(ValueError, match="one entry per step"):
        rnn_plots.plot_truncation({1.0: (torch.ones(3, dtype=D), torch.ones(4, dtype=D))}, k=2)
    bad = {1.0: (torch.ones(3, dtype=D), torch.ones(3, dtype=D)), 2.0: (torch.ones(4, dtype=D), torch.ones(4, dtype=D))}
    with pytest.raises(ValueError, match="same sequence length"):
        rnn_plots.plot_truncation(bad, k=2)


def test_truncation_widget_redraws():
    from functools import partial

    data = _truncation_data()
    plot = partial(rnn_plots.plot_truncation, data, k=4, recurrent_gain=1.0)
    w = widgets.interactive_figure(plot, k=(1, 8, 1), recurrent_gain=[1.0, 0.5], headless=True)
    first = w.render()
    assert "k=4" in first.axes[1].get_title() and "gain 1.0" in first.axes[1].get_title()
    fig = w.update(k=2, recurrent_gain=0.5)
    assert "k=2" in fig.axes[1].get_title() and "gain 0.5" in fig.axes[1].get_title()


# --------------------------------------------------------------------------- plot_costs


def _costs():
    by_size = [
        CostMeasurement(method, n, 50, 100, 1e-3 * n ** (4 if method == "forward" else 2), 2e-5 * n**2, 8 * n)
        for n in (8, 16, 32)
        for method in ("forward", "bptt")
    ]
    by_length = [
        CostMeasurement(method, 16, T, 100, 1e-3 * T, 1e-4, sensitivity.stored_bytes(method, 16, T))
        for T in (25, 50, 100)
        for method in ("forward", "bptt")
    ]
    return by_size, by_length


def test_plot_costs_returns_three_panels():
    by_size, by_length = _costs()
    fig = rnn_plots.plot_costs(by_size, by_length, saved_bytes={25: 5000, 50: 9000, 100: 17000})
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert any("saved tensors" in s for s in labels)


def test_plot_costs_with_real_measurements():
    by_size = [sensitivity.measure_cost(m, n, 5, repeats=1) for n in (2, 4) for m in ("forward", "bptt")]
    by_length = [sensitivity.measure_cost(m, 3, T, repeats=1) for T in (3, 6) for m in ("forward", "bptt")]
    assert isinstance(rnn_plots.plot_costs(by_size, by_length), Figure)


def test_plot_costs_bad_input():
    by_size, by_length = _costs()
    with pytest.raises(TypeError, match="by_size must be a non-empty list"):
        rnn_plots.plot_costs([], by_length)
    with pytest.raises(TypeError, match=r"by_length\[0\] must be an isodl.recurrent.sensitivity.CostMeasurement"):
        rnn_plots.plot_costs(by_size, [1, 2])
    with pytest.raises(TypeError, match="saved_bytes"):
        rnn_plots.plot_costs(by_size, by_length, saved_bytes=[1, 2])


# --------------------------------------------------------------------------- plot_recall_training


def test_plot_recall_training():
    up = [0, 25, 50]
    curves = {
        "forward sensitivity": [(up[:2], [0.3, 0.9])],
        "BPTT": [(up, [0.3, 0.9, 1.0]), (up, [0.35, 0.6, 1.0])],
        "TBPTT(k=7)": [(up, [0.3, 0.33, 0.34]), (up, [0.3, 0.6, 0.66])],
    }
    fig = rnn_plots.plot_recall_training(curves, chance=1 / 3)
    assert isinstance(fig, Figure)
    ax0, ax1 = fig.axes[:2]
    assert [t.get_text() for t in ax1.get_xticklabels()] == list(curves)
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in ax0.get_lines()]
    assert colours[0] == rnn_plots.METHOD_COLORS["forward"].lower()
    assert colours[-2] == rnn_plots.METHOD_COLORS["tbptt"].lower()  # the last line is the chance level
    finals = np.concatenate([line.get_ydata() for line in ax1.get_lines()[:3]])
    np.testing.assert_allclose(finals, [0.9, 1.0, 1.0, 0.34, 0.66])


def test_plot_recall_training_bad_input():
    with pytest.raises(TypeError, match="curves must be a non-empty dict"):
        rnn_plots.plot_recall_training({}, chance=0.5)
    with pytest.raises(ValueError, match="chance must be an accuracy"):
        rnn_plots.plot_recall_training({"a": [([0], [1.0])]}, chance=2.0)
    with pytest.raises(TypeError, match="non-empty list of"):
        rnn_plots.plot_recall_training({"a": []}, chance=0.5)
    with pytest.raises(TypeError, match="must be a pair"):
        rnn_plots.plot_recall_training({"a": [[0, 1, 2]]}, chance=0.5)
    with pytest.raises(ValueError, match="same length"):
        rnn_plots.plot_recall_training({"a": [([0, 1], [1.0])]}, chance=0.5)


# --------------------------------------------------------------------------- check_sensitivity_step


def sensitivity_step(S_prev, h_prev, x, W_xh, W_hh, b_h):
    n = h_prev.shape[0]
    h = torch.tanh(W_hh @ h_prev + W_xh @ x + b_h)
    d = 1 - h**2
    eye = torch.eye(n, dtype=h.dtype)
    F = d[:, None] * torch.cat([torch.kron(eye, x[None, :]), torch.kron(eye, h_prev[None, :]), eye], dim=1)
    return h, (d[:, None] * W_hh) @ S_prev + F


def _variant(kind):
    def step(S_prev, h_prev, x, W_xh, W_hh, b_h):
        n = h_prev.shape[0]
        h = torch.tanh(W_hh @ h_prev + W_xh @ x + b_h)
        d = 1 - h**2
        eye = torch.eye(n, dtype=h.dtype)
        blocks = [torch.kron(eye, x[None, :]), torch.kron(eye, h_prev[None, :]), eye]
        J = d[:, None] * W_hh
        if kind == "column_major":
            blocks = [torch.kron(x[None, :], eye), torch.kron(h_prev[None, :], eye), eye]
        if kind == "order":
            blocks = [blocks[1], blocks[0], blocks[2]]
        F = d[:, None] * torch.cat(blocks, dim=1)
        if kind == "no_propagation":
            return h, F
        if kind == "no_derivative":
            return h, W_hh @ S_prev + F
        if kind == "old_state":
            d_old = 1 - h_prev**2
            return h, d_old[:, None] * (W_hh @ S_prev + torch.cat(blocks, dim=1))
        if kind == "transposed":
            return h, J.T @ S_prev + F
        if kind == "bad_state":
            return torch.tanh(W_hh @ h_prev + b_h), J @ S_prev + F
        if kind == "only_S":
            return J @ S_prev + F
        return h, J @ S_prev + F

    return step


def test_check_sensitivity_step_passes_reference_and_keeps_random_state():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    result = checks.check_sensitivity_step(sensitivity_step, verbose=False)
    assert result.passed, result.message
    assert torch.equal(before, torch.random.get_rng_state())
    assert exercises.CHECKS["sensitivity_step"] is checks.check_sensitivity_step


def test_check_sensitivity_step_fails_on_stub():
    def stub(S_prev, h_prev, x, W_xh, W_hh, b_h):
        raise NotImplementedError("Exercise: write your solution here, then run the check cell below.")

    result = checks.check_sensitivity_step(stub, verbose=False)
    assert not result.passed and exercises.NOT_DONE_HINT in result.message


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("no_propagation", "F_t alone"),
        ("no_derivative", "both J_t and F_t carry the tanh derivative"),
        ("old_state", "not at h_prev"),
        ("transposed", "from the left"),
        ("column_major", "row by row"),
        ("order", "W_xh, then W_hh, then b_h"),
        ("bad_state", "the new state is"),
    ],
)
def test_check_sensitivity_step_hints(kind, hint):
    result = checks.check_sensitivity_step(_variant(kind), verbose=False)
    assert not result.passed
    assert hint in result.message, result.message


def test_check_sensitivity_step_wrong_return_type():
    result = checks.check_sensitivity_step(_variant("only_S"), verbose=False)
    assert not result.passed and "2 values" in result.message


def test_plot_costs_with_measured_memory_marks_the_crossover():
    by_size, by_length = _costs()
    fig = rnn_plots.plot_costs(
        by_size, by_length, saved_bytes={25: 5000, 50: 9000, 100: 17000}, forward_bytes={25: 12000, 100: 12000}
    )
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert any("crossover T ~ 69" in t for t in texts)  # the fit 1000 + 160 T reaches 12000 at T = 68.75
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert any("measured live tensors" in s for s in labels)


def test_plot_truncation_names_the_symbol_figure():
    errors = torch.tensor([0.5, 0.2, 0.0], dtype=torch.float64)
    norms = np.array([1e-3, 1e-2, 1e-1])
    fig = rnn_plots.plot_truncation({1.0: (errors, norms)}, k=2, symbol_errors={1.0: [1.0, 1.0, 0.0]})
    assert "100% of the symbol-reading" in fig.axes[1].get_title()
    with pytest.raises(TypeError, match="symbol_errors"):
        rnn_plots.plot_truncation({1.0: (errors, norms)}, k=2, symbol_errors=[1.0])


def test_plot_recall_sweep():
    acc = {("bptt", 3): [1.0, 1.0], ("tbptt", 3): [1.0, 0.9], ("bptt", 7): [1.0, 1.0], ("tbptt", 7): [0.5, 0.48]}
    fig = rnn_plots.plot_recall_sweep(acc, [3, 7], k=4, chance=0.5)
    assert isinstance(fig, Figure) and len(fig.axes[0].get_lines()) >= 6
    with pytest.raises(TypeError, match="accuracies"):
        rnn_plots.plot_recall_sweep({}, [3], k=4, chance=0.5)
    with pytest.raises(TypeError, match="delays"):
        rnn_plots.plot_recall_sweep(acc, 3, k=4, chance=0.5)


def test_plot_online():
    fig = rnn_plots.plot_online({"forward": [[0.5, 1.0], [0.4, 0.9]], "bptt": [[0.5, 0.5]]}, chance=0.5)
    assert isinstance(fig, Figure) and len(fig.axes[0].get_lines()) == 6
    with pytest.raises(TypeError, match="runs"):
        rnn_plots.plot_online({}, chance=0.5)
