"""Tests for isodl.rnn: forward sensitivity (RTRL) against autograd BPTT, TBPTT, checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from isodl.recurrent.models import IGNORE_INDEX, CoupledTanhRNN, RecurrentModel, TanhRNN
from isodl.recurrent.sensitivity import (
    bptt_gradients,
    forward_sensitivity_gradients,
    forward_sensitivity_steps,
    input_gradients,
    measure_cost,
    relative_error,
    step_loss_scale,
    stored_bytes,
    truncated_bptt_gradients,
)
from isodl.recurrent.tasks import recall_loss, recall_task

D = torch.float64
TOL = 1e-12


def _problem(seed, *, batched=False, model_cls=TanhRNN, T=None, **model_kw):
    """Random sizes, model, inputs and targets, all drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda lo, hi: int(torch.randint(lo, hi + 1, (), generator=g))  # noqa: E731
    m, out = pick(1, 4), pick(1, 3)
    T = pick(5, 40) if T is None else T
    torch.manual_seed(seed)
    if model_cls is TanhRNN:
        model = TanhRNN(m, pick(2, 9), out, dtype=D, **model_kw)
    else:
        model = CoupledTanhRNN(m, pick(2, 6), pick(2, 5), out, dtype=D, **model_kw)
    lead = (T, pick(2, 4)) if batched else (T,)
    x = torch.randn(*lead, m, generator=g, dtype=D)
    y = torch.randn(*lead, out, generator=g, dtype=D)
    return model, x, y


# --------------------------------------------------------------------------- #
# Forward sensitivity == BPTT
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_single_loop_matches_bptt(seed, batched, reduction):
    model, x, y = _problem(seed, batched=batched)
    loss_fn = nn.MSELoss(reduction=reduction)
    fs = forward_sensitivity_gradients(model, x, y, loss_fn)
    ref = bptt_gradients(model, x, y, loss_fn)
    assert list(fs) == [n for n, _ in model.named_parameters()]
    for name in ref:
        assert fs[name].shape == ref[name].shape
    assert relative_error(fs, ref) <= TOL


def test_long_sequence_matches_bptt():
    """The spec's check: n = 8, input size 3, T = 200."""
    torch.manual_seed(0)
    model = TanhRNN(3, 8, 2, dtype=D)
    x, y = torch.randn(200, 3, dtype=D), torch.randn(200, 2, dtype=D)
    loss_fn = nn.MSELoss(reduction="sum")
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn)) <= TOL
    )


def test_cross_entropy_loss_matches_bptt():
    torch.manual_seed(3)
    model = TanhRNN(2, 6, 4, dtype=D)
    x = torch.randn(25, 2, dtype=D)
    y = torch.randint(0, 4, (25,))
    loss_fn = nn.CrossEntropyLoss()  # mean over the T samples of [T, C] outputs
    assert step_loss_scale(model, x, y, loss_fn) == pytest.approx(1 / 25)
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn)) <= TOL
    )


def test_float32_tolerance():
    torch.manual_seed(1)
    model = TanhRNN(3, 8, 2)
    x, y = torch.randn(100, 3), torch.randn(100, 2)
    loss_fn = nn.MSELoss()
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn))
        <= 1e-5
    )


def test_sensitivity_shape():
    model, x, y = _problem(0, batched=True)
    P = sum(getattr(model, n).numel() for n in model.recurrent_names)
    step = next(iter(forward_sensitivity_steps(model, x, y, nn.MSELoss())))
    assert step.sensitivity.shape == (x.shape[1], model.hidden_size, P)
    model, x, y = _problem(0, batched=False)
    step = next(iter(forward_sensitivity_steps(model, x, y, nn.MSELoss())))
    assert step.sensitivity.shape == (model.hidden_size, model.n_recurrent_params)


# --------------------------------------------------------------------------- #
# Parameters that change between steps
# --------------------------------------------------------------------------- #


