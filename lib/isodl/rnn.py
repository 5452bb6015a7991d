"""Exact online gradients for recurrent networks: forward sensitivity versus BPTT.

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
    masked losses such as :func:`recall_loss`. With the default
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

Parameters that change between steps (drift)
    Every model can add a fixed per-step increment ``Delta`` to any parameter:
    step ``t`` uses ``theta_t = theta + t * Delta`` (``t = 0`` for the first
    step, so the first step uses ``theta`` itself). Set it with
    :meth:`RecurrentModel.set_drift` or :meth:`RecurrentModel.random_drift`.
    Because ``d theta_t / d theta`` is the identity, the gradient with respect
    to the ``nn.Parameter`` ``theta`` is the gradient with respect to a shared
    offset added to every ``theta_t`` -- the quantity the forward sensitivity
    computes when it evaluates ``J_t`` and ``F_t`` at each step's own
    ``theta_t``. ``loss.backward()`` on the model is therefore the autograd
    reference, with no extra machinery.

Interacting loops
    :class:`CoupledTanhRNN` has two states that read each other. Its Jacobian
    is assembled from blocks, ``[[dA/dA, dA/dB], [dB/dA, dB/dB]]``, and its
    ``F`` is the stack ``[dA/dtheta; dB/dtheta]``. With
    ``coupling="same_step"`` loop B reads A's *new* state; the B row then
    uses the freshly updated ``S^A_t`` (see :meth:`CoupledTanhRNN.cell_jacobians`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .validate import check_choice, check_float, check_int, check_tensor

__all__ = [
    "RecurrentModel",
    "TanhRNN",
    "CoupledTanhRNN",
    "StepJacobians",
    "SensitivityStep",
    "forward_sensitivity_steps",
    "forward_sensitivity_gradients",
    "bptt_gradients",
    "truncated_bptt_gradients",
    "input_gradients",
    "step_loss_scale",
    "relative_error",
    "IGNORE_INDEX",
    "recall_task",
    "recall_loss",
    "RECALL_METHODS",
    "train_recall",
    "CostMeasurement",
    "stored_bytes",
    "measure_cost",
]

#: Target value meaning "no loss at this step" in :func:`recall_task`.
IGNORE_INDEX = -100

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #


@dataclass
class StepJacobians:
    """Everything one step of the recurrence contributes to the sensitivity.

    Shapes (a leading batch dimension ``B`` is present when the inputs are
    batched): ``state`` ``[B, n]``; ``J_h = dh_t/dh_(t-1)`` ``[B, n, n]``;
    ``J_theta = dh_t/dtheta`` ``[B, n, P]`` with columns in the order of
    :attr:`RecurrentModel.recurrent_names`, each parameter flattened row-major;
    ``J_x = dh_t/dx_t`` ``[B, n, input_size]``.
    """

    state: torch.Tensor
    J_h: torch.Tensor
    J_theta: torch.Tensor
    J_x: torch.Tensor


class RecurrentModel(nn.Module):
    """Base class: ``h_t = cell(h_(t-1), x_t; theta_t)``, ``y_t = readout(h_t; theta_t)``.

    Subclasses create their parameters, set :attr:`input_size`,
    :attr:`state_size`, :attr:`output_size`, :attr:`recurrent_names` (the
    parameters the cell uses, in the column order of the sensitivity) and
    :attr:`readout_names` (the parameters only the readout uses), implement
    :meth:`cell` and :meth:`readout`, and call :meth:`_init_drift` at the end
    of ``__init__``. :meth:`cell_jacobians` has a generic ``torch.func``
    implementation; the course's models override it with the analytic one.
    """

    input_size: int
    state_size: int
    output_size: int
    recurrent_names: tuple[str, ...]
    readout_names: tuple[str, ...]

    # ----- drift -------------------------------------------------------- #
    def _init_drift(self) -> None:
        for name, p in self.named_parameters():
            self.register_buffer(self._drift_key(name), torch.zeros_like(p), persistent=False)
        self._has_drift = False

    @staticmethod
    def _drift_key(name: str) -> str:
        return "drift_" + name.replace(".", "_")

    @property
    def has_drift(self) -> bool:
        """True when some parameter changes between steps."""
        return self._has_drift

    def drift(self, name: str) -> torch.Tensor:
        """The per-step increment ``Delta`` of parameter ``name`` (zeros if none)."""
        names = [n for n, _ in self.named_parameters()]
        if name not in names:
            raise ValueError(f"unknown parameter {name!r}; expected one of {names}")
        return getattr(self, self._drift_key(name))

    def set_drift(self, **deltas) -> RecurrentModel:
        """Make parameters change between steps: step ``t`` uses ``theta + t * Delta``.

        ``model.set_drift(W_hh=delta)`` sets the increment of ``W_hh``; the
        others keep theirs (zero unless set before). ``Delta`` must have the
        parameter's shape; it is stored as a buffer, so ``model.double()`` and
        ``model.to(device)`` convert it too. Returns the model.
        """
        params = dict(self.named_parameters())
        for name, delta in deltas.items():
            if name not in params:
                raise ValueError(f"unknown parameter {name!r} for set_drift; expected one of {sorted(params)}")
            p = params[name]
            delta = check_tensor(f"drift for {name}", delta, shape=tuple(p.shape), floating=True, finite=True)
            getattr(self, self._drift_key(name)).copy_(delta.detach())
        self._has_drift = any(bool(getattr(self, self._drift_key(n)).abs().sum() > 0) for n in params)
        return self

    def random_drift(self, scale: float, seed: int = 0, names=None) -> RecurrentModel:
        """Set a random Gaussian increment of standard deviation ``scale`` for ``names``.

        ``names`` defaults to every parameter. The draw uses its own generator
        seeded with ``seed``, so it does not disturb the global random state.
        """
        scale = check_float("scale", scale, minimum=0.0)
        seed = check_int("seed", seed, minimum=0)
        params = dict(self.named_parameters())
        names = list(params) if names is None else list(names)
        gen = torch.Generator().manual_seed(seed)
        deltas = {}
        for name in names:
            if name not in params:
                raise ValueError(f"unknown parameter {name!r} for random_drift; expected one of {sorted(params)}")
            p = params[name]
            deltas[name] = (scale * torch.randn(p.shape, generator=gen, dtype=torch.float64)).to(p)
        return self.set_drift(**deltas)

    def clear_drift(self) -> RecurrentModel:
        """Remove all drift: every step uses the same parameters again."""
        for name, _ in self.named_parameters():
            getattr(self, self._drift_key(name)).zero_()
        self._has_drift = False
        return self

    def effective_parameters(self, t: int, names=None) -> dict[str, torch.Tensor]:
        """The parameters used at step ``t`` (0-based): ``theta + t * Delta``.

        Without drift these are the ``nn.Parameter`` objects themselves. The
        result stays connected to the parameters for autograd, so the
        gradient of anything computed from it is the gradient with respect to
        a shared offset added at every step.
        """
        params = dict(self.named_parameters())
        if names is not None:
            params = {n: params[n] for n in names}
        if not self._has_drift or t == 0:
            return params
        return {n: p + t * getattr(self, self._drift_key(n)) for n, p in params.items()}

    # ----- recurrence ----------------------------------------------------- #
    def cell(self, h_prev: torch.Tensor, x_t: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def readout(self, h: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def initial_state(self, batch: int | None = None) -> torch.Tensor:
        """The zero state ``h_(-1)``: shape ``[n]``, or ``[batch, n]``."""
        p = next(self.parameters())
        shape = (self.state_size,) if batch is None else (batch, self.state_size)
        return torch.zeros(shape, dtype=p.dtype, device=p.device)

    @property
    def n_recurrent_params(self) -> int:
        """Number of columns of the sensitivity matrix ``S_t``."""
        params = dict(self.named_parameters())
        return sum(params[n].numel() for n in self.recurrent_names)

    def cell_jacobians(self, h_prev, x_t, params) -> StepJacobians:
        """One step of the cell and its Jacobians, by ``torch.func.jacrev``.

        A generic fallback for subclasses that do not derive their Jacobians
        by hand (slower). ``params`` should be detached tensors.
        """
        names = self.recurrent_names
        shapes = [tuple(params[n].shape) for n in names]
        flat = torch.cat([params[n].detach().reshape(-1) for n in names])
        others = {k: v.detach() for k, v in params.items() if k not in names}

        def step(h, x, theta):
            p = dict(others)
            offset = 0
            for n, shape in zip(names, shapes):
                size = math.prod(shape)
                p[n] = theta[offset : offset + size].reshape(shape)
                offset += size
            return self.cell(h, x, p)

        jac = torch.func.jacrev(step, argnums=(0, 1, 2))
        if h_prev.ndim == 2:
            jac = torch.func.vmap(jac, in_dims=(0, 0, None))
        J_h, J_x, J_theta = jac(h_prev.detach(), x_t.detach(), flat)
        with torch.no_grad():
            state = step(h_prev, x_t, flat)
        return StepJacobians(state=state, J_h=J_h, J_theta=J_theta, J_x=J_x)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the whole sequence: ``[T, input_size] -> [T, output_size]``.

        Batched inputs ``[T, B, input_size]`` give ``[T, B, output_size]``.
        """
        inputs = _check_inputs(self, inputs)
        batch = None if inputs.ndim == 2 else inputs.shape[1]
        h = self.initial_state(batch)
        outputs = []
        for t in range(inputs.shape[0]):
            params = self.effective_parameters(t)
            h = self.cell(h, inputs[t], params)
            outputs.append(self.readout(h, params))
        return torch.stack(outputs)

    def states(self, inputs: torch.Tensor) -> torch.Tensor:
        """All states ``h_0 ... h_(T-1)`` (without the zero initial state), no gradient."""
        inputs = _check_inputs(self, inputs)
        batch = None if inputs.ndim == 2 else inputs.shape[1]
        with torch.no_grad():
            h = self.initial_state(batch)
            out = []
            for t in range(inputs.shape[0]):
                h = self.cell(h, inputs[t], self.effective_parameters(t))
                out.append(h)
        return torch.stack(out)


