"""Notebooks 05-09 (05, 06, 07, 08, 09): the isotropic MLP (intrinsic length, psi), its structural operations, and the elementwise control.

Isotropic MLPs whose topology can change while the function stays put (notebooks 05-09).

The network (notebook 05) has weight matrices ``W_0 ... W_(L-1)`` for widths
``[w_0, ..., w_L]``; hidden layer ``k`` (``k = 0 ... L-2``) is the isotropic
output of ``W_k``::

    z_0 = W_0 x + b_0
    z_k = W_k h_(k-1) + b_k + g_(k-1) psi_(k-1)             (k >= 1)
    h_k = g_k z_k,   g_k = tanh(rho_k) / rho_k,   rho_k = sqrt(|z_k|^2 + o_k)
    logits = W_(L-1) h_(L-2) + b_(L-1) + g_(L-2) psi_(L-2)

* ``o_k >= 0`` is the *intrinsic length* of hidden layer ``k``. It enters as a
  squared length (``sqrt(o_k)`` is the length), as in the author's reference
  code.
* ``psi_k`` lives in the pre-activation space of the next layer (of the logits
  for ``k = L-2``) and is scaled by layer ``k``'s scalar gain ``g_k``: the
  output-side twin of ``o``, as in the author's code.

Every method that takes a ``layer`` argument means that hidden-layer index
``k``: ``left_partial_diagonalise(k)`` rotates the neurons of hidden layer
``k`` (the rows of ``W_k``), ``full_diagonalise(k)`` makes the hidden-to-hidden
matrix ``W_k`` diagonal (``1 <= k <= L-2``), ``neurogenesis(k)`` and
``neurodegeneration(k)`` add and remove neurons of hidden layer ``k``.

Structural operations (notebooks 06 and 07) accept ``optimizer=``: an SGD,
Adam or AdamW optimiser holding the model's parameters. First moments (SGD
momentum, Adam ``exp_avg``) are transformed exactly like the parameters,
second moments (``exp_avg_sq``, ``max_exp_avg_sq``) by the elementwise squared
rotation (which keeps the diagonal of the rotated second-moment matrix), new
entries get zero moments and the step count is kept, so training simply goes
on. Parameters keep their identity (their data is replaced), so the optimiser's
parameter groups need no editing. Other optimisers are rejected with a
``TypeError``.

Also here: the gain and Jacobian eigenvalues of isotropic tanh
(:func:`isotropic_tanh_gain`, :func:`isotropic_tanh_eigenvalues`, notebook 05),
the orthogonally initialised base :class:`OrthogonalMLP` and the elementwise
control :class:`ElementwiseTanhMLP`. Training drivers, function-change measures
and schedules are in :mod:`isodl.topology.schedules`; the exact non-zero counts
of notebook 09 are in :mod:`isodl.topology.sparsity`.

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, *Isotropic
Activation Functions Enable Deindividuated Neurons and Adaptive Topologies*,
arXiv 2602.23405).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isodl.core import activations
from isodl.core.validate import (
    check_bool,
    check_choice,
    check_dtype,
    check_float,
    check_generator,
    check_int,
    check_tensor,
    check_widths,
)

__all__ = [
    "INTRINSIC_LENGTH_MODES",
    "PSI_MODES",
    "SUPPORTED_OPTIMIZERS",
    "isotropic_tanh_gain",
    "isotropic_tanh_eigenvalues",
    "ElementwiseTanhMLP",
    "IsotropicMLP",
    "OrthogonalMLP",
    "check_layer_models",
    "check_network_widths",
]

#: How the intrinsic length ``o`` of each hidden layer is held.
#: ``"none"``: ``o = 0``, never changed (removal cannot compensate the norm);
#: ``"constant"``: a fixed value ``o_init``, changed only by neurodegeneration;
#: ``"trainable"``: ``o = exp(lambda)`` with ``lambda`` trained (``o`` stays positive).
INTRINSIC_LENGTH_MODES = ("none", "constant", "trainable")

#: How the psi vectors are held. ``"none"``; ``"constant"`` (zeros, changed only
#: by neurodegeneration); ``"trainable"``; ``"trainable+decay"`` (trainable with
#: the penalty ``psi_decay * sum |psi|^2`` from :meth:`IsotropicMLP.penalty`);
#: ``"expectation"`` (no psi: a removal adds the batch-mean gain times the lost
#: output to the next bias).
PSI_MODES = ("none", "constant", "trainable", "trainable+decay", "expectation")

#: The optimisers whose state the structural operations carry.
SUPPORTED_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)

_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


# --------------------------------------------------------------------------- the isotropic gain


def isotropic_tanh_gain(z: torch.Tensor, o=0.0) -> torch.Tensor:
    """The gain ``g = tanh(rho) / rho`` of isotropic tanh, ``rho = sqrt(|z|^2 + o)``, per row of ``z``.

    ``isotropic tanh(z) = g * z``: the map only rescales each vector, so it
    commutes with every rotation. ``z`` is ``[..., n]``; the result has shape
    ``z.shape[:-1]`` (the network multiplies ``psi`` by it). ``o >= 0`` is the
    intrinsic length (a float or a 0-d tensor, which may carry a gradient).
    The gain is finite at the origin (``g -> 1``) with finite gradients, at
    every finite length. This is :func:`isodl.core.activations.isotropic_gain`
    (notebook 01), the course's one implementation of the isotropic gain,
    without the kept dimension; notebook 05 derives it for the network, and
    :class:`IsotropicMLP` computes every layer's gain with it.
    """
    return activations.isotropic_gain(z, "tanh", o=o, dim=-1).squeeze(-1)


def isotropic_tanh_eigenvalues(radius, o=0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues of the Jacobian of isotropic tanh at a point of norm ``radius`` (notebook 05).

    Returns ``(tangential, radial)``: ``g(rho) = tanh(rho)/rho`` for the
    ``n - 1`` directions orthogonal to ``z``, and ``(o/rho^2) g(rho) +
    (r^2/rho^2) sech^2(rho)`` along ``z``, with ``rho^2 = r^2 + o``. Both lie in
    ``(0, 1]``: isotropic tanh is 1-Lipschitz. ``radius`` may be a number or
    a tensor (float64 is used for numbers).
    """
    o = check_float("o", o, minimum=0.0)
    r = radius if isinstance(radius, torch.Tensor) else torch.tensor(float(radius), dtype=torch.float64)
    if not r.is_floating_point():
        raise TypeError(f"radius must be a floating-point tensor or a number, got dtype {r.dtype}")
    if bool((r < 0).any()):
        raise ValueError("radius must be >= 0")
    rho_sq = r * r + o
    g = isotropic_tanh_gain(r.unsqueeze(-1), o)
    sech_sq = 1.0 / torch.cosh(torch.sqrt(rho_sq)) ** 2
    safe = torch.where(rho_sq > 0, rho_sq, torch.ones_like(rho_sq))
    radial = torch.where(rho_sq > 0, (o / safe) * g + (r * r / safe) * sech_sq, torch.ones_like(rho_sq))
    return g, radial