def _shared_offset_gradient(model, x, y, loss_fn):
    """Independent reference: unroll theta + t * Delta + eps with eps = 0 and differentiate by eps."""
    base = {n: p.detach() for n, p in model.named_parameters()}
    eps = {n: torch.zeros_like(p, requires_grad=True) for n, p in base.items()}
    h = model.initial_state(None if x.ndim == 2 else x.shape[1])
    outputs = []
    for t in range(x.shape[0]):
        params = {n: base[n] + t * model.drift(n) + eps[n] for n in base}
        h = model.cell(h, x[t], params)
        outputs.append(model.readout(h, params))
    grads = torch.autograd.grad(loss_fn(torch.stack(outputs), y), list(eps.values()))
    return dict(zip(eps, grads))


@pytest.mark.parametrize("model_cls", [TanhRNN, CoupledTanhRNN])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_drift_matches_shared_offset_gradient(model_cls, batched, seed):
    model, x, y = _problem(seed, batched=batched, model_cls=model_cls)
    loss_fn = nn.MSELoss(reduction="sum")
    before = model(x).detach()
    model.random_drift(0.02, seed=seed)
    assert model.has_drift
    assert not torch.allclose(model(x), before)  # the drift changes the computation
    fs = forward_sensitivity_gradients(model, x, y, loss_fn)
    assert relative_error(fs, bptt_gradients(model, x, y, loss_fn)) <= TOL
    assert relative_error(fs, _shared_offset_gradient(model, x, y, loss_fn)) <= TOL


def test_drift_schedule_and_clear():
    torch.manual_seed(0)
    delta = torch.full((4, 4), 0.01, dtype=D)
    model = TanhRNN(2, 4, 1, dtype=D, drift={"W_hh": delta})
    assert torch.equal(model.effective_parameters(0)["W_hh"], model.W_hh)
    assert torch.allclose(model.effective_parameters(7)["W_hh"], model.W_hh + 7 * delta)
    assert torch.equal(model.effective_parameters(7)["W_xh"], model.W_xh)
    model.clear_drift()
    assert not model.has_drift
    assert torch.equal(model.effective_parameters(7)["W_hh"], model.W_hh)


# --------------------------------------------------------------------------- #
# Two interacting loops
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("coupling", ["previous", "same_step"])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_coupled_loops_match_bptt(coupling, batched, seed):
    model, x, y = _problem(seed, batched=batched, model_cls=CoupledTanhRNN, coupling=coupling)
    loss_fn = nn.MSELoss()
    fs = forward_sensitivity_gradients(model, x, y, loss_fn)
    ref = bptt_gradients(model, x, y, loss_fn)
    assert relative_error(fs, ref) <= TOL
    assert float(fs["W_xa"].abs().sum()) > 0  # loop A reaches the loss only through B


def test_coupled_spec_sizes():
    torch.manual_seed(0)
    model = CoupledTanhRNN(3, 5, 4, 2, dtype=D)
    x, y = torch.randn(150, 3, dtype=D), torch.randn(150, 2, dtype=D)
    loss_fn = nn.MSELoss(reduction="sum")
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn)) <= TOL
    )


class _StaleSameStep(CoupledTanhRNN):
    """The pitfall: same-step coupling, but the B row uses the stale S^A_(t-1)."""

    def cell_jacobians(self, h_prev, x_t, params):
        from isodl.recurrent.models import StepJacobians

        k = self.jacobian_blocks(h_prev, x_t, params)
        J = torch.cat([torch.cat([k["AA"], k["AB"]], -1), torch.cat([k["BA"], k["BB"]], -1)], -2)
        return StepJacobians(
            state=torch.cat([k["a"], k["b"]], -1),
            J_h=J,
            J_theta=torch.cat([k["FA"], k["FB"]], -2),
            J_x=torch.cat([k["XA"], k["XB"]], -2),
        )


def test_same_step_coupling_needs_fresh_upstream_sensitivity():
    torch.manual_seed(0)
    model = _StaleSameStep(2, 4, 3, 2, coupling="same_step", dtype=D)
    x, y = torch.randn(20, 2, dtype=D), torch.randn(20, 2, dtype=D)
    loss_fn = nn.MSELoss()
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn)) > 1e-3
    )


class _GenericJacobianRNN(TanhRNN):
    """Uses the base class's torch.func Jacobians instead of the analytic ones."""

    cell_jacobians = RecurrentModel.cell_jacobians