def _init_uniform(*shape, bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


def _param_block(d: torch.Tensor, v: torch.Tensor, rows: int) -> torch.Tensor:
    """``d_i * delta_ij * v_k`` flattened to ``[..., rows, rows * len(v)]``.

    The derivative of ``tanh(W v + ...)`` (with ``d = 1 - h^2``) with respect
    to the entries of ``W`` (row-major): row ``i`` of the state depends only
    on row ``i`` of ``W``.
    """
    eye = torch.eye(rows, dtype=d.dtype, device=d.device)
    block = d[..., :, None, None] * eye[:, :, None] * v[..., None, None, :]
    return block.reshape(*d.shape[:-1], rows, rows * v.shape[-1])


class TanhRNN(RecurrentModel):
    """Single-loop tanh RNN.

    ``h_t = tanh(W_hh h_(t-1) + W_xh x_t + b_h)``, ``y_t = W_hy h_t + b_y``,
    ``h_(-1) = 0``. Parameters: ``W_xh`` ``[n, input_size]``, ``W_hh``
    ``[n, n]``, ``b_h`` ``[n]`` (recurrent, in this column order in ``S_t``)
    and ``W_hy`` ``[output_size, n]``, ``b_y`` ``[output_size]`` (readout).
    All are initialised uniformly in ``+-1/sqrt(n)`` like ``nn.RNN``; pass
    ``recurrent_gain`` to rescale ``W_hh`` (``W_hh`` gets a uniform draw
    in ``+-recurrent_gain * sqrt(3/n)``, spectral radius about
    ``recurrent_gain``), which helps long-memory demos.

    ``drift`` is an optional dict ``{name: Delta}`` passed to
    :meth:`RecurrentModel.set_drift`: step ``t`` then uses ``theta + t * Delta``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        recurrent_gain: float | None = None,
        drift: dict | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.state_size = self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.output_size = check_int("output_size", output_size, minimum=1)
        n = self.hidden_size
        bound = 1.0 / math.sqrt(n)
        self.W_xh = _init_uniform(n, self.input_size, bound=bound)
        if recurrent_gain is None:
            self.W_hh = _init_uniform(n, n, bound=bound)
        else:
            gain = check_float("recurrent_gain", recurrent_gain, minimum=0.0)
            self.W_hh = _init_uniform(n, n, bound=gain * math.sqrt(3.0 / n))
        self.b_h = _init_uniform(n, bound=bound)
        self.W_hy = _init_uniform(self.output_size, n, bound=bound)
        self.b_y = _init_uniform(self.output_size, bound=bound)
        self.recurrent_names = ("W_xh", "W_hh", "b_h")
        self.readout_names = ("W_hy", "b_y")
        if dtype is not None:
            self.to(dtype)
        self._init_drift()
        if drift is not None:
            if not isinstance(drift, dict):
                raise TypeError(f"drift must be a dict {{parameter name: per-step increment}} or None, got {type(drift).__name__}")
            self.set_drift(**drift)

    def cell(self, h_prev, x_t, params):
        return torch.tanh(h_prev @ params["W_hh"].T + x_t @ params["W_xh"].T + params["b_h"])

    def readout(self, h, params):
        return h @ params["W_hy"].T + params["b_y"]

    def cell_jacobians(self, h_prev, x_t, params) -> StepJacobians:
        """Analytic Jacobians: with ``d = 1 - h_t^2``, ``J_h = diag(d) W_hh``,
        ``J_x = diag(d) W_xh`` and ``F_t = diag(d) [I (x) x_t^T, I (x) h_(t-1)^T, I]``."""
        W_hh, W_xh = params["W_hh"], params["W_xh"]
        n = self.hidden_size
        h = torch.tanh(h_prev @ W_hh.T + x_t @ W_xh.T + params["b_h"])
        d = 1.0 - h * h
        J_h = d[..., :, None] * W_hh
        J_x = d[..., :, None] * W_xh
        J_theta = torch.cat([_param_block(d, x_t, n), _param_block(d, h_prev, n), torch.diag_embed(d)], dim=-1)
        return StepJacobians(state=h, J_h=J_h, J_theta=J_theta, J_x=J_x)


class CoupledTanhRNN(RecurrentModel):
    """Two interacting tanh loops A and B that read each other's state.

    ``coupling="previous"`` (default)::

        a_t = tanh(W_aa a_(t-1) + W_ab b_(t-1) + W_xa x_t + b_a)
        b_t = tanh(W_bb b_(t-1) + W_ba a_(t-1) + W_xb x_t + b_b)

    ``coupling="same_step"``: B reads A's new state, ``W_ba a_t`` instead of
    ``W_ba a_(t-1)``, so A must be updated first. The output is read from
    loop B only, ``y_t = W_hy b_t + b_y``, so A's parameters reach the loss
    only through the coupling. The state is the stack ``h_t = [a_t; b_t]``
    (``state_size = size_a + size_b``) and the sensitivity the stack
    ``[S^A_t; S^B_t]``.
    """

    def __init__(
        self,
        input_size: int,
        size_a: int,
        size_b: int,
        output_size: int,
        *,
        coupling: str = "previous",
        drift: dict | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.size_a = check_int("size_a", size_a, minimum=1)
        self.size_b = check_int("size_b", size_b, minimum=1)
        self.output_size = check_int("output_size", output_size, minimum=1)
        self.coupling = check_choice("coupling", coupling, ("previous", "same_step"))
        self.state_size = self.size_a + self.size_b
        na, nb, m = self.size_a, self.size_b, self.input_size
        ba, bb = 1.0 / math.sqrt(na), 1.0 / math.sqrt(nb)
        bn = 1.0 / math.sqrt(na + nb)
        self.W_xa = _init_uniform(na, m, bound=ba)
        self.W_aa = _init_uniform(na, na, bound=ba)
        self.W_ab = _init_uniform(na, nb, bound=bn)
        self.b_a = _init_uniform(na, bound=ba)
        self.W_xb = _init_uniform(nb, m, bound=bb)
        self.W_bb = _init_uniform(nb, nb, bound=bb)
        self.W_ba = _init_uniform(nb, na, bound=bn)
        self.b_b = _init_uniform(nb, bound=bb)
        self.W_hy = _init_uniform(self.output_size, nb, bound=bb)
        self.b_y = _init_uniform(self.output_size, bound=bb)
        self.recurrent_names = ("W_xa", "W_aa", "W_ab", "b_a", "W_xb", "W_bb", "W_ba", "b_b")
        self.readout_names = ("W_hy", "b_y")
        if dtype is not None:
            self.to(dtype)
        self._init_drift()
        if drift is not None:
            if not isinstance(drift, dict):
                raise TypeError(f"drift must be a dict {{parameter name: per-step increment}} or None, got {type(drift).__name__}")
            self.set_drift(**drift)

    def _split(self, h):
        return h[..., : self.size_a], h[..., self.size_a :]

    def cell(self, h_prev, x_t, params):
        p = params
        a_prev, b_prev = self._split(h_prev)
        a = torch.tanh(a_prev @ p["W_aa"].T + b_prev @ p["W_ab"].T + x_t @ p["W_xa"].T + p["b_a"])
        a_read = a if self.coupling == "same_step" else a_prev
        b = torch.tanh(b_prev @ p["W_bb"].T + a_read @ p["W_ba"].T + x_t @ p["W_xb"].T + p["b_b"])
        return torch.cat([a, b], dim=-1)

    def readout(self, h, params):
        return self._split(h)[1] @ params["W_hy"].T + params["b_y"]

    def jacobian_blocks(self, h_prev, x_t, params) -> dict[str, torch.Tensor]:
        """The blocks of one step, before any same-step composition.

        Keys: ``a``, ``b`` (new states); ``AA = da_t/da_(t-1)``,
        ``AB = da_t/db_(t-1)``, ``BB = db_t/db_(t-1)``, ``BA = db_t/d(a read by B)``
        (``a_(t-1)`` or ``a_t``); ``FA``, ``FB`` (``[size, P]``, zero in the
        other loop's columns); ``XA``, ``XB`` (input Jacobians).
        """
        p = params
        na, nb = self.size_a, self.size_b
        a_prev, b_prev = self._split(h_prev)
        a = torch.tanh(a_prev @ p["W_aa"].T + b_prev @ p["W_ab"].T + x_t @ p["W_xa"].T + p["b_a"])
        a_read = a if self.coupling == "same_step" else a_prev
        b = torch.tanh(b_prev @ p["W_bb"].T + a_read @ p["W_ba"].T + x_t @ p["W_xb"].T + p["b_b"])
        da, db = 1.0 - a * a, 1.0 - b * b
        zeros_a = lambda cols: da.new_zeros(*da.shape[:-1], na, cols)  # noqa: E731
        zeros_b = lambda cols: db.new_zeros(*db.shape[:-1], nb, cols)  # noqa: E731
        cols_a = sum(p[n].numel() for n in ("W_xa", "W_aa", "W_ab", "b_a"))
        cols_b = sum(p[n].numel() for n in ("W_xb", "W_bb", "W_ba", "b_b"))
        FA = torch.cat(
            [_param_block(da, x_t, na), _param_block(da, a_prev, na), _param_block(da, b_prev, na),
             torch.diag_embed(da), zeros_a(cols_b)],
            dim=-1,
        )
        FB = torch.cat(
            [zeros_b(cols_a), _param_block(db, x_t, nb), _param_block(db, b_prev, nb), _param_block(db, a_read, nb),
             torch.diag_embed(db)],
            dim=-1,
        )
        return {
            "a": a, "b": b,
            "AA": da[..., :, None] * p["W_aa"], "AB": da[..., :, None] * p["W_ab"],
            "BA": db[..., :, None] * p["W_ba"], "BB": db[..., :, None] * p["W_bb"],
            "FA": FA, "FB": FB,
            "XA": da[..., :, None] * p["W_xa"], "XB": db[..., :, None] * p["W_xb"],
        }

    def cell_jacobians(self, h_prev, x_t, params) -> StepJacobians:
        """Block form of the one-step Jacobians.

        ``coupling="previous"``: ``J = [[AA, AB], [BA, BB]]``, ``F = [FA; FB]``.

        ``coupling="same_step"``: B reads ``a_t``, so its row is composed with
        A's fresh update. Writing ``C = BA``, the B row of the recursion is
        ``S^B_t = BB S^B_(t-1) + C S^A_t + FB`` with the *new* ``S^A_t =
        AA S^A_(t-1) + AB S^B_(t-1) + FA``; in block form
        ``J = [[AA, AB], [C AA, BB + C AB]]`` and ``F = [FA; FB + C FA]``.
        Using the stale ``S^A_(t-1)`` in the B row would be wrong.
        """
        k = self.jacobian_blocks(h_prev, x_t, params)
        AA, AB, BA, BB = k["AA"], k["AB"], k["BA"], k["BB"]
        FA, FB, XA, XB = k["FA"], k["FB"], k["XA"], k["XB"]
        if self.coupling == "same_step":
            C = BA
            BA, BB = C @ AA, BB + C @ AB
            FB, XB = FB + C @ FA, XB + C @ XA
        J_h = torch.cat([torch.cat([AA, AB], dim=-1), torch.cat([BA, BB], dim=-1)], dim=-2)
        state = torch.cat([k["a"], k["b"]], dim=-1)
        return StepJacobians(state=state, J_h=J_h, J_theta=torch.cat([FA, FB], dim=-2), J_x=torch.cat([XA, XB], dim=-2))


# --------------------------------------------------------------------------- #
# Validation and loss decomposition
# --------------------------------------------------------------------------- #


def _check_model(model) -> RecurrentModel:
    if not isinstance(model, RecurrentModel):
        raise TypeError(
            f"model must be an isodl.rnn.RecurrentModel (e.g. TanhRNN or CoupledTanhRNN), got {type(model).__name__}"
        )
    return model


def _check_inputs(model: RecurrentModel, inputs) -> torch.Tensor:
    inputs = check_tensor("inputs", inputs, floating=True)
    if inputs.ndim not in (2, 3):
        raise ValueError(
            "inputs must have shape [T, input_size] or [T, B, input_size] (2 or 3 dimensions), "
            f"got shape {list(inputs.shape)} ({inputs.ndim} dimensions)"
        )
    if inputs.shape[0] < 1:
        raise ValueError(f"inputs must contain at least one time step (T >= 1), got an empty sequence with shape {list(inputs.shape)}")
    if inputs.ndim == 3 and inputs.shape[1] < 1:
        raise ValueError(f"inputs must contain at least one sequence (B >= 1), got shape {list(inputs.shape)}")
    if inputs.shape[-1] != model.input_size:
        raise ValueError(
            f"inputs must have input_size={model.input_size} features in the last dimension, got shape {list(inputs.shape)}"
        )
    p = next(model.parameters())
    if inputs.dtype != p.dtype:
        raise TypeError(
            f"inputs has dtype {inputs.dtype} but the model's parameters are {p.dtype}; "
            f"convert one of them (inputs.to({p.dtype}) or model.to({inputs.dtype}))"
        )
    return inputs


def _check_problem(model, inputs, targets, loss_fn):
    model = _check_model(model)
    inputs = _check_inputs(model, inputs)
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
            parts = [float(_scalar_loss(loss_fn(probe[t : t + 1], targets[t : t + 1]), f"on step {t}")) for t in range(T)]
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
        steps = forward_sensitivity_steps(model, inputs, targets, loss_fn, time_reduction=time_reduction, wrt_inputs=True)
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
# Recall task
# --------------------------------------------------------------------------- #


def recall_task(
    T: int,
    n_symbols: int,
    seed: int = 0,
    *,
    batch: int | None = None,
    noise: float = 0.0,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A long-term dependency: report at step ``T`` the symbol shown at step 0.

    The sequence has ``T + 1`` steps, ``t = 0 ... T``, and ``n_symbols + 1``
    input channels. Step 0 carries the symbol one-hot in the first
    ``n_symbols`` channels; step ``T`` raises the last channel (the "recall
    now" cue); the steps in between are blank, plus Gaussian noise of
    standard deviation ``noise`` on every channel at every step if ``noise >
    0``. Targets are class indices: the symbol at step ``T`` and
    :data:`IGNORE_INDEX` elsewhere, so with :func:`recall_loss` the loss sits
    at step ``T`` only.

    Returns ``(inputs, targets)``: ``[T+1, n_symbols+1]`` and ``[T+1]``, or
    ``[T+1, B, n_symbols+1]`` and ``[T+1, B]`` with ``batch=B``. The draw uses
    its own generator seeded with ``seed``.
    """
    T = check_int("T", T, minimum=1)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    noise = check_float("noise", noise, minimum=0.0)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    gen = torch.Generator().manual_seed(seed)
    B = 1 if batch is None else batch
    symbols = torch.randint(0, n_symbols, (B,), generator=gen)
    inputs = torch.zeros(T + 1, B, n_symbols + 1, dtype=torch.float64)
    inputs[0, torch.arange(B), symbols] = 1.0
    inputs[T, :, n_symbols] = 1.0
    if noise > 0:
        inputs += noise * torch.randn(inputs.shape, generator=gen, dtype=torch.float64)
    targets = torch.full((T + 1, B), IGNORE_INDEX, dtype=torch.long)
    targets[T] = symbols
    inputs = inputs.to(dtype)
    if batch is None:
        return inputs[:, 0], targets[:, 0]
    return inputs, targets


def recall_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the steps with a target, averaged over sequences.

    ``outputs`` ``[T, C]`` or ``[T, B, C]`` (logits), ``targets`` ``[T]`` or
    ``[T, B]`` with :data:`IGNORE_INDEX` where there is no loss. It
    decomposes exactly over steps (a step without a target adds 0), so it
    works with every gradient method of this module.
    """
    outputs = check_tensor("outputs", outputs, ndim=(2, 3), floating=True)
    targets = check_tensor("targets", targets, ndim=outputs.ndim - 1)
    if tuple(targets.shape) != tuple(outputs.shape[:-1]):
        raise ValueError(
            f"targets must have shape {list(outputs.shape[:-1])} (outputs without the class dimension), "
            f"got {list(targets.shape)}"
        )
    n_seq = 1 if outputs.ndim == 2 else outputs.shape[1]
    total = F.cross_entropy(
        outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1).long(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return total / n_seq


#: Gradient methods :func:`train_recall` can train with.
RECALL_METHODS = ("forward", "bptt", "tbptt")


def train_recall(
    method: str,
    seed: int,
    *,
    updates: int = 300,
    delay: int = 20,
    n_symbols: int = 3,
    hidden_size: int = 16,
    batch: int = 16,
    lr: float = 0.02,
    k: int = 7,
    eval_every: int = 25,
    test_batch: int = 300,
    dtype: torch.dtype = torch.float64,
):
    """Train a fresh :class:`TanhRNN` on :func:`recall_task` with one gradient method (notebook 11).

    ``method`` is ``"forward"`` (exact forward sensitivity), ``"bptt"`` (exact,
    backward) or ``"tbptt"`` (chunked truncated BPTT with window ``k``). The
    gradient is handed to Adam (``lr``); every update draws a fresh batch of
    sequences, seeded by ``seed`` and the update number, so the three methods
    see exactly the same data for the same seed. The model's initial weights
    are fixed by ``seed`` as well.

    Returns ``(model, initial_weights, (updates_evaluated, test_accuracies))``:
    the test accuracy (on ``test_batch`` held-out sequences, answer at the
    last step) is recorded every ``eval_every`` updates and at the end.
    """
    method = check_choice("method", method, RECALL_METHODS)
    seed = check_int("seed", seed, minimum=0)
    updates = check_int("updates", updates, minimum=0)
    delay = check_int("delay", delay, minimum=1)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    k = check_int("k", k, minimum=1)
    eval_every = check_int("eval_every", eval_every, minimum=1)
    test_batch = check_int("test_batch", test_batch, minimum=1)
    torch.manual_seed(seed)
    net = TanhRNN(n_symbols + 1, hidden_size, n_symbols, dtype=dtype)
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    x_test, y_test = recall_task(delay, n_symbols, seed=10_000 * seed + 9_999, batch=test_batch, dtype=dtype)
    steps, accuracies = [], []
    for update in range(updates + 1):
        if update % eval_every == 0 or update == updates:
            with torch.no_grad():
                steps.append(update)
                accuracies.append(float((net(x_test)[-1].argmax(-1) == y_test[-1]).double().mean()))
        if update == updates:
            break
        x, y = recall_task(delay, n_symbols, seed=10_000 * seed + update, batch=batch, dtype=dtype)
        if method == "forward":
            grads = forward_sensitivity_gradients(net, x, y, recall_loss, time_reduction="sum")
        elif method == "bptt":
            grads = bptt_gradients(net, x, y, recall_loss)
        else:
            grads = truncated_bptt_gradients(net, x, y, recall_loss, k, variant="chunked")
        for name, p in net.named_parameters():
            p.grad = grads[name]
        optimiser.step()
    return net, initial, (steps, accuracies)


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
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    T = check_int("T", T, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    input_size = check_int("input_size", input_size, minimum=1)
    output_size = check_int("output_size", output_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = TanhRNN(input_size, hidden_size, output_size, dtype=dtype)
        lead = (T,) if batch is None else (T, batch)
        inputs = torch.randn(*lead, input_size, dtype=dtype)
        targets = torch.randn(*lead, output_size, dtype=dtype)
    finally:
        torch.random.set_rng_state(state)
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
