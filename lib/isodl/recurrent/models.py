"""Notebook 13: tanh RNNs (single and two coupled loops) with their step Jacobians.

The recurrent models of the course unit on Bird & Polivoda, "Backpropagation
Through Time For Networks With Long-Term Dependencies" (arXiv 2103.15589).
The code is the course's own, checked against ``torch.autograd``; none of it
reproduces numbers from the paper.

A recurrent model updates a state and reads an output from it::

    h_t = f(h_(t-1), x_t; theta_t),      y_t = g(h_t; theta_t),      h_(-1) = 0

(steps are numbered ``t = 0 ... T-1`` in the code). For every step,
:meth:`RecurrentModel.cell_jacobians` returns what the forward sensitivity of
:mod:`isodl.recurrent.sensitivity` needs (:class:`StepJacobians`: the new state,
``J_t = df/dh_(t-1)``, ``F_t = df/dtheta`` and ``df/dx_t``).

* :class:`TanhRNN` -- ``h_t = tanh(W_hh h_(t-1) + W_xh x_t + b_h)``,
  ``y_t = W_hy h_t + b_y``.
* :class:`CoupledTanhRNN` -- two interacting tanh loops (below).
* :data:`IGNORE_INDEX` -- the target meaning "no loss at this step" (used by
  :func:`isodl.recurrent.tasks.recall_task`); :data:`LossFn` -- the type of a
  loss ``loss_fn(outputs, targets)``.

Both models take ``generator=`` for their initial weights (uniform, like
``nn.RNN``), so a seeded model never touches the global random state.

Design decisions
----------------
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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from isodl.core.validate import check_choice, check_float, check_generator, check_int, check_tensor

__all__ = ["IGNORE_INDEX", "LossFn", "StepJacobians", "RecurrentModel", "TanhRNN", "CoupledTanhRNN", "check_inputs"]

#: Target value meaning "no loss at this step" in :func:`isodl.recurrent.tasks.recall_task`.
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

    def _finish_init(self, dtype: torch.dtype | None, drift: dict | None) -> None:
        """The end of the course models' ``__init__``: cast to ``dtype``, :meth:`_init_drift`, then set ``drift``."""
        if dtype is not None:
            self.to(dtype)
        self._init_drift()
        if drift is not None:
            if not isinstance(drift, dict):
                raise TypeError(
                    f"drift must be a dict {{parameter name: per-step increment}} or None, got {type(drift).__name__}"
                )
            self.set_drift(**drift)

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
        inputs = check_inputs(self, inputs)
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
        inputs = check_inputs(self, inputs)
        batch = None if inputs.ndim == 2 else inputs.shape[1]
        with torch.no_grad():
            h = self.initial_state(batch)
            out = []
            for t in range(inputs.shape[0]):
                h = self.cell(h, inputs[t], self.effective_parameters(t))
                out.append(h)
        return torch.stack(out)


def _init_uniform(*shape, bound: float, generator: torch.Generator | None = None) -> nn.Parameter:
    """A parameter drawn uniformly in ``+-bound``, from ``generator`` (``None``: the global random state)."""
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound, generator=generator))


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

    ``generator``: a ``torch.Generator`` to draw the initial weights from, in
    the order ``W_xh, W_hh, b_h, W_hy, b_y`` (``None``: the global random
    state). The draws are the same either way, so a generator seeded with
    ``s`` gives the weights ``torch.manual_seed(s)`` gives.
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
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.state_size = self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.output_size = check_int("output_size", output_size, minimum=1)
        gen = check_generator(generator)
        n = self.hidden_size
        bound = 1.0 / math.sqrt(n)
        self.W_xh = _init_uniform(n, self.input_size, bound=bound, generator=gen)
        if recurrent_gain is None:
            self.W_hh = _init_uniform(n, n, bound=bound, generator=gen)
        else:
            gain = check_float("recurrent_gain", recurrent_gain, minimum=0.0)
            self.W_hh = _init_uniform(n, n, bound=gain * math.sqrt(3.0 / n), generator=gen)
        self.b_h = _init_uniform(n, bound=bound, generator=gen)
        self.W_hy = _init_uniform(self.output_size, n, bound=bound, generator=gen)
        self.b_y = _init_uniform(self.output_size, bound=bound, generator=gen)
        self.recurrent_names = ("W_xh", "W_hh", "b_h")
        self.readout_names = ("W_hy", "b_y")
        self._finish_init(dtype, drift)

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
    ``[S^A_t; S^B_t]``. ``generator``: as for :class:`TanhRNN` (the weights
    are drawn in the order they are listed in ``named_parameters()``).
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
        generator: torch.Generator | None = None,
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
        gen = check_generator(generator)
        self.W_xa = _init_uniform(na, m, bound=ba, generator=gen)
        self.W_aa = _init_uniform(na, na, bound=ba, generator=gen)
        self.W_ab = _init_uniform(na, nb, bound=bn, generator=gen)
        self.b_a = _init_uniform(na, bound=ba, generator=gen)
        self.W_xb = _init_uniform(nb, m, bound=bb, generator=gen)
        self.W_bb = _init_uniform(nb, nb, bound=bb, generator=gen)
        self.W_ba = _init_uniform(nb, na, bound=bn, generator=gen)
        self.b_b = _init_uniform(nb, bound=bb, generator=gen)
        self.W_hy = _init_uniform(self.output_size, nb, bound=bb, generator=gen)
        self.b_y = _init_uniform(self.output_size, bound=bb, generator=gen)
        self.recurrent_names = ("W_xa", "W_aa", "W_ab", "b_a", "W_xb", "W_bb", "W_ba", "b_b")
        self.readout_names = ("W_hy", "b_y")
        self._finish_init(dtype, drift)

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
            [
                _param_block(da, x_t, na),
                _param_block(da, a_prev, na),
                _param_block(da, b_prev, na),
                torch.diag_embed(da),
                zeros_a(cols_b),
            ],
            dim=-1,
        )
        FB = torch.cat(
            [
                zeros_b(cols_a),
                _param_block(db, x_t, nb),
                _param_block(db, b_prev, nb),
                _param_block(db, a_read, nb),
                torch.diag_embed(db),
            ],
            dim=-1,
        )
        return {
            "a": a,
            "b": b,
            "AA": da[..., :, None] * p["W_aa"],
            "AB": da[..., :, None] * p["W_ab"],
            "BA": db[..., :, None] * p["W_ba"],
            "BB": db[..., :, None] * p["W_bb"],
            "FA": FA,
            "FB": FB,
            "XA": da[..., :, None] * p["W_xa"],
            "XB": db[..., :, None] * p["W_xb"],
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


def check_inputs(model: RecurrentModel, inputs) -> torch.Tensor:
    inputs = check_tensor("inputs", inputs, floating=True)
    if inputs.ndim not in (2, 3):
        raise ValueError(
            "inputs must have shape [T, input_size] or [T, B, input_size] (2 or 3 dimensions), "
            f"got shape {list(inputs.shape)} ({inputs.ndim} dimensions)"
        )
    if inputs.shape[0] < 1:
        raise ValueError(
            f"inputs must contain at least one time step (T >= 1), got an empty sequence with shape {list(inputs.shape)}"
        )
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