@pytest.mark.parametrize("batched", [False, True])
def test_generic_jacobians_match_analytic(batched):
    torch.manual_seed(2)
    model = _GenericJacobianRNN(3, 5, 2, dtype=D)
    model.random_drift(0.01)
    lead = (12, 3) if batched else (12,)
    x, y = torch.randn(*lead, 3, dtype=D), torch.randn(*lead, 2, dtype=D)
    h = torch.randn(*lead[1:], 5, dtype=D)
    params = {n: p.detach() for n, p in model.effective_parameters(4).items()}
    generic = model.cell_jacobians(h, x[0], params)
    analytic = TanhRNN.cell_jacobians(model, h, x[0], params)
    for field in ("state", "J_h", "J_theta", "J_x"):
        assert relative_error(getattr(generic, field), getattr(analytic, field)) <= TOL
    loss_fn = nn.MSELoss()
    assert (
        relative_error(forward_sensitivity_gradients(model, x, y, loss_fn), bptt_gradients(model, x, y, loss_fn)) <= TOL
    )


# --------------------------------------------------------------------------- #
# Truncated BPTT
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("variant", ["sliding", "chunked"])
@pytest.mark.parametrize("batched", [False, True])
def test_tbptt_exact_when_window_covers_sequence(variant, batched):
    model, x, y = _problem(5, batched=batched, T=15)
    model.random_drift(0.01)
    loss_fn = nn.MSELoss()
    ref = bptt_gradients(model, x, y, loss_fn)
    for k in (15, 16, 40):
        assert relative_error(truncated_bptt_gradients(model, x, y, loss_fn, k, variant=variant), ref) <= TOL


@pytest.mark.parametrize("variant", ["sliding", "chunked"])
def test_tbptt_biased_when_window_short(variant):
    torch.manual_seed(0)
    model = TanhRNN(3, 8, 2, dtype=D, recurrent_gain=1.0)
    x, y = torch.randn(30, 3, dtype=D), torch.randn(30, 2, dtype=D)
    loss_fn = nn.MSELoss(reduction="sum")
    ref = bptt_gradients(model, x, y, loss_fn)
    for k in (1, 5, 10, 29):
        assert relative_error(truncated_bptt_gradients(model, x, y, loss_fn, k, variant=variant), ref) > 1e-8


def test_sliding_tbptt_equals_windowed_sum():
    """Sliding TBPTT(k) = sum over t of the exact gradient of l_t on the window [t-k+1, t] from the true h_(t-k)."""
    torch.manual_seed(4)
    model = TanhRNN(2, 5, 1, dtype=D)
    x, y = torch.randn(12, 2, dtype=D), torch.randn(12, 1, dtype=D)
    k = 4
    states = model.states(x)
    total = 0.0
    for t in range(12):
        start = max(0, t - k + 1)
        h = model.initial_state() if start == 0 else states[start - 1]
        for s in range(start, t + 1):
            h = model.cell(h, x[s], model.effective_parameters(s))
        total = total + ((model.readout(h, model.effective_parameters(t)) - y[t]) ** 2).sum()
    names, params = zip(*model.named_parameters())
    ref = dict(zip(names, torch.autograd.grad(total, params)))
    got = truncated_bptt_gradients(model, x, y, nn.MSELoss(reduction="sum"), k)
    assert relative_error(got, ref) <= TOL


# --------------------------------------------------------------------------- #
# Recall task: what truncation cannot see
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("batch", [None, 3])
def test_recall_task_tbptt_blind_to_old_inputs(batch):
    T, k = 40, 10
    x, y = recall_task(T, 4, seed=1, batch=batch, dtype=D)
    torch.manual_seed(0)
    model = TanhRNN(5, 16, 4, dtype=D, recurrent_gain=1.0)
    per_step = lambda g: g.abs().reshape(T + 1, -1).sum(dim=1)  # noqa: E731
    exact = input_gradients(model, x, y, recall_loss, "bptt")
    forward = input_gradients(model, x, y, recall_loss, "forward")
    trunc = input_gradients(model, x, y, recall_loss, "tbptt", k)
    chunk = input_gradients(model, x, y, recall_loss, "tbptt", k, variant="chunked")
    assert exact.shape == x.shape and forward.shape == x.shape and trunc.shape == x.shape
    assert relative_error(forward, exact) <= TOL
    assert bool((per_step(exact) > 0).all()) and bool((per_step(forward) > 0).all())
    # sliding window: exactly zero for tau <= T - k, non-zero inside the window
    assert bool((trunc[: T - k + 1] == 0).all())
    assert bool((per_step(trunc)[T - k + 1 :] > 0).all())
    # in the last window TBPTT agrees with the exact gradient (loss only at step T)
    assert relative_error(trunc[T - k + 1 :], exact[T - k + 1 :]) <= TOL
    # chunked: zero before the start of the last chunk (t = 40 starts a chunk of its own)
    assert bool((chunk[:T] == 0).all())
    # and the parameter gradients of TBPTT differ from the exact ones
    ref = bptt_gradients(model, x, y, recall_loss)
    assert relative_error(forward_sensitivity_gradients(model, x, y, recall_loss), ref) <= TOL
    assert relative_error(truncated_bptt_gradients(model, x, y, recall_loss, k), ref) > 1e-8


