"""Notebook 13: forward sensitivity, BPTT and truncated BPTT gradients, and their costs.

Exact online gradients for recurrent networks: forward sensitivity versus BPTT.

This module backs the course unit on Bird & Polivoda, "Backpropagation Through
Time For Networks With Long-Term Dependencies" (arXiv 2103.15589). Everything
below is the course's own derivation and code, checked against
``torch.autograd``; none of it reproduces numbers from the paper.

The recurrence and its sensitivity
----------------------------------
A recurrent model updates a state and reads an output from it::

    h_t = f(h_(t-1), x_t; theta_t),      y_t = g(h_t; theta_t),      h_(-1) = 0

(steps are numbered ``t = 0 ... T-1`` in the code). The sensitivity of the
state to the recurrent parameters, ``S_t = dh_t/dtheta`` (shape
``[state_size, n_recurrent_params]``, one per sequence in a batch), obeys the
discrete forward sensitivity equation::

    S_t = J_t S_(t-1) + F_t,   S_(-1) = 0,   J_t = df/dh_(t-1),   F_t = df/dtheta

and for a loss that is a sum of per-step terms ``L = sum_t l_t(y_t)``::

    dL/dtheta = sum_t (dl_t/dh_t) S_t      (+ the readout's own gradient).

Unrolled, ``S_t = sum_(tau <= t) J_t ... J_(tau+1) F_tau`` keeps every path
back to the first step, so the gradient is exact; it is the same algorithm as
real-time recurrent learning (RTRL, Williams & Zipser 1989). Because the sum
runs forward in time, the gradient of the loss seen so far is available after
every step, with no backward pass: :func:`forward_sensitivity_steps` yields it.

Costs (n = state size, P = recurrent parameters, about n^2): the product
``J_t S_(t-1)`` costs O(n P) = O(n^4) per step and S takes O(n P) = O(n^3)
memory whatever the sequence length T. BPTT costs O(P) per step but stores T
states. :func:`measure_cost` and ``benchmarks/bench_rnn.py`` measure both.

Design decisions
----------------
Loss decomposition
    Forward sensitivity and sliding-window truncated BPTT need the loss one
    step at a time. Any ``loss_fn(outputs, targets)`` that takes a tensor whose
    first dimension is time is accepted if it is the **sum** or the **mean**
    over steps of its values on single steps, i.e. if
    ``loss_fn(Y, tgt) == s * sum_t loss_fn(Y[t:t+1], tgt[t:t+1])`` with
    ``s = 1`` or ``s = 1/T``. ``nn.MSELoss``, ``nn.L1Loss``,
    ``nn.BCEWithLogitsLoss`` and ``nn.CrossEntropyLoss`` (on ``[T, C]``
    outputs) qualify with reduction ``'sum'`` or ``'mean'``, as do per-step
    masked losses such as :func:`isodl.recurrent.tasks.recall_loss`. With the default
    ``time_reduction="auto"`` the functions check this on the model's actual
    outputs (and on a perturbed copy) and raise a ``ValueError`` otherwise; a
    loss that picks steps by indexing (``Y[-1]``), pools over time, or
    averages over only the unmasked positions (``ignore_index`` with
    ``reduction='mean'``) is rejected. Pass ``time_reduction="sum"`` or
    ``"mean"`` to skip the check (a fully online run with nothing computed
    ahead). Within one step, autograd differentiates the step's loss through
    the readout only (to get ``dl_t/dh_t`` and the readout gradient); nothing
    is ever propagated backward across steps.

Truncated BPTT
    :func:`truncated_bptt_gradients` implements two variants.
    ``variant="sliding"`` (default): the gradient of each loss term ``l_t``
    flows back through the last ``k`` state updates, ``h_t, h_(t-1), ...,
    h_(t-k+1)``; the state ``h_(t-k)`` is treated as a constant. So
    ``dl_t/dx_tau`` is exactly zero for ``tau <= t - k``, and TBPTT(k) equals
    the exact gradient when ``k >= T``. ``variant="chunked"``: the sequence is
    cut into consecutive chunks of ``k`` steps and the state is detached at
    every chunk boundary, so ``l_t`` reaches back only to the start of its own
    chunk (between 1 and k steps).

Models
    The models, their step Jacobians ``J_t`` and ``F_t``
    (:meth:`isodl.recurrent.models.RecurrentModel.cell_jacobians`), parameters
    that drift between steps and the two coupled loops are in
    :mod:`isodl.recurrent.models`. The forward sensitivity evaluates ``J_t``
    and ``F_t`` at each step's own parameters ``theta_t``, so with drift the
    autograd reference is still ``loss.backward()`` (:func:`bptt_gradients`).
    The recall task that notebook 13 trains on is in :mod:`isodl.recurrent.tasks`.
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from isodl.core.validate import check_choice, check_int, check_ints, check_tensor
from isodl.recurrent.models import LossFn, RecurrentModel, TanhRNN, check_inputs

__all__ = [
    "measured_memory",
    "step_loss_scale",
    "SensitivityStep",
    "forward_sensitivity_steps",
    "forward_sensitivity_gradients",
    "bptt_gradients",
    "truncated_bptt_gradients",
    "input_gradients",
    "relative_error",
    "CostMeasurement",
    "stored_bytes",
    "measure_cost",
]


# --------------------------------------------------------------------------- #
# Validation and loss decomposition
# --------------------------------------------------------------------------- #


def _check_model(model) -> RecurrentModel:
    if not isinstance(model, RecurrentModel):
        raise TypeError(
            f"model must be an isodl.recurrent.models.RecurrentModel (e.g. TanhRNN or CoupledTanhRNN), got {type(model).__name__}"
        )
    return model


def _check_problem(model, inputs, targets, loss_fn):
    model = _check_model(model)
    inputs = check_inputs(model, inputs)
    targets = check_tensor("targets", targets)
    T = inputs.shape[0]
    if targets.ndim < 1:
        raise ValueError(f"targets must have a leading time dimension of length T={T}, got a 0-dimensional tensor")
    if targets.shape[0] != T:
        raise ValueError(
            f"inputs and targets must have the same sequence length along dimension 0: "
            f"inputs has T={T} steps, targets has {targets.shape[0]}"
        )
    if inputs.ndim == 3:
        B = inputs.shape[1]
        if targets.ndim < 2 or targets.shape[1] != B:
            raise ValueError(
                f"batched inputs [T, B, input_size] with B={B} need targets of shape [T, B, ...], "
                f"got shape {list(targets.shape)}"
            )
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(outputs, targets), got {type(loss_fn).__name__}")
    return model, inputs, targets


def _scalar_loss(value, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"loss_fn must return a scalar (0-dimensional) tensor; {where} it returned {shape}")
    return value


def step_loss_scale(model, inputs, targets, loss_fn: LossFn, time_reduction: str = "auto") -> float:
    """The factor ``s`` with ``loss_fn(Y, tgt) = s * sum_t loss_fn(Y[t:t+1], tgt[t:t+1])``.

    ``time_reduction="sum"`` gives 1, ``"mean"`` gives ``1/T``. ``"auto"``
    runs the model once (no gradient) and checks both on its outputs and on a
    randomly perturbed copy; a loss that is neither the sum nor the mean of
    its per-step values raises a ``ValueError``.
    """
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    time_reduction = check_choice("time_reduction", time_reduction, ("auto", "sum", "mean"))
    T = inputs.shape[0]
    if time_reduction == "sum":
        return 1.0
    if time_reduction == "mean":
        return 1.0 / T
    tol = 1e-10 if inputs.dtype == torch.float64 else 1e-5
    gen = torch.Generator(device="cpu").manual_seed(12345)
    matches_sum = matches_mean = True
    with torch.no_grad():
        outputs = model(inputs)
        noise = torch.randn(outputs.shape, generator=gen, dtype=torch.float64).to(outputs)
        for probe in (outputs, outputs + 0.1 * noise):
            full = float(_scalar_loss(loss_fn(probe, targets), "on the whole sequence"))
            parts = [
                float(_scalar_loss(loss_fn(probe[t : t + 1], targets[t : t + 1]), f"on step {t}")) for t in range(T)
            ]
            bad = [t for t, v in enumerate(parts) if not math.isfinite(v)]
            if bad or not math.isfinite(full):
                raise ValueError(
                    f"loss_fn is not finite on single steps (first at t={bad[0] if bad else '?'}) or on the whole "
                    "sequence. Forward sensitivity and sliding-window TBPTT need the loss step by step; a loss that "
                    "averages over the unmasked positions only (e.g. CrossEntropyLoss(ignore_index=..., "
                    "reduction='mean')) gives 0/0 on steps without targets: use reduction='sum' instead"
                )
            total = sum(parts)
            scale = tol * (abs(full) * T + sum(abs(v) for v in parts)) + 1e-300
            matches_sum &= abs(total - full) <= scale
            matches_mean &= abs(total - T * full) <= scale
    if matches_sum:
        return 1.0
    if matches_mean:
        return 1.0 / T
    raise ValueError(
        "loss_fn does not decompose over time steps: loss_fn(outputs, targets) is neither the sum nor the mean of "
        "loss_fn(outputs[t:t+1], targets[t:t+1]) over t. Forward sensitivity (and sliding-window TBPTT) need a loss "
        "of the form sum_t l_t(y_t) or its mean over steps, e.g. nn.MSELoss(reduction='sum' or 'mean'). To put the "
        "loss on some steps only, mask the others inside a per-step loss (targets equal to IGNORE_INDEX with "
        "reduction='sum', as recall_task and recall_loss do) rather than indexing outputs[-1]"
    )


# --------------------------------------------------------------------------- #
# Gradients
# --------------------------------------------------------------------------- #


@dataclass
class SensitivityStep:
    """What :func:`forward_sensitivity_steps` yields after step ``t`` (0-based).

    ``gradients`` is the running gradient ``d/dtheta`` of ``loss``, the loss
    of steps ``0 ... t`` (with the time-reduction factor of the whole
    sequence, so for a mean over steps it is ``(1/T) sum_(s<=t) l_s``); it is
    a fresh copy at every step. ``sensitivity`` is ``S_t``
    (``[n, P]`` or ``[B, n, P]``), ``state`` is ``h_t``. ``input_gradients``
    is the running gradient with respect to the inputs (shape of the inputs)
    when requested, else ``None``.
    """

    t: int
    loss: torch.Tensor
    step_loss: torch.Tensor
    gradients: dict[str, torch.Tensor]
    sensitivity: torch.Tensor
    state: torch.Tensor
    input_gradients: torch.Tensor | None = None


def forward_sensitivity_steps(
    model,
    inputs,
    targets,
    loss_fn: LossFn,
    *,
    time_reduction: str = "auto",
    wrt_inputs: bool = False,
) -> Iterator[SensitivityStep]:
    """Exact gradient, forward in time: a generator of :class:`SensitivityStep`.

    Runs ``S_t = J_t S_(t-1) + F_t`` and accumulates
    ``sum_(s<=t) (dl_s/dh_s) S_s`` plus the readout gradient. The last item's
    ``gradients`` equals ``loss_fn(model(inputs), targets)`` differentiated by
    autograd (see the module docstring for the losses accepted). With
    ``wrt_inputs=True`` it also carries the sensitivity to every input
    ``x_tau`` (each input is a parameter used at one step only); this costs
    O(n^2 T) extra memory and is meant for small demonstrations.

    Arguments are checked when the function is called, before the first step.
    """
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    if not isinstance(wrt_inputs, bool):
        raise TypeError(f"wrt_inputs must be True or False, got {wrt_inputs!r}")
    scale = step_loss_scale(model, inputs, targets, loss_fn, time_reduction)
    return _forward_sensitivity_run(model, inputs, targets, loss_fn, scale, wrt_inputs)


def _forward_sensitivity_run(model, inputs, targets, loss_fn, scale, wrt_inputs):
    T = inputs.shape[0]
    batched = inputs.ndim == 3
    batch = inputs.shape[1] if batched else None
    lead = (batch,) if batched else ()
    params = dict(model.named_parameters())
    n, P = model.state_size, model.n_recurrent_params
    x_all = inputs.detach()
    dtype, device = x_all.dtype, x_all.device

    S = torch.zeros(*lead, n, P, dtype=dtype, device=device)
    S_x = torch.zeros(*lead, n, T, model.input_size, dtype=dtype, device=device) if wrt_inputs else None
    g_rec = torch.zeros(P, dtype=dtype, device=device)
    g_read = {name: torch.zeros_like(params[name]) for name in model.readout_names}
    g_x = torch.zeros_like(x_all) if wrt_inputs else None
    running = torch.zeros((), dtype=dtype, device=device)
    h = model.initial_state(batch)

    for t in range(T):
        with torch.no_grad():
            theta_t = {k: v.detach() for k, v in model.effective_parameters(t).items()}
            jac = model.cell_jacobians(h, x_all[t], theta_t)
            h = jac.state
            S = jac.J_h @ S + jac.J_theta  # the forward sensitivity equation
            if wrt_inputs:
                S_x = (jac.J_h @ S_x.reshape(*lead, n, -1)).reshape(S_x.shape)
                S_x[..., t, :] += jac.J_x
        # Local autograd through this step's readout and loss only.
        with torch.enable_grad():
            h_leaf = h.detach().requires_grad_(True)
            readout_params = model.effective_parameters(t, names=model.readout_names)
            y = model.readout(h_leaf, readout_params)
            l_t = scale * _scalar_loss(loss_fn(y.unsqueeze(0), targets[t : t + 1]), f"on step {t}")
            leaves = [h_leaf] + [params[name] for name in model.readout_names]
            grads = torch.autograd.grad(l_t, leaves, allow_unused=True)
        with torch.no_grad():
            dl_dh = grads[0] if grads[0] is not None else torch.zeros_like(h)
            if batched:
                g_rec += torch.einsum("bn,bnp->p", dl_dh, S)
            else:
                g_rec += dl_dh @ S
            for name, g in zip(model.readout_names, grads[1:]):
                if g is not None:
                    g_read[name] += g
            if wrt_inputs:
                if batched:
                    g_x += torch.einsum("bn,bnti->tbi", dl_dh, S_x)
                else:
                    g_x += torch.einsum("n,nti->ti", dl_dh, S_x)
            running = running + l_t.detach()
        yield SensitivityStep(
            t=t,
            loss=running.clone(),
            step_loss=l_t.detach(),
            gradients=_assemble(model, g_rec, g_read),
            sensitivity=S,
            state=h,
            input_gradients=g_x.clone() if wrt_inputs else None,
        )


def _assemble(model, g_rec, g_read) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    out, offset = {}, 0
    pieces = {}
    for name in model.recurrent_names:
        size = params[name].numel()
        pieces[name] = g_rec[offset : offset + size].reshape(params[name].shape).clone()
        offset += size
    for name in model.readout_names:
        pieces[name] = g_read[name].clone()
    for name, p in params.items():  # named_parameters order; unused parameters get zeros
        out[name] = pieces.get(name, torch.zeros_like(p.detach()))
    return out


def forward_sensitivity_gradients(
    model,
    inputs,
    targets,
    loss_fn: LossFn,
    *,
    callback: Callable[[SensitivityStep], None] | None = None,
    time_reduction: str = "auto",
) -> dict[str, torch.Tensor]:
    """Exact gradient ``{parameter name: dL/dparameter}`` computed forward in time.

    ``L = loss_fn(model(inputs), targets)`` must be the sum or the mean over
    steps of per-step losses (checked; see the module docstring). Equal, to
    rounding, to :func:`bptt_gradients`. ``callback(step)`` is called after
    every step with a :class:`SensitivityStep` holding the running gradient;
    use :func:`forward_sensitivity_steps` for a generator instead. Parameter
    ``.grad`` attributes are not touched.
    """
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(step) or None, got {type(callback).__name__}")
    last = None
    for step in forward_sensitivity_steps(model, inputs, targets, loss_fn, time_reduction=time_reduction):
        if callback is not None:
            callback(step)
        last = step
    return last.gradients


def _grads_dict(model, loss) -> dict[str, torch.Tensor]:
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {n: (torch.zeros_like(p) if g is None else g) for n, p, g in zip(names, params, grads)}


def bptt_gradients(model, inputs, targets, loss_fn: LossFn) -> dict[str, torch.Tensor]:
    """Reference gradient: ``loss_fn(model(inputs), targets)`` differentiated by autograd.

    Any scalar loss works here (no decomposition needed). Returns
    ``{parameter name: gradient}`` without touching ``.grad`` attributes.
    """
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    with torch.enable_grad():
        loss = _scalar_loss(loss_fn(model(inputs), targets), "on the whole sequence")
        return _grads_dict(model, loss)


def _truncated_loss(model, inputs, targets, loss_fn, k, variant, time_reduction):
    """The surrogate loss whose autograd gradient is the TBPTT(k) gradient."""
    T = inputs.shape[0]
    batch = inputs.shape[1] if inputs.ndim == 3 else None
    if variant == "chunked":
        h = model.initial_state(batch)
        outputs = []
        for t in range(T):
            if t > 0 and t % k == 0:
                h = h.detach()
            params = model.effective_parameters(t)
            h = model.cell(h, inputs[t], params)
            outputs.append(model.readout(h, params))
        return _scalar_loss(loss_fn(torch.stack(outputs), targets), "on the whole sequence")
    # sliding window: l_t sees the last k updates, starting from the detached h_(t-k)
    scale = step_loss_scale(model, inputs, targets, loss_fn, time_reduction)
    start_states = [model.initial_state(batch)]
    if k < T:
        start_states += list(model.states(inputs).detach())
    params = [model.effective_parameters(t) for t in range(T)]
    total = 0.0
    for t in range(T):
        start = max(0, t - k + 1)
        h = start_states[start].detach() if k < T else start_states[0]
        for s in range(start, t + 1):
            h = model.cell(h, inputs[s], params[s])
        y = model.readout(h, params[t])
        total = total + scale * _scalar_loss(loss_fn(y.unsqueeze(0), targets[t : t + 1]), f"on step {t}")
    return total


def truncated_bptt_gradients(
    model,
    inputs,
    targets,
    loss_fn: LossFn,
    k: int,
    *,
    variant: str = "sliding",
    time_reduction: str = "auto",
) -> dict[str, torch.Tensor]:
    """Truncated BPTT with window ``k`` (biased unless ``k >= T``).

    ``variant="sliding"``: for every step ``t`` the gradient of ``l_t`` flows
    back through ``h_t, ..., h_(t-k+1)`` only (``h_(t-k)`` is held constant).
    This needs the per-step losses, so ``loss_fn`` must decompose over steps
    as for :func:`forward_sensitivity_gradients`. Cost O(T k) cell
    evaluations. ``variant="chunked"``: the state is detached every ``k``
    steps (at ``t = k, 2k, ...``) and ``l_t`` reaches back to the start of
    its chunk; any scalar loss works. Both equal the exact gradient for
    ``k >= T``.
    """
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    k = check_int("k", k, minimum=1)
    variant = check_choice("variant", variant, ("sliding", "chunked"))
    with torch.enable_grad():
        loss = _truncated_loss(model, inputs, targets, loss_fn, k, variant, time_reduction)
        return _grads_dict(model, loss)


def input_gradients(
    model,
    inputs,
    targets,
    loss_fn: LossFn,
    method: str = "bptt",
    k: int | None = None,
    *,
    variant: str = "sliding",
    time_reduction: str = "auto",
) -> torch.Tensor:
    """Gradient of the loss with respect to every input ``x_tau`` (shape of ``inputs``).

    ``method``: ``"bptt"`` (exact, autograd), ``"forward"`` (exact, forward
    sensitivity with each input treated as a parameter used at one step) or
    ``"tbptt"`` (truncated with window ``k`` and ``variant``, as in
    :func:`truncated_bptt_gradients`). With the sliding window, ``dl_t/dx_tau``
    is exactly zero for ``tau <= t - k``.
    """
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    method = check_choice("method", method, ("bptt", "forward", "tbptt"))
    if method == "tbptt":
        if k is None:
            raise ValueError("method='tbptt' needs the truncation window k (an integer >= 1)")
        k = check_int("k", k, minimum=1)
        variant = check_choice("variant", variant, ("sliding", "chunked"))
    elif k is not None:
        raise ValueError(f"k is only used with method='tbptt', got method={method!r} and k={k!r}")
    if method == "forward":
        steps = forward_sensitivity_steps(
            model, inputs, targets, loss_fn, time_reduction=time_reduction, wrt_inputs=True
        )
        last = None
        for last in steps:
            pass
        return last.input_gradients
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if method == "bptt":
            loss = _scalar_loss(loss_fn(model(x), targets), "on the whole sequence")
        else:
            loss = _truncated_loss(model, x, targets, loss_fn, k, variant, time_reduction)
        (g,) = torch.autograd.grad(loss, x, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def relative_error(a, b) -> float:
    """``||a - b|| / ||b||`` over all entries; ``a`` and ``b`` are tensors or gradient dicts.

    Gradient dicts must have the same keys. Returns ``0.0`` when both are zero.
    """
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            raise TypeError("relative_error needs two tensors or two gradient dicts")
        if set(a) != set(b):
            raise ValueError(f"the gradient dicts have different keys: {sorted(a)} vs {sorted(b)}")
        a = torch.cat([a[n].reshape(-1) for n in sorted(a)])
        b = torch.cat([b[n].reshape(-1) for n in sorted(b)])
    a = check_tensor("a", a)
    b = check_tensor("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    num = float(torch.linalg.vector_norm((a - b).double()))
    den = float(torch.linalg.vector_norm(b.double()))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


# --------------------------------------------------------------------------- #
# Costs
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class CostMeasurement:
    """Result of :func:`measure_cost`.

    ``seconds`` is the best (minimum) wall time of one full gradient
    computation over ``T`` steps, ``seconds_per_step = seconds / T``. ``memory_bytes`` is the
    analytic count of :func:`stored_bytes` (not a measured peak).
    """

    method: str
    hidden_size: int
    T: int
    n_params: int
    seconds: float
    seconds_per_step: float
    memory_bytes: int


def stored_bytes(
    method: str,
    hidden_size: int,
    T: int,
    *,
    input_size: int = 4,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
) -> int:
    """Bytes of the tensors a method keeps while it runs (analytic count for :class:`TanhRNN`).

    ``"bptt"``: the ``T`` hidden states ``[T, B, n]`` that the backward pass
    needs (autograd keeps a few more per-step tensors of the same size, so the
    real figure is a small multiple; it grows linearly in ``T`` either way).
    ``"forward"``: the sensitivity ``S`` ``[B, n, P]`` with
    ``P = n * input_size + n^2 + n``, independent of ``T``.
    """
    method = check_choice("method", method, ("forward", "bptt"))
    n = check_int("hidden_size", hidden_size, minimum=1)
    T = check_int("T", T, minimum=1)
    input_size = check_int("input_size", input_size, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if method == "bptt":
        return T * batch * n * itemsize
    P = n * input_size + n * n + n
    return batch * n * P * itemsize


def _live_storages() -> dict[int, int]:
    """Storages of every tensor reachable from Python right now: ``{data_ptr: nbytes}``."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance on some deprecated torch objects warns
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
                    storage = obj.untyped_storage()
                    out[storage.data_ptr()] = storage.nbytes()
            except Exception:  # pragma: no cover - objects that refuse to be inspected  # noqa: BLE001
                continue
    return out