# --------------------------------------------------------------------------- checks


def check_network_widths(widths, minimum_length: int = 3) -> list[int]:
    return check_widths(
        widths,
        minimum_length=minimum_length,
        example="[64, 32, 32, 10]",
        layout=f"an input size, {minimum_length - 2} hidden width(s) and an output size",
    )


def _check_optimizer(optimizer, model: nn.Module):
    """Accept None or an SGD/Adam/AdamW optimiser that holds the model's trainable parameters."""
    if optimizer is None:
        return None
    if not isinstance(optimizer, SUPPORTED_OPTIMIZERS):
        raise TypeError(
            f"optimizer must be torch.optim.SGD, Adam or AdamW (or None), got {type(optimizer).__name__}: "
            "the structural operations only know how to carry the state of these three"
        )
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in held]
    if missing:
        raise ValueError(
            f"optimizer does not hold this model's parameters {missing[:3]}{'...' if len(missing) > 3 else ''}; "
            "was it built for another copy of the model? Build it from this model's parameters()"
        )
    return optimizer


def check_layer_models(model) -> None:
    if not isinstance(model, OrthogonalMLP):
        raise TypeError(f"model must be an IsotropicMLP or ElementwiseTanhMLP, got {type(model).__name__}")


# --------------------------------------------------------------------------- shared base