def test_recall_task_layout():
    x, y = recall_task(6, 3, seed=2)
    assert x.shape == (7, 4) and y.shape == (7,)
    sym = int(y[6])
    assert 0 <= sym < 3 and x[0, sym] == 1 and x[0].sum() == 1
    assert x[6, 3] == 1 and x[1:6].abs().sum() == 0
    assert bool((y[:6] == IGNORE_INDEX).all())
    xb, yb = recall_task(6, 3, seed=2, batch=5, noise=0.1)
    assert xb.shape == (7, 5, 4) and yb.shape == (7, 5)
    x2, y2 = recall_task(6, 3, seed=2, batch=5, noise=0.1)
    assert torch.equal(xb, x2) and torch.equal(yb, y2)
    # the loss lives at the last step only
    logits = torch.randn(7, 5, 3)
    expected = nn.functional.cross_entropy(logits[6], yb[6], reduction="mean")
    assert torch.allclose(recall_loss(logits, yb), expected)


# --------------------------------------------------------------------------- #
# Online: the running gradient
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("batched", [False, True])
def test_online_running_gradient(batched):
    model, x, y = _problem(7, batched=batched, T=12)
    model.random_drift(0.01, seed=3)
    loss_fn = nn.MSELoss(reduction="sum")
    seen = []
    final = forward_sensitivity_gradients(model, x, y, loss_fn, callback=seen.append)
    assert [s.t for s in seen] == list(range(12))
    assert relative_error(seen[-1].gradients, final) == 0.0
    assert relative_error(final, bptt_gradients(model, x, y, loss_fn)) <= TOL
    for step in seen:
        t = step.t
        prefix = bptt_gradients(model, x[: t + 1], y[: t + 1], loss_fn)
        assert relative_error(step.gradients, prefix) <= TOL
        assert float(step.loss) == pytest.approx(float(loss_fn(model(x[: t + 1]), y[: t + 1]).detach()), rel=1e-12)
    # copies: an early running gradient is not overwritten by later steps
    assert relative_error(seen[0].gradients, seen[-1].gradients) > 0


def test_online_generator_mean_loss_scales_by_full_length():
    model, x, y = _problem(8, T=10)
    steps = list(forward_sensitivity_steps(model, x, y, nn.MSELoss(reduction="mean")))
    assert len(steps) == 10
    prefix = bptt_gradients(model, x[:4], y[:4], nn.MSELoss(reduction="sum"))
    n_out = y.shape[-1]
    scaled = {n: g / (10 * n_out) for n, g in prefix.items()}
    assert relative_error(steps[3].gradients, scaled) <= TOL
    assert relative_error(steps[-1].gradients, bptt_gradients(model, x, y, nn.MSELoss())) <= TOL


def test_time_reduction_override_skips_check():
    model, x, y = _problem(9, T=8)
    g = forward_sensitivity_gradients(model, x, y, nn.MSELoss(reduction="sum"), time_reduction="sum")
    assert relative_error(g, bptt_gradients(model, x, y, nn.MSELoss(reduction="sum"))) <= TOL


# --------------------------------------------------------------------------- #
# Clear errors
# --------------------------------------------------------------------------- #


@pytest.fixture
def small():
    torch.manual_seed(0)
    model = TanhRNN(3, 4, 2, dtype=D)
    return model, torch.randn(6, 3, dtype=D), torch.randn(6, 2, dtype=D), nn.MSELoss()