def measured_memory(method: str, model, inputs, targets, loss_fn: LossFn, *, samples: int = 6) -> int:
    """Bytes of tensor memory a gradient method holds while it runs, *measured* (not counted from a formula).

    Only storages that did not exist before the call count, each once.

    * ``"bptt"``: the tensors autograd keeps between the forward and the
      backward pass, caught with ``torch.autograd.graph.saved_tensors_hooks``
      while the loss is computed (everything the backward pass will need).
    * ``"forward"``: forward sensitivity run step by step; at ``samples``
      evenly spaced steps the garbage collector's list of live tensors is
      scanned (``S_t``, the state, the running gradient and whatever else the
      run holds), and the largest total is returned.

    Both are measured on the CPU. Notebook 13 plots them against ``T``.
    """
    method = check_choice("method", method, ("forward", "bptt"))
    model, inputs, targets = _check_problem(model, inputs, targets, loss_fn)
    samples = check_int("samples", samples, minimum=1)
    gc.collect()
    before = _live_storages()
    if method == "bptt":
        saved: dict[int, int] = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in before:
                saved[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = loss_fn(model(inputs), targets)
        del loss
        return int(sum(saved.values()))
    T = inputs.shape[0]
    marks = {int(round(v)) for v in np.linspace(0, T - 1, samples)}
    peak = 0
    for step in forward_sensitivity_steps(model, inputs, targets, loss_fn):
        if step.t in marks:
            live = _live_storages()
            peak = max(peak, sum(b for ptr, b in live.items() if ptr not in before))
    return int(peak)


def measure_cost(
    method: str,
    hidden_size: int,
    T: int,
    repeats: int = 3,
    *,
    input_size: int = 4,
    output_size: int = 2,
    batch: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> CostMeasurement:
    """Time one full gradient of a random :class:`TanhRNN` problem and count its memory.

    ``method`` is ``"forward"`` (forward sensitivity, with the decomposition
    check skipped) or ``"bptt"`` (autograd). The problem is a summed MSE over
    all steps on random inputs and targets drawn from ``seed``. The time is
    the minimum of ``repeats`` runs after one untimed warm-up: on a shared
    machine, interference only ever adds time, so the minimum is the
    steadiest estimate (the convention of ``timeit``).
    """
    method = check_choice("method", method, ("forward", "bptt"))
    hidden_size, T, repeats, input_size, output_size = check_ints(
        minimum=1, hidden_size=hidden_size, T=T, repeats=repeats, input_size=input_size, output_size=output_size
    )
    seed = check_int("seed", seed, minimum=0)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    gen = torch.Generator().manual_seed(seed)  # the whole problem comes from seed; the global stream is untouched
    model = TanhRNN(input_size, hidden_size, output_size, dtype=dtype, generator=gen)
    lead = (T,) if batch is None else (T, batch)
    inputs = torch.randn(*lead, input_size, generator=gen, dtype=dtype)
    targets = torch.randn(*lead, output_size, generator=gen, dtype=dtype)
    loss_fn = nn.MSELoss(reduction="sum")

    def run():
        if method == "forward":
            forward_sensitivity_gradients(model, inputs, targets, loss_fn, time_reduction="sum")
        else:
            bptt_gradients(model, inputs, targets, loss_fn)

    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    seconds = min(times)
    return CostMeasurement(
        method=method,
        hidden_size=hidden_size,
        T=T,
        n_params=sum(p.numel() for p in model.parameters()),
        seconds=seconds,
        seconds_per_step=seconds / T,
        memory_bytes=stored_bytes(method, hidden_size, T, input_size=input_size, batch=batch or 1, dtype=dtype),
    )
