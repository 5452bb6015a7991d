"""Notebook 13: exercise check for one forward-sensitivity step.

:func:`check_sensitivity_step` compares the learner's ``sensitivity_step(S_prev,
h_prev, x, W_xh, W_hh, b_h)`` -- one tanh RNN step and one step of
``S_t = J_t S_(t-1) + F_t`` -- with the reference built from
:meth:`isodl.recurrent.models.TanhRNN.cell_jacobians`, on random inputs through
:func:`isodl.exercises.compare_functions`. :data:`SENSITIVITY_STEP_HINTS`
recognise the usual mistakes (``S_(t-1)`` not propagated, the tanh derivative
missing from ``J`` or taken at the old state, a transposed ``J``, the blocks of
``F`` column-major or in the wrong order). Registered with
:func:`isodl.exercises.register_check`.
"""

from __future__ import annotations

import torch

from isodl.exercises import CheckResult, exercise_check

__all__ = ["SENSITIVITY_STEP_HINTS", "check_sensitivity_step"]


# --------------------------------------------------------------------------- notebook 13
# (reference: isodl.recurrent.models.TanhRNN.cell_jacobians)


def _sensitivity_step_reference(S_prev, h_prev, x, W_xh, W_hh, b_h):
    """One tanh RNN step and one step of ``S_t = J_t S_(t-1) + F_t``, via :meth:`isodl.recurrent.models.TanhRNN.cell_jacobians`."""
    from isodl.recurrent import models

    n, m = W_xh.shape
    # only the model's sizes matter (the weights are passed in): draw its own weights from a fixed generator
    model = models.TanhRNN(m, n, 1, dtype=W_xh.dtype, generator=torch.Generator().manual_seed(0))
    jac = model.cell_jacobians(h_prev, x, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})
    return jac.state, jac.J_h @ S_prev + jac.J_theta


def _sensitivity_step_inputs(gen: torch.Generator):
    n = int(torch.randint(2, 6, (1,), generator=gen))
    m = int(torch.randint(1, 4, (1,), generator=gen))
    P = n * m + n * n + n
    d = torch.float64
    W_xh = torch.randn(n, m, generator=gen, dtype=d)
    W_hh = 0.8 * torch.randn(n, n, generator=gen, dtype=d) / n**0.5
    b_h = 0.5 * torch.randn(n, generator=gen, dtype=d)
    h_prev = torch.tanh(torch.randn(n, generator=gen, dtype=d))
    x = torch.randn(m, generator=gen, dtype=d)
    S_prev = torch.randn(n, P, generator=gen, dtype=d)  # not zero, so the J_t S_(t-1) term matters
    return (S_prev, h_prev, x, W_xh, W_hh, b_h)


def _sens_parts(inputs):
    """Pieces used by the hints: h, d = 1 - h^2, the correct J and F, and the blocks of F."""
    S_prev, h_prev, x, W_xh, W_hh, b_h = inputs
    n = h_prev.shape[0]
    h = torch.tanh(W_hh @ h_prev + W_xh @ x + b_h)
    d = 1.0 - h * h
    eye = torch.eye(n, dtype=h.dtype)
    blocks = [torch.kron(eye, x[None, :]), torch.kron(eye, h_prev[None, :]), eye]
    return S_prev, h_prev, h, d, eye, blocks, W_hh


def _sens_matches(got, target) -> bool:
    S = got[1] if isinstance(got, (tuple, list)) and len(got) == 2 else None
    if not isinstance(S, torch.Tensor) or tuple(S.shape) != tuple(target.shape):
        return False
    return bool(torch.allclose(S.detach().to(torch.float64), target, rtol=1e-5, atol=1e-6))


def _sens_forgot_propagation(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    return _sens_matches(got, d[:, None] * torch.cat(blocks, dim=1))


def _sens_no_tanh_derivative_in_J(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    F = d[:, None] * torch.cat(blocks, dim=1)
    return _sens_matches(got, W_hh @ S_prev + F) or _sens_matches(got, W_hh @ S_prev + torch.cat(blocks, dim=1))


def _sens_derivative_at_old_state(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    d_old = 1.0 - h_prev * h_prev
    return _sens_matches(got, d_old[:, None] * (W_hh @ S_prev + torch.cat(blocks, dim=1)))


def _sens_transposed_J(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    F = d[:, None] * torch.cat(blocks, dim=1)
    return _sens_matches(got, (d[:, None] * W_hh).T @ S_prev + F) or _sens_matches(
        got, (W_hh * d[None, :]) @ S_prev + F
    )


def _sens_column_major(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    x = inputs[2]
    swapped = [torch.kron(x[None, :], eye), torch.kron(h_prev[None, :], eye), eye]
    return _sens_matches(got, (d[:, None] * W_hh) @ S_prev + d[:, None] * torch.cat(swapped, dim=1))


def _sens_wrong_block_order(got, expected, inputs) -> bool:
    S_prev, h_prev, h, d, eye, blocks, W_hh = _sens_parts(inputs)
    J = d[:, None] * W_hh
    for order in ((1, 0, 2), (2, 0, 1), (0, 2, 1), (1, 2, 0), (2, 1, 0)):
        if _sens_matches(got, J @ S_prev + d[:, None] * torch.cat([blocks[i] for i in order], dim=1)):
            return True
    return False


def _sens_bad_state(got, expected, inputs) -> bool:
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[0], torch.Tensor)):
        return False
    return tuple(got[0].shape) == tuple(expected[0].shape) and not bool(
        torch.allclose(got[0].to(torch.float64), expected[0], rtol=1e-5, atol=1e-6)
    )


SENSITIVITY_STEP_HINTS = (
    (_sens_bad_state, "the new state is h = tanh(W_hh @ h_prev + W_xh @ x + b_h)"),
    (
        _sens_forgot_propagation,
        "you returned F_t alone: add the propagated old sensitivity, S_t = J_t @ S_prev + F_t",
    ),
    (
        _sens_no_tanh_derivative_in_J,
        "both J_t and F_t carry the tanh derivative: J_t = diag(1 - h_t^2) @ W_hh and F_t = diag(1 - h_t^2) @ [...]",
    ),
    (
        _sens_derivative_at_old_state,
        "evaluate the tanh derivative at the new state h_t (1 - h_t^2), not at h_prev",
    ),
    (
        _sens_transposed_J,
        "J_t = diag(1 - h_t^2) @ W_hh multiplies S_prev from the left: row i is scaled by 1 - h_t[i]^2",
    ),
    (
        _sens_column_major,
        "flatten each weight matrix row by row: the column of W[i, j] is i * W.shape[1] + j "
        "(torch.kron(torch.eye(n), x[None, :]) gives the W_xh block)",
    ),
    (_sens_wrong_block_order, "the columns of S come in the order W_xh, then W_hh, then b_h"),
)


@exercise_check(
    _sensitivity_step_reference, _sensitivity_step_inputs, rtol=1e-07, atol=1e-09, hints=SENSITIVITY_STEP_HINTS
)
def check_sensitivity_step(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-11 exercise ``sensitivity_step(S_prev, h_prev, x, W_xh, W_hh, b_h)``.

    It must return ``(h, S)``: the new state of ``h = tanh(W_hh h_prev + W_xh x
    + b_h)`` and ``S = J S_prev + F``, with the columns of ``S`` ordered as
    ``W_xh`` (row-major), ``W_hh`` (row-major), ``b_h``. The reference is
    :meth:`isodl.recurrent.models.TanhRNN.cell_jacobians`. Inputs are float64 with state
    size 2 to 5, input size 1 to 3 and a random (non-zero) ``S_prev``.
    """