ALL_METHODS = [
    lambda m, x, y, f: forward_sensitivity_gradients(m, x, y, f),
    lambda m, x, y, f: bptt_gradients(m, x, y, f),
    lambda m, x, y, f: truncated_bptt_gradients(m, x, y, f, 2),
    lambda m, x, y, f: input_gradients(m, x, y, f),
    lambda m, x, y, f: forward_sensitivity_steps(m, x, y, f),  # checked before the first step
]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_mismatched_sequence_lengths(small, method):
    model, x, y, f = small
    with pytest.raises(ValueError, match=r"same sequence length.*inputs has T=6 steps, targets has 5"):
        method(model, x, y[:5], f)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_empty_sequence(small, method):
    model, x, y, f = small
    with pytest.raises(ValueError, match=r"at least one time step \(T >= 1\)"):
        method(model, x[:0], y[:0], f)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_wrong_input_rank(small, method):
    model, x, y, f = small
    for bad in (x[0], x[:, None, None, :]):
        with pytest.raises(ValueError, match=r"inputs must have shape \[T, input_size\] or \[T, B, input_size\]"):
            method(model, bad, y, f)


def test_other_bad_inputs(small):
    model, x, y, f = small
    with pytest.raises(ValueError, match=r"input_size=3 features"):
        bptt_gradients(model, torch.randn(6, 4, dtype=D), y, f)
    with pytest.raises(ValueError, match=r"need targets of shape \[T, B, \.\.\.\]"):
        bptt_gradients(model, torch.randn(6, 2, 3, dtype=D), torch.randn(6, 5, 2, dtype=D), f)
    with pytest.raises(ValueError, match=r"targets must have a leading time dimension"):
        bptt_gradients(model, x, torch.tensor(1.0, dtype=D), f)
    with pytest.raises(TypeError, match=r"inputs has dtype torch.float32 but the model's parameters are torch.float64"):
        bptt_gradients(model, x.float(), y, f)
    with pytest.raises(TypeError, match=r"inputs must be a torch.Tensor"):
        bptt_gradients(model, [[1.0, 2.0, 3.0]], y, f)
    with pytest.raises(TypeError, match=r"model must be an isodl.recurrent.models.RecurrentModel"):
        bptt_gradients(nn.RNN(3, 4), x, y, f)
    with pytest.raises(TypeError, match=r"loss_fn must be callable"):
        bptt_gradients(model, x, y, "mse")
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar"):
        forward_sensitivity_gradients(model, x, y, nn.MSELoss(reduction="none"))
    with pytest.raises(ValueError, match=r"unknown time_reduction"):
        forward_sensitivity_gradients(model, x, y, f, time_reduction="max")
    with pytest.raises(TypeError, match=r"callback must be callable"):
        forward_sensitivity_gradients(model, x, y, f, callback=3)


@pytest.mark.parametrize("k", [0, -3])
def test_window_below_one(small, k):
    model, x, y, f = small
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        truncated_bptt_gradients(model, x, y, f, k)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        input_gradients(model, x, y, f, "tbptt", k)


def test_window_type_and_method_args(small):
    model, x, y, f = small
    with pytest.raises(TypeError, match=r"k must be an integer"):
        truncated_bptt_gradients(model, x, y, f, 2.5)
    with pytest.raises(ValueError, match=r"unknown variant"):
        truncated_bptt_gradients(model, x, y, f, 2, variant="random")
    with pytest.raises(ValueError, match=r"needs the truncation window k"):
        input_gradients(model, x, y, f, "tbptt")
    with pytest.raises(ValueError, match=r"k is only used with method='tbptt'"):
        input_gradients(model, x, y, f, "bptt", 3)
    with pytest.raises(ValueError, match=r"unknown method"):
        input_gradients(model, x, y, f, "rtrl")