class OrthogonalMLP(nn.Module):
    """Weights ``W_0 ... W_(L-1)`` with orthogonal initialisation and zero biases."""

    def __init__(self, widths, *, dtype=torch.float32, generator=None):
        super().__init__()
        widths = check_network_widths(widths)
        dtype = check_dtype(dtype)
        generator = check_generator(generator)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            w = torch.empty(n_out, n_in, dtype=torch.float64)
            nn.init.orthogonal_(w, generator=generator)  # every singular value is 1
            self.weights.append(nn.Parameter(w.to(dtype)))
            self.biases.append(nn.Parameter(torch.zeros(n_out, dtype=dtype)))

    # ---- shape
    @property
    def widths(self) -> list[int]:
        """The current widths ``[w_0, ..., w_L]`` (they change with the structural operations)."""
        return [int(self.weights[0].shape[1])] + [int(w.shape[0]) for w in self.weights]

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers, ``L - 1``."""
        return len(self.weights) - 1

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    def _check_layer(self, layer, what: str = "layer") -> int:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"{what} must be an integer hidden-layer index, got {layer!r} ({type(layer).__name__})")
        layer = int(layer)
        if not 0 <= layer <= self.n_hidden - 1:
            raise ValueError(
                f"{what} must be a hidden-layer index between 0 and {self.n_hidden - 1} "
                f"(this network has {self.n_hidden} hidden layers, widths {self.widths}), got {layer}"
            )
        return layer

    def _check_input(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.weights[0].shape[1]:
            raise ValueError(
                f"x must have shape [batch, {self.weights[0].shape[1]}] (or [{self.weights[0].shape[1]}]), "
                f"got {list(x.shape)}"
            )
        if x.dtype != self.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the model is {self.dtype}; convert one of them")
        return x

    # ---- spectra
    @torch.no_grad()
    def singular_values(self, layer: int) -> torch.Tensor:
        """Singular values of ``W_layer`` (float64, descending; ``min(n_out, n_in)`` of them).

        ``layer`` may also be ``L - 1`` (the output matrix) here.
        """
        if (
            isinstance(layer, bool)
            or not isinstance(layer, (int, np.integer))
            or not 0 <= int(layer) < len(self.weights)
        ):
            raise ValueError(
                f"layer must be a weight-matrix index between 0 and {len(self.weights) - 1}, got {layer!r}"
            )
        return torch.linalg.svdvals(self.weights[int(layer)].detach().to(torch.float64))

    @torch.no_grad()
    def neuron_strengths(self, layer: int) -> torch.Tensor:
        """One strength per neuron of hidden layer ``layer``: the singular values of ``W_layer`` padded
        with zeros up to its width.

        A layer wider than its input has ``n_out - n_in`` structural zero
        directions; after :meth:`IsotropicMLP.left_partial_diagonalise` they
        are exactly the rows of zeros, so counting them is what the buffer rule
        should see (the course's reading; the reference code counts only
        ``min(n_out, n_in)`` values).
        """
        layer = self._check_layer(layer)
        s = self.singular_values(layer)
        n_out = self.weights[layer].shape[0]
        return torch.cat([s, s.new_zeros(n_out - s.numel())])

    def count_weak(self, layer: int, threshold: float) -> int:
        """How many neurons of hidden layer ``layer`` have strength ``<= threshold`` (see :meth:`neuron_strengths`)."""
        threshold = check_float("threshold", threshold, minimum=0.0)
        return int((self.neuron_strengths(layer) <= threshold).sum())


class ElementwiseTanhMLP(OrthogonalMLP):
    """The elementwise (anisotropic) control: ``h_k = tanh(W_k h_(k-1) + b_k)`` with the same
    orthogonal initialisation and zero biases as :class:`IsotropicMLP`.

    Used in notebooks 05 and 06 and in the benchmark. It has no intrinsic
    length, no psi and no structural operations (its symmetry is only the
    signed permutations, so a rotation would change its function).
    """

    def __init__(self, widths, *, dtype=torch.float32, generator=None):
        super().__init__(widths, dtype=dtype, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._check_input(x)
        for k in range(self.n_hidden):
            h = torch.tanh(F.linear(h, self.weights[k], self.biases[k]))
        return F.linear(h, self.weights[-1], self.biases[-1])

    def penalty(self) -> torch.Tensor:
        return self.weights[0].new_zeros(())

    def extra_repr(self) -> str:
        return f"widths={self.widths}, activation=elementwise tanh, dtype={self.dtype}"


# --------------------------------------------------------------------------- the isotropic MLP


class IsotropicMLP(OrthogonalMLP):
    """The isotropic tanh MLP of the spec, with intrinsic lengths and psi vectors (notebook 05).

    Parameters
    ----------
    widths : sequence of int
        ``[w_0, w_1, ..., w_L]``: input size, hidden widths (at least one), output size.
    intrinsic_length : str
        One of :data:`INTRINSIC_LENGTH_MODES`; default ``"trainable"``
        (``o = exp(lambda)``, ``o`` starts at ``o_init``).
    psi : str
        One of :data:`PSI_MODES`; default ``"trainable+decay"``.
    o_init : float
        Initial intrinsic length (``"constant"`` and ``"trainable"``); default 1e-6.
    psi_decay : float
        Strength of the psi penalty in ``"trainable+decay"`` mode; default 0.1.
    dtype : torch.float32 or torch.float64
    generator : torch.Generator, optional
        Draws the orthogonal initial weights (default: PyTorch's global generator).

    Weights are orthogonal (all singular values 1), biases and psi are zero.
    ``forward(x)`` returns the logits. The course's defaults follow the
    paper's v2 experiments.
    """

    def __init__(
        self,
        widths,
        intrinsic_length: str = "trainable",
        psi: str = "trainable+decay",
        *,
        o_init: float = 1e-6,
        psi_decay: float = 0.1,
        dtype=torch.float32,
        generator=None,
    ):
        super().__init__(widths, dtype=dtype, generator=generator)
        self.o_mode = check_choice("intrinsic_length", intrinsic_length, INTRINSIC_LENGTH_MODES)
        self.psi_mode = check_choice("psi", psi, PSI_MODES)
        o_init = check_float("o_init", o_init, minimum=0.0)
        if self.o_mode == "trainable" and o_init <= 0:
            raise ValueError("o_init must be > 0 when intrinsic_length='trainable' (o = exp(lambda) is positive)")
        self.psi_decay = check_float("psi_decay", psi_decay, minimum=0.0)
        dtype = self.dtype
        n_hidden = self.n_hidden
        # One scalar per hidden layer: lambda = log(o) when trainable, o itself when constant.
        self.o_params = nn.ParameterList()
        if self.o_mode == "trainable":
            for _ in range(n_hidden):
                self.o_params.append(nn.Parameter(torch.tensor(math.log(o_init), dtype=dtype)))
        elif self.o_mode == "constant":
            for _ in range(n_hidden):
                self.o_params.append(nn.Parameter(torch.tensor(o_init, dtype=dtype), requires_grad=False))
        # psi_k (k = 0 .. L-2) has the width of W_(k+1)'s output.
        self.psis = nn.ParameterList()
        if self.has_psi:
            trainable = self.psi_mode in ("trainable", "trainable+decay")
            for k in range(n_hidden):
                n = self.weights[k + 1].shape[0]
                self.psis.append(nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=trainable))
        # Expectation mode: detached batch-mean gains of the last forward pass.
        self._mean_gains: list[float | None] = [None] * n_hidden

    # ---- configuration
    @property
    def has_psi(self) -> bool:
        """True when the network holds psi vectors (modes constant, trainable, trainable+decay)."""
        return self.psi_mode in ("constant", "trainable", "trainable+decay")

    def intrinsic_length(self, layer: int) -> torch.Tensor:
        """``o`` of hidden layer ``layer`` as a 0-d tensor (zero when ``intrinsic_length='none'``)."""
        layer = self._check_layer(layer)
        o = self._o(layer)
        return o.detach().clone() if isinstance(o, torch.Tensor) else self.weights[0].new_zeros(())

    def _o(self, k: int):
        if self.o_mode == "trainable":
            return torch.exp(self.o_params[k])
        if self.o_mode == "constant":
            return self.o_params[k]
        return 0.0

    def psi(self, k: int) -> torch.Tensor | None:
        """``psi_k`` (in the pre-activation space of hidden layer ``k+1``, or of the logits), or None.

        ``k`` runs over ``0 ... L-2`` like the hidden layers.
        """
        k = self._check_layer(k, "k")
        return self.psis[k] if self.has_psi else None

    def extra_repr(self) -> str:
        return (
            f"widths={self.widths}, intrinsic_length={self.o_mode!r}, psi={self.psi_mode!r}, "
            f"psi_decay={self.psi_decay}, dtype={self.dtype}"
        )

    # ---- forward
    def _layer_gain(self, z: torch.Tensor, k: int) -> torch.Tensor:
        """``g_k`` of pre-activations ``z`` ``[batch, w]`` as ``[batch, 1]``: :func:`isotropic_tanh_gain`, kept dimension."""
        return activations.isotropic_gain(z, "tanh", o=self._o(k), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._check_input(x)
        g = None  # [batch, 1]
        expectation = self.psi_mode == "expectation"
        for k in range(self.n_hidden):
            z = F.linear(h, self.weights[k], self.biases[k])
            if k > 0 and self.has_psi:
                z = z + g * self.psis[k - 1]
            g = self._layer_gain(z, k)
            if expectation:
                self._mean_gains[k] = float(g.detach().mean())
            h = g * z
        logits = F.linear(h, self.weights[-1], self.biases[-1])
        if self.has_psi:
            logits = logits + g * self.psis[-1]
        return logits

    @torch.no_grad()
    def gains(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The gains ``g_k`` of every hidden layer for the inputs ``x`` (a list of ``[batch]`` tensors)."""
        h = self._check_input(x)
        out, g = [], None
        for k in range(self.n_hidden):
            z = F.linear(h, self.weights[k], self.biases[k])
            if k > 0 and self.has_psi:
                z = z + g * self.psis[k - 1]
            g = self._layer_gain(z, k)
            out.append(g.squeeze(-1))
            h = g * z
        return out

    def penalty(self) -> torch.Tensor:
        """The psi decay term ``psi_decay * sum_k |psi_k|^2`` (zero unless psi='trainable+decay').

        the training drivers pass it to :func:`isodl.core.train.train_epoch` as ``penalty``; it is added to the loss.
        """
        if self.psi_mode != "trainable+decay" or self.psi_decay == 0.0:
            return self.weights[0].new_zeros(())
        return self.psi_decay * sum((p * p).sum() for p in self.psis)

    # ---- primitive edits that carry the optimiser state
    def _set(self, p: nn.Parameter, value: torch.Tensor, optimizer, first: Callable | None, second: Callable | None):
        """Replace ``p``'s data by ``value``; map its optimiser moments with ``first``/``second``."""
        p.data = value.to(dtype=p.dtype).contiguous()
        p.grad = None
        if optimizer is None or p not in optimizer.state:
            return
        state = optimizer.state[p]
        for key in _FIRST_MOMENTS + _SECOND_MOMENTS:
            t = state.get(key)
            if not isinstance(t, torch.Tensor):
                continue
            fn = first if key in _FIRST_MOMENTS else second
            state[key] = fn(t.to(torch.float64)).to(t.dtype).contiguous()

    def _rotate_rows(self, p, q: torch.Tensor, optimizer, value: torch.Tensor | None = None):
        """``p -> q^T p`` (the rows, or the entries of a vector, index the rotated space)."""
        q2 = q * q
        new = q.T @ p.detach().to(torch.float64) if value is None else value
        self._set(p, new, optimizer, lambda t: q.T @ t, lambda t: q2.T @ t)

    def _rotate_cols(self, p, q: torch.Tensor, optimizer):
        """``p -> p q`` (the columns index the rotated space)."""
        q2 = q * q
        self._set(p, p.detach().to(torch.float64) @ q, optimizer, lambda t: t @ q, lambda t: t @ q2)

    def _resize(self, p, dim: int, keep: torch.Tensor, new_part: torch.Tensor, optimizer):
        """Keep the indices ``keep`` along ``dim`` and append ``new_part`` (zero moments for it)."""

        def edit(t, fill=None):
            kept = t.index_select(dim, keep)
            extra = torch.zeros_like(new_part, dtype=t.dtype) if fill is None else fill.to(t.dtype)
            return torch.cat([kept, extra], dim=dim)

        value = edit(p.detach().to(torch.float64), new_part.to(torch.float64))
        self._set(p, value, optimizer, edit, edit)

    def _svd(self, k: int):
        """Full SVD of ``W_k``: ``U [n_out, n_out]``, ``s``, ``Vh [n_in, n_in]``, returned in float64.

        It is computed in the model's dtype: a float32 model gets a float32 SVD
        (faster; its rotations are orthogonal to float32 round-off, the
        precision of the model anyway), a float64 model a float64 one.
        """
        u, s, vh = torch.linalg.svd(self.weights[k].detach(), full_matrices=True)
        return u.to(torch.float64), s.to(torch.float64), vh.to(torch.float64)

    # ---- the reparameterisation symmetry
    @torch.no_grad()
    def rotate_layer(self, layer: int, rotation: torch.Tensor, *, optimizer=None) -> None:
        """Re-express hidden layer ``layer`` in the orthonormal basis given by the columns of ``rotation``.

        With ``Q = rotation`` (orthogonal, ``n x n`` for a layer of width
        ``n``): ``W_k -> Q^T W_k``, ``b_k -> Q^T b_k``, ``psi_(k-1) -> Q^T
        psi_(k-1)``, ``W_(k+1) -> W_(k+1) Q``. Because isotropic tanh commutes
        with every rotation and the gain only sees ``|z|``, the network's
        function does not change (notebook 06). ``o`` is untouched.
        """
        k = self._check_layer(layer)
        optimizer = _check_optimizer(optimizer, self)
        n = self.weights[k].shape[0]
        q = check_tensor("rotation", rotation, shape=(n, n), floating=True, finite=True).detach()
        tol = 1e-8 if q.dtype == torch.float64 else 1e-5
        q = q.to(torch.float64)
        err = float((q.T @ q - torch.eye(n, dtype=torch.float64)).abs().max())
        if err > tol:
            raise ValueError(f"rotation must be orthogonal (Q^T Q = I); its largest deviation is {err:.2e}")
        self._rotate(k, q, optimizer)

    def _rotate(self, k: int, q: torch.Tensor, optimizer, w_value: torch.Tensor | None = None) -> None:
        self._rotate_rows(self.weights[k], q, optimizer, value=w_value)
        self._rotate_rows(self.biases[k], q, optimizer)
        if k > 0 and self.has_psi:
            self._rotate_rows(self.psis[k - 1], q, optimizer)
        self._rotate_cols(self.weights[k + 1], q, optimizer)

    def _checked_svd(self, layer, optimizer):
        """Check ``layer`` and ``optimizer``; return ``k, optimizer, u, s, vh`` (the SVD of ``W_k``) and a float64 zero matrix shaped like ``W_k``."""
        k = self._check_layer(layer)
        optimizer = _check_optimizer(optimizer, self)
        u, s, vh = self._svd(k)
        n_out, n_in = self.weights[k].shape
        return k, optimizer, u, s, vh, torch.zeros(n_out, n_in, dtype=torch.float64)

    @torch.no_grad()
    def left_partial_diagonalise(self, layer: int, *, optimizer=None) -> torch.Tensor:
        """Rotate hidden layer ``layer`` by the left singular vectors of its incoming matrix.

        With ``W_k = U S V^T``: ``W_k -> S V^T`` (row ``j`` is ``s_j v_j^T``,
        neurons ordered by strength, structural zero rows exact), ``b_k -> U^T
        b_k``, ``psi_(k-1) -> U^T psi_(k-1)``, ``W_(k+1) -> W_(k+1) U``. The
        function is unchanged; ``W_(k+1)`` stays dense. Valid for every hidden
        layer, and for all of them at once. Returns the singular values.
        """
        k, optimizer, u, s, vh, sv = self._checked_svd(layer, optimizer)
        r = s.numel()
        sv[:r] = s.unsqueeze(1) * vh[:r]
        self._rotate(k, u, optimizer, w_value=sv)
        return s

    @torch.no_grad()
    def full_diagonalise(self, layer: int, *, optimizer=None) -> torch.Tensor:
        """Make the hidden-to-hidden matrix ``W_layer`` (``1 <= layer <= L-2``) rectangular-diagonal.

        With ``W_k = U S V^T`` the neurons of hidden layer ``k`` are rotated by
        ``U`` and those of hidden layer ``k-1`` by ``V``: ``W_k -> S``, ``b_k,
        psi_(k-1) -> U^T (.)``, ``W_(k+1) -> W_(k+1) U``, ``W_(k-1), b_(k-1),
        psi_(k-2) -> V^T (.)``. Neuron ``i`` of layer ``k-1`` then feeds only
        neuron ``i`` of layer ``k``, with weight ``s_i``. The function is
        unchanged. ``W_0`` (its input basis is fixed by the data) and
        ``W_(L-1)`` (its output basis is fixed by the loss) cannot be fully
        diagonalised. Diagonalising two adjacent layers undoes the first
        (notebook 09): use :meth:`diagonalise_alternating`. Returns the singular values.
        """
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an integer, got {layer!r} ({type(layer).__name__})")
        layer = int(layer)
        last = len(self.weights) - 1
        valid = (
            "this network has none (it needs two hidden layers)"
            if last < 2
            else ("use layer 1" if last == 2 else f"use a layer between 1 and {last - 1}")
        )
        if layer == 0:
            raise ValueError(
                "full_diagonalise needs a hidden-to-hidden matrix; layer 0 is W_0, which reads the input "
                f"(its basis is fixed by the data): {valid}, or left_partial_diagonalise(0)"
            )
        if layer == last:
            raise ValueError(
                f"full_diagonalise needs a hidden-to-hidden matrix; layer {last} is the output matrix W_{last} "
                f"(its basis is fixed by the loss): {valid}"
            )
        k, optimizer, u, s, vh, diag = self._checked_svd(layer, optimizer)
        r = s.numel()
        diag[torch.arange(r), torch.arange(r)] = s
        self._rotate(k, u, optimizer)  # W_k -> S V^T
        self._rotate(k - 1, vh.T, optimizer)  # W_k -> S V^T V = S
        self.weights[k].data = diag.to(self.dtype)  # exact zeros off the diagonal
        return s

    @torch.no_grad()
    def diagonalise_alternating(self, *, optimizer=None) -> list[int]:
        """Fully diagonalise the hidden-to-hidden layers 1, 3, 5, ... (never two adjacent ones).

        Returns the layers diagonalised (see :func:`isodl.topology.sparsity.alternating_layers`).
        """
        optimizer = _check_optimizer(optimizer, self)
        from isodl.topology.sparsity import alternating_layers

        layers = alternating_layers(self.widths)
        for k in layers:
            self.full_diagonalise(k, optimizer=optimizer)
        return layers

    @torch.no_grad()
    def triangularise(self, layer: int, *, optimizer=None) -> None:
        """Make ``W_layer`` upper-triangular by rotating hidden layer ``layer`` (its output side) with a QR rotation.

        With ``W_k = Q T`` (complete QR, ``T`` upper-triangular or trapezoidal):
        ``W_k -> T`` (exact zeros below the diagonal), ``b_k, psi_(k-1) -> Q^T
        (.)``, ``W_(k+1) -> W_(k+1) Q``: the rotation of :meth:`rotate_layer`,
        so the function is unchanged. Valid for every hidden layer ``k = 0 ..
        L-2``; it touches neither ``W_(k-1)`` nor the input side of ``W_k``,
        so after :meth:`full_diagonalise` of ``W_(k-1)`` the diagonal stays
        (notebook 09).
        """
        k = self._check_layer(layer)
        optimizer = _check_optimizer(optimizer, self)
        q, t = torch.linalg.qr(self.weights[k].detach().to(torch.float64), mode="complete")
        self._rotate(k, q, optimizer, w_value=torch.triu(t))

    @torch.no_grad()
    def sparsify(self, *, optimizer=None) -> dict[str, list[int]]:
        """The sparsest exact rotation the course knows: :meth:`diagonalise_alternating`, then, when the number
        of hidden-to-hidden matrices is even, :meth:`triangularise` the last one (its output side is still free).

        Returns ``{"diagonal": layers, "triangular": layers}``.
        """
        optimizer = _check_optimizer(optimizer, self)
        diagonal = self.diagonalise_alternating(optimizer=optimizer)
        m = len(self.weights) - 2  # hidden-to-hidden matrices W_1 .. W_M
        triangular = []
        if m >= 2 and m % 2 == 0:
            self.triangularise(m, optimizer=optimizer)
            triangular.append(m)
        return {"diagonal": diagonal, "triangular": triangular}

    # ---- neurogenesis and neurodegeneration
    @torch.no_grad()
    def neurogenesis(self, layer: int, count: int = 1, *, optimizer=None, scale: float = 0.01, generator=None) -> int:
        """Add ``count`` scaffold neurons to hidden layer ``layer``; the function is unchanged.

        The layer is first left-partially diagonalised. Each scaffold neuron
        has a zero incoming row, zero bias and a zero incoming psi entry, so its
        pre-activation is exactly 0 for every input: it adds nothing to
        ``|z|^2`` and emits nothing. Its outgoing column is ``scale * N(0, 1)``
        (never all zeros, so gradient can reach the incoming row through the
        isotropic Jacobian). Returns the new width.
        """
        k = self._check_layer(layer)
        count = check_int("count", count, minimum=1)
        scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
        generator = check_generator(generator)
        optimizer = _check_optimizer(optimizer, self)
        self.left_partial_diagonalise(k, optimizer=optimizer)
        n_out, n_in = self.weights[k].shape
        keep = torch.arange(n_out)
        self._resize(self.weights[k], 0, keep, torch.zeros(count, n_in), optimizer)
        self._resize(self.biases[k], 0, keep, torch.zeros(count), optimizer)
        if k > 0 and self.has_psi:
            self._resize(self.psis[k - 1], 0, keep, torch.zeros(count), optimizer)
        nxt = self.weights[k + 1]
        column = scale * torch.randn(nxt.shape[0], count, generator=generator, dtype=torch.float64)
        self._resize(nxt, 1, keep, column, optimizer)
        return n_out + count

    @torch.no_grad()
    def neurodegeneration(
        self,
        layer: int,
        count: int = 1,
        *,
        optimizer=None,
        compensate_o: bool | None = None,
        compensate_psi: bool | None = None,
    ) -> list[float]:
        """Remove the ``count`` weakest neurons of hidden layer ``layer``, one per fresh SVD.

        Each step left-partially diagonalises the layer and deletes the last
        neuron (the smallest singular value ``s``): its row of ``W_k``, bias
        ``b*``, incoming psi entry and outgoing column ``W*`` of ``W_(k+1)``.
        Compensation (by default as configured):

        * ``compensate_o``: ``o_k += b*^2`` (the neuron's share of ``|z|^2``);
        * ``compensate_psi``: ``psi_k += W* b*`` (its constant output), or, in
          ``psi='expectation'`` mode, ``b_(k+1) += mean(g_k) W* b*`` with the
          batch-mean gain of the last forward pass.

        With both, the only change is the lost term ``s (v . h_(k-1))`` (and
        the dropped incoming psi entry): exact for ``s = 0`` and a zero psi
        entry, and linear in ``s`` otherwise. Returns the removed singular
        values (0 for structural zero rows).
        """
        k = self._check_layer(layer)
        count = check_int("count", count, minimum=1)
        width = self.weights[k].shape[0]
        if count >= width:
            raise ValueError(
                f"cannot remove {count} neuron(s) from hidden layer {k} of width {width}: at least one must remain "
                f"(count must be <= {width - 1})"
            )
        optimizer = _check_optimizer(optimizer, self)
        compensate_o, compensate_psi = self._check_compensation(k, compensate_o, compensate_psi)
        removed = []
        for _ in range(count):
            s = self.left_partial_diagonalise(k, optimizer=optimizer)
            j = self.weights[k].shape[0] - 1
            removed.append(float(s[j]) if j < s.numel() else 0.0)
            self._remove(k, j, optimizer, compensate_o, compensate_psi)
        return removed

    def _check_compensation(self, k: int, compensate_o, compensate_psi) -> tuple[bool, bool]:
        if compensate_o is None:
            compensate_o = self.o_mode != "none"
        if compensate_psi is None:
            compensate_psi = self.psi_mode != "none"
        compensate_o = check_bool("compensate_o", compensate_o)
        compensate_psi = check_bool("compensate_psi", compensate_psi)
        if compensate_o and self.o_mode == "none":
            raise ValueError(
                "compensate_o=True needs an intrinsic length: build the model with intrinsic_length='constant' or 'trainable'"
            )
        if compensate_psi and self.psi_mode == "none":
            raise ValueError("compensate_psi=True needs psi vectors (or psi='expectation'): this model has psi='none'")
        if compensate_psi and self.psi_mode == "expectation" and self._mean_gains[k] is None:
            raise RuntimeError(
                "psi='expectation' compensation needs the mean gain of a forward pass: run the model on a batch first"
            )
        return compensate_o, compensate_psi

    def _remove(self, k: int, j: int, optimizer, compensate_o: bool, compensate_psi: bool) -> None:
        """Delete neuron ``j`` of hidden layer ``k`` in the current basis, keeping its bias in ``o`` and ``psi``."""
        n_out, n_in = self.weights[k].shape
        b_star = float(self.biases[k][j])
        w_star = self.weights[k + 1][:, j].detach().to(torch.float64).clone()
        if compensate_o:
            if self.o_mode == "trainable":
                o_new = math.exp(float(self.o_params[k])) + b_star**2
                self.o_params[k].data.fill_(math.log(o_new))
            else:
                self.o_params[k].data.add_(b_star**2)
        if compensate_psi:
            if self.psi_mode == "expectation":
                delta = self._mean_gains[k] * b_star * w_star
                self.biases[k + 1].data.add_(delta.to(self.dtype))
            else:
                self.psis[k].data.add_((b_star * w_star).to(self.dtype))
        keep = torch.tensor([i for i in range(n_out) if i != j], dtype=torch.long)
        self._resize(self.weights[k], 0, keep, torch.zeros(0, n_in), optimizer)
        self._resize(self.biases[k], 0, keep, torch.zeros(0), optimizer)
        if k > 0 and self.has_psi:
            self._resize(self.psis[k - 1], 0, keep, torch.zeros(0), optimizer)
        nxt = self.weights[k + 1]
        self._resize(nxt, 1, keep, torch.zeros(nxt.shape[0], 0), optimizer)

    @torch.no_grad()
    def remove_neuron(
        self,
        layer: int,
        index: int,
        *,
        optimizer=None,
        compensate_o: bool | None = None,
        compensate_psi: bool | None = None,
    ) -> None:
        """Delete neuron ``index`` of hidden layer ``layer`` in the *current* basis (no rotation), with the same
        ``o``/psi compensation as :meth:`neurodegeneration`.

        In the basis of :meth:`left_partial_diagonalise` this is one step of
        neurodegeneration; in the native basis it is magnitude pruning with
        compensation, the baseline of notebook 07 (:mod:`isodl.topology.baselines`).
        """
        k = self._check_layer(layer)
        width = self.weights[k].shape[0]
        if width < 2:
            raise ValueError(f"cannot remove a neuron from hidden layer {k} of width {width}: at least one must remain")
        j = check_int("index", index, minimum=0, maximum=width - 1)
        optimizer = _check_optimizer(optimizer, self)
        compensate_o, compensate_psi = self._check_compensation(k, compensate_o, compensate_psi)
        self._remove(k, j, optimizer, compensate_o, compensate_psi)

    @torch.no_grad()
    def prune_by_magnitude(self, layer: int, count: int = 1, *, optimizer=None) -> list[float]:
        """Remove the ``count`` neurons of hidden layer ``layer`` with the smallest incoming weight norm
        ``|W_k[j, :]|``, one at a time, in the *current* basis (no SVD), each with :meth:`remove_neuron`'s
        compensation. The baseline of notebooks 07 and 08; returns the removed norms.
        """
        k = self._check_layer(layer)
        width = self.weights[k].shape[0]
        count = check_int("count", count, minimum=1, maximum=width - 1)
        optimizer = _check_optimizer(optimizer, self)
        removed = []
        for _ in range(count):
            norms = torch.linalg.vector_norm(self.weights[k].detach(), dim=1)
            j = int(norms.argmin())
            removed.append(float(norms[j]))
            self.remove_neuron(k, j, optimizer=optimizer)
        return removed

    @torch.no_grad()
    def resize_hidden(self, layer: int, width: int, *, optimizer=None, generator=None) -> int:
        """Grow (neurogenesis) or shrink (neurodegeneration) hidden layer ``layer`` to ``width``; returns the change."""
        k = self._check_layer(layer)
        width = check_int("width", width, minimum=1)
        change = width - self.weights[k].shape[0]
        if change > 0:
            self.neurogenesis(k, change, optimizer=optimizer, generator=generator)
        elif change < 0:
            self.neurodegeneration(k, -change, optimizer=optimizer)
        return change

    @torch.no_grad()
    def auto_adapt(self, threshold: float = 0.95, buffer: int = 5, *, optimizer=None, generator=None) -> dict[int, int]:
        """The thresholded scaffold buffer: keep exactly ``buffer`` weak neurons in every hidden layer.

        For each hidden layer, last first: count the neurons of strength
        ``<= threshold`` (:meth:`count_weak`, structural zeros included); add
        scaffold neurons when there are fewer than ``buffer``, remove the
        weakest when there are more (a layer keeps at least one neuron).
        Returns ``{layer: change in width}``.
        """
        threshold = check_float("threshold", threshold, minimum=0.0)
        buffer = check_int("buffer", buffer, minimum=0)
        generator = check_generator(generator)
        optimizer = _check_optimizer(optimizer, self)
        changes = {}
        for k in reversed(range(self.n_hidden)):
            weak = self.count_weak(k, threshold)
            if weak < buffer:
                self.neurogenesis(k, buffer - weak, optimizer=optimizer, generator=generator)
                changes[k] = buffer - weak
            elif weak > buffer:
                n = min(weak - buffer, self.weights[k].shape[0] - 1)
                if n > 0:
                    self.neurodegeneration(k, n, optimizer=optimizer)
                changes[k] = -n
            else:
                changes[k] = 0
        return dict(sorted(changes.items()))

    # ---- inputs and outputs (appending and dropping tasks)
    @torch.no_grad()
    def add_inputs(self, count: int = 1, *, optimizer=None) -> list[int]:
        """Append ``count`` input units with zero weights (the function of the old inputs is unchanged)."""
        count = check_int("count", count, minimum=1)
        optimizer = _check_optimizer(optimizer, self)
        w = self.weights[0]
        self._resize(w, 1, torch.arange(w.shape[1]), torch.zeros(w.shape[0], count), optimizer)
        return self.widths

    def _check_indices(self, indices, size: int, what: str) -> torch.Tensor:
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            indices = [int(indices)]
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence):
            raise TypeError(f"indices must be an int or a sequence of ints, got {type(indices).__name__}")
        idx = [check_int(f"indices[{i}]", v, minimum=0, maximum=size - 1) for i, v in enumerate(indices)]
        if not idx:
            raise ValueError("indices must name at least one unit")
        if len(set(idx)) != len(idx):
            raise ValueError(f"indices must not repeat, got {idx}")
        if len(idx) >= size:
            raise ValueError(f"cannot remove all {size} {what} units: at least one must remain")
        return torch.tensor([i for i in range(size) if i not in set(idx)], dtype=torch.long)

    @torch.no_grad()
    def remove_inputs(self, indices, *, optimizer=None) -> list[int]:
        """Delete the input units ``indices`` (their columns of ``W_0``)."""
        optimizer = _check_optimizer(optimizer, self)
        w = self.weights[0]
        keep = self._check_indices(indices, w.shape[1], "input")
        self._resize(w, 1, keep, torch.zeros(w.shape[0], 0), optimizer)
        return self.widths

    @torch.no_grad()
    def add_outputs(self, count: int = 1, *, optimizer=None) -> list[int]:
        """Append ``count`` output units (logits) with zero weights, bias and psi entries; old logits unchanged."""
        count = check_int("count", count, minimum=1)
        optimizer = _check_optimizer(optimizer, self)
        w = self.weights[-1]
        keep = torch.arange(w.shape[0])
        self._resize(w, 0, keep, torch.zeros(count, w.shape[1]), optimizer)
        self._resize(self.biases[-1], 0, keep, torch.zeros(count), optimizer)
        if self.has_psi:
            self._resize(self.psis[-1], 0, keep, torch.zeros(count), optimizer)
        return self.widths

    @torch.no_grad()
    def remove_outputs(self, indices, *, optimizer=None) -> list[int]:
        """Delete the output units ``indices`` (rows of ``W_(L-1)``, bias and psi entries); other logits unchanged."""
        optimizer = _check_optimizer(optimizer, self)
        w = self.weights[-1]
        keep = self._check_indices(indices, w.shape[0], "output")
        self._resize(w, 0, keep, torch.zeros(0, w.shape[1]), optimizer)
        self._resize(self.biases[-1], 0, keep, torch.zeros(0), optimizer)
        if self.has_psi:
            self._resize(self.psis[-1], 0, keep, torch.zeros(0), optimizer)
        return self.widths