def test_non_decomposable_losses_rejected(small):
    model, x, y, _ = small
    last_only = lambda out, tgt: ((out[-1] - tgt[-1]) ** 2).sum()  # noqa: E731
    pooled = lambda out, tgt: ((out.mean(0) - tgt.mean(0)) ** 2).sum()  # noqa: E731
    for loss_fn in (last_only, pooled):
        with pytest.raises(ValueError, match=r"does not decompose over time steps"):
            forward_sensitivity_gradients(model, x, y, loss_fn)
        with pytest.raises(ValueError, match=r"does not decompose over time steps"):
            truncated_bptt_gradients(model, x, y, loss_fn, 2)
        bptt_gradients(model, x, y, loss_fn)  # the autograd reference takes any loss
    xr, yr = recall_task(5, 2, dtype=D)
    model_r = TanhRNN(3, 4, 2, dtype=D)
    with pytest.raises(ValueError, match=r"reduction='sum'"):
        forward_sensitivity_gradients(model_r, xr, yr, nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX))


def test_model_and_helper_argument_checks():
    with pytest.raises(ValueError, match=r"hidden_size must be >= 1"):
        TanhRNN(3, 0, 2)
    with pytest.raises(TypeError, match=r"input_size must be an integer"):
        TanhRNN(3.0, 4, 2)
    with pytest.raises(ValueError, match=r"unknown coupling"):
        CoupledTanhRNN(3, 4, 4, 2, coupling="both")
    model = TanhRNN(3, 4, 2, dtype=D)
    with pytest.raises(ValueError, match=r"unknown parameter 'W_zz'"):
        model.set_drift(W_zz=torch.zeros(4, 4, dtype=D))
    with pytest.raises(ValueError, match=r"drift for W_hh must have shape \[4, 4\]"):
        model.set_drift(W_hh=torch.zeros(3, 4, dtype=D))
    with pytest.raises(TypeError, match=r"drift must be a dict"):
        TanhRNN(3, 4, 2, drift=0.1)
    with pytest.raises(ValueError, match=r"T must be >= 1"):
        recall_task(0, 3)
    with pytest.raises(ValueError, match=r"n_symbols must be >= 2"):
        recall_task(5, 1)
    with pytest.raises(ValueError, match=r"unknown method"):
        measure_cost("rtrl", 4, 10, 1)
    with pytest.raises(ValueError, match=r"repeats must be >= 1"):
        measure_cost("bptt", 4, 10, 0)


# --------------------------------------------------------------------------- #
# Costs
# --------------------------------------------------------------------------- #


def test_stored_bytes_scaling():
    assert stored_bytes("bptt", 16, 200) == 2 * stored_bytes("bptt", 16, 100)
    assert stored_bytes("forward", 16, 200) == stored_bytes("forward", 16, 100)
    n, m = 16, 4
    assert stored_bytes("forward", n, 50, input_size=m) == n * (n * m + n * n + n) * 8
    assert stored_bytes("bptt", n, 50, dtype=torch.float32, batch=3) == 50 * 3 * n * 4


def test_measure_cost_runs():
    for method in ("forward", "bptt"):
        c = measure_cost(method, 6, 20, repeats=2)
        assert c.method == method and c.T == 20 and c.hidden_size == 6
        assert c.seconds > 0 and math.isclose(c.seconds_per_step, c.seconds / 20)
        assert c.memory_bytes == stored_bytes(method, 6, 20)
        assert c.n_params == 6 * 4 + 36 + 6 + 2 * 6 + 2


def test_measured_memory_bptt_grows_linearly_and_forward_is_flat():
    from isodl.recurrent.sensitivity import measured_memory

    torch.manual_seed(0)
    model = TanhRNN(3, 6, 2, dtype=torch.float64)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    bptt, fwd = {}, {}
    for T in (10, 20, 40):
        x, y = torch.randn(T, 3, dtype=torch.float64), torch.randn(T, 2, dtype=torch.float64)
        bptt[T] = measured_memory("bptt", model, x, y, loss_fn)
        fwd[T] = measured_memory("forward", model, x, y, loss_fn, samples=2)
    assert bptt[40] - bptt[20] == 2 * (bptt[20] - bptt[10]) > 0  # linear in T
    assert bptt[20] - bptt[10] >= 10 * 6 * 8  # at least one state per step
    assert len(set(fwd.values())) == 1  # flat in T
    P = 3 * 6 + 6 * 6 + 6
    assert fwd[10] >= 6 * P * 8  # it holds at least S_t
    with pytest.raises(ValueError, match="method"):
        measured_memory("rtrl", model, x, y, loss_fn)
    with pytest.raises(ValueError, match="samples"):
        measured_memory("forward", model, x, y, loss_fn, samples=0)
