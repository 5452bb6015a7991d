"""Notebook 14: the toy models of superposition, many instances trained at once.

A toy model (Elhage et al. 2022, arXiv 2209.10652) squeezes ``F`` sparse
features ``x`` into ``m < F`` hidden dimensions and reads them back:

    h  = W x                    (or h = f(W x): the variant with a privileged hidden basis)
    x' = g(W^T h + b)

with ``W`` an ``[m, F]`` matrix (column ``W_i`` is feature ``i``'s direction),
a bias ``b`` and an output map ``g``. The loss weights each feature by its
importance: ``sum_i I_i (x_i - x'_i)^2``. Each feature is zero with
probability ``S`` (the sparsity) and otherwise uniform in ``[0, 1]``.

:class:`ToyModels` holds ``N`` independent instances as one ``[N, m, F]``
weight tensor, so a sweep over sparsity, importance and seeds is one batched
training run (:func:`train_toy_models`). Every instance has its own sparsity
and importance; Adam and SGD act entry by entry, so the instances never
interact. All randomness comes from explicit ``torch.Generator`` arguments.

Output maps ``g`` (:data:`OUTPUTS`):

* ``"relu"``: elementwise ReLU, the paper's model;
* ``"isotropic_relu"``: the same radial profile acting on the length,
  ``g(y) = max(|y| - R, 0) y / |y|``, with a learned radius ``R > 0`` per
  instance (the bias ``-R`` of a ReLU becomes a threshold on the length);
* ``"linear"``: ``g(y) = y``;
* ``"rotated_relu"``: ReLU in a random orthonormal basis ``Q`` of R^F,
  ``g(y) = Q^T ReLU(Q y) + d`` (elementwise, but in a basis unrelated to the features), with a
  learned bias ``d`` after the nonlinearity, so that it can copy the linear model (a large ``b``
  keeps every rotated coordinate positive, ``d`` cancels it in the output).

Hidden maps ``f`` (:data:`HIDDENS`): ``"linear"`` (``h = W x``, the basic
model), ``"relu"``, ``"tanh"`` (elementwise) and ``"isotropic_tanh"``
(``tanh(|Wx|) Wx / |Wx|`` from :mod:`isodl.core.activations`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from isodl.core.activations import isotropic
from isodl.core.validate import check_choice, check_float, check_generator, check_int, check_tensor

__all__ = [
    "OUTPUTS",
    "HIDDENS",
    "OPTIMISERS",
    "geometric_importance",
    "as_instance_values",
    "sample_features",
    "radial_relu",
    "ToyModels",
    "weighted_loss",
    "TrainResult",
    "train_toy_models",
    "one_hot_outputs",
]

#: Output maps g of x' = g(W^T h + b).
OUTPUTS = ("relu", "isotropic_relu", "linear", "rotated_relu")
#: Hidden maps f of h = f(W x).
HIDDENS = ("linear", "relu", "tanh", "isotropic_tanh")
#: Optimisers of :func:`train_toy_models`.
OPTIMISERS = ("adam", "sgd")


def geometric_importance(n_features: int, decay: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Importances ``I_i = decay**i``, ``i = 0 .. n_features - 1`` (``decay = 1``: all equal)."""
    n_features = check_int("n_features", n_features, minimum=1)
    decay = check_float("decay", decay, minimum=0.0, maximum=1.0, strict_minimum=True)
    return decay ** torch.arange(n_features, dtype=torch.float64).to(dtype)


def as_instance_values(name: str, values, n_instances: int, *, minimum: float, maximum: float) -> torch.Tensor:
    """One float per instance (``[N]``, float64) from a number or a 1-d tensor/list, checked against the bounds."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        v = torch.full((n_instances,), float(values), dtype=torch.float64)
    else:
        v = check_tensor(name, torch.as_tensor(values) if isinstance(values, (list, tuple)) else values, ndim=1)
        v = v.to(torch.float64)
        if v.shape[0] != n_instances:
            raise ValueError(f"{name} must hold one value per instance ({n_instances}), got {v.shape[0]}")
    if not bool(torch.isfinite(v).all()) or bool((v < minimum).any()) or bool((v > maximum).any()):
        raise ValueError(
            f"{name} must lie in [{minimum}, {maximum}], got values from {float(v.min())} to {float(v.max())}"
        )
    return v


def sample_features(
    sparsity, n_features: int, batch: int, *, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Draw ``[N, batch, F]`` features: each is 0 with probability ``S`` (per instance), else uniform in [0, 1].

    ``sparsity`` is a tensor ``[N]`` of values in [0, 1) (one per instance).
    """
    s = check_tensor("sparsity", sparsity, ndim=1)
    if not bool(((s >= 0) & (s < 1)).all()):
        raise ValueError("sparsity must lie in [0, 1) (the probability that a feature is zero)")
    n_features, batch = check_int("n_features", n_features, minimum=1), check_int("batch", batch, minimum=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    # One uniform draw u per entry gives both parts: the feature is present when u >= S, and then
    # (u - S) / (1 - S) is uniform in [0, 1] and independent of the event.
    u = torch.rand((s.shape[0], batch, n_features), generator=generator, dtype=dtype)
    low = s.to(dtype)[:, None, None]
    return torch.relu(u - low) / (1.0 - low)


def radial_relu(y: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """``max(|y| - R, 0) y / |y|`` along the last axis; ``radius`` broadcasts against ``y[..., :1]``.

    Equals :func:`isodl.core.activations.isotropic` (``"relu"``, ``radius=R``)
    for a scalar ``R``; here ``R`` may differ between instances and carry a
    gradient. Zero (with zero gradient) inside the ball, finite everywhere.
    """
    rho = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    above = rho > radius
    safe = torch.where(above, rho, torch.ones_like(rho))  # double where: no 0/0 in the branch not taken
    gain = torch.where(above, 1.0 - radius / safe, torch.zeros_like(rho))
    return gain * y


class ToyModels(nn.Module):
    """``N`` independent toy models ``x' = g(W^T f(W x) + b)`` with ``W`` of shape ``[N, m, F]``.

    Parameters
    ----------
    n_instances, n_features, n_hidden : int
        ``N``, ``F`` and ``m``.
    output : str
        The output map ``g`` (one of :data:`OUTPUTS`).
    hidden : str
        The hidden map ``f`` (one of :data:`HIDDENS`; ``"linear"`` is the basic model).
    generator : torch.Generator
        Draws the initial ``W`` (Gaussian, std ``sqrt(2 / (m + F))``, Xavier's) and,
        for ``"rotated_relu"``, one Haar-random rotation ``Q`` per instance.
    dtype : torch.dtype
    """

    def __init__(
        self,
        n_instances: int,
        n_features: int,
        n_hidden: int,
        *,
        output: str = "relu",
        hidden: str = "linear",
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.n_instances = check_int("n_instances", n_instances, minimum=1)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.n_hidden = check_int("n_hidden", n_hidden, minimum=1)
        self.output = check_choice("output", output, OUTPUTS)
        self.hidden = check_choice("hidden", hidden, HIDDENS)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        n, f, m = self.n_instances, self.n_features, self.n_hidden
        std = math.sqrt(2.0 / (m + f))
        self.W = nn.Parameter(std * torch.randn(n, m, f, generator=generator, dtype=torch.float64).to(dtype))
        self.b = nn.Parameter(torch.zeros(n, f, dtype=dtype))
        # bias after the nonlinearity, used (and trained) only by the rotated ReLU
        self.d = nn.Parameter(torch.zeros(n, f, dtype=dtype))
        # radius R = softplus(raw) > 0 of the isotropic output; starts at 0.1
        self.raw_radius = nn.Parameter(torch.full((n, 1, 1), math.log(math.expm1(0.1)), dtype=dtype))
        if self.output == "rotated_relu":
            g = torch.randn(n, f, f, generator=generator, dtype=torch.float64)
            q, r = torch.linalg.qr(g)
            q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
            self.register_buffer("Q", q.to(dtype))
        else:
            self.register_buffer("Q", torch.empty(0, dtype=dtype))

    @property
    def radius(self) -> torch.Tensor:
        """The learned radius ``R`` of the isotropic output, ``[N]`` (used only when output is isotropic_relu)."""
        return nn.functional.softplus(self.raw_radius).reshape(-1)

    def hidden_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``h = f(W x)`` for features ``x`` of shape ``[N, B, F]``; returns ``[N, B, m]``."""
        x = check_tensor("x", x, shape=[self.n_instances, None, self.n_features], floating=True)
        pre = torch.einsum("nbf,nmf->nbm", x, self.W)
        if self.hidden == "relu":
            return torch.relu(pre)
        if self.hidden == "tanh":
            return torch.tanh(pre)
        if self.hidden == "isotropic_tanh":
            return isotropic(pre, "tanh")
        return pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``x'`` of features ``x`` (``[N, B, F]``)."""
        y = torch.bmm(self.hidden_activations(x), self.W) + self.b[:, None, :]
        if self.output == "relu":
            return torch.relu(y)
        if self.output == "isotropic_relu":
            return radial_relu(y, nn.functional.softplus(self.raw_radius))
        if self.output == "rotated_relu":
            return torch.bmm(torch.relu(torch.bmm(y, self.Q.transpose(1, 2))), self.Q) + self.d[:, None, :]
        return y


def weighted_loss(x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """``mean over the batch of sum_i I_i (x_i - x'_i)^2``, one value per instance (``[N]``).

    ``importance`` is ``[N, F]`` (or ``[F]``, shared).
    """
    imp = importance if importance.ndim == 2 else importance[None, :]
    return (imp[:, None, :] * (x - x_hat) ** 2).sum(-1).mean(-1)


@dataclass
class TrainResult:
    """What :func:`train_toy_models` returns.

    * ``loss``: ``[N]`` mean loss of each instance over the last tenth of training;
    * ``history``: ``[R, N]`` loss every ``record_every`` steps (averaged over those steps);
    * ``steps``: the number of steps taken.
    """

    loss: torch.Tensor
    history: torch.Tensor
    steps: int


def _importance_matrix(importance, n: int, f: int, dtype) -> torch.Tensor:
    imp = check_tensor("importance", importance, ndim=(1, 2), floating=True, finite=True)
    if imp.ndim == 1:
        imp = imp[None, :].expand(n, -1)
    if tuple(imp.shape) != (n, f):
        raise ValueError(f"importance must have shape [F] = [{f}] or [N, F] = [{n}, {f}], got {list(imp.shape)}")
    if bool((imp < 0).any()):
        raise ValueError("importance must be >= 0")
    return imp.to(dtype)


def train_toy_models(
    model: ToyModels,
    sparsity,
    importance,
    *,
    steps: int,
    batch: int,
    lr: float,
    generator: torch.Generator,
    optimiser: str = "adam",
    record_every: int = 50,
) -> TrainResult:
    """Train every instance of ``model`` on its own sparsity and importance (in place).

    Parameters
    ----------
    model : ToyModels
    sparsity : float or sequence/tensor [N]
        The probability that a feature is zero, per instance, in [0, 1).
    importance : tensor [F] or [N, F]
        The weights ``I_i`` of the loss.
    steps, batch : int
        Number of updates and features drawn per instance per update.
    lr : float or sequence/tensor [N]
        Learning rate, one for all instances or one per instance (then each instance's update is the
        optimiser's step at the largest rate, scaled by its own rate over the largest: exactly a
        per-instance rate for SGD and Adam alike); it decays linearly to a tenth over training.
    generator : torch.Generator
        The only source of the training data.
    optimiser : str
        ``"adam"`` (per-coordinate step sizes) or ``"sgd"`` (plain gradient steps).
    record_every : int
        Steps per entry of the loss history.
    """
    if not isinstance(model, ToyModels):
        raise TypeError(f"model must be a ToyModels, got {type(model).__name__}")
    n, f = model.n_instances, model.n_features
    dtype = model.W.dtype
    s = as_instance_values("sparsity", sparsity, n, minimum=0.0, maximum=1.0 - 1e-12)
    imp = _importance_matrix(importance, n, f, dtype)
    steps, batch = check_int("steps", steps, minimum=1), check_int("batch", batch, minimum=1)
    rates = as_instance_values("lr", lr, n, minimum=0.0, maximum=float("inf"))
    if not bool((rates > 0).all()):
        raise ValueError("lr must be > 0 for every instance")
    top = float(rates.max())
    scale = None if bool((rates == top).all()) else (rates / top).to(dtype)
    record_every = check_int("record_every", record_every, minimum=1)
    optimiser = check_choice("optimiser", optimiser, OPTIMISERS)
    check_generator(generator)
    if generator is None:
        raise TypeError("generator must be a torch.Generator (the training data are drawn from it)")
    params = [model.W, model.b] + ([model.raw_radius] if model.output == "isotropic_relu" else [])
    params += [model.d] if model.output == "rotated_relu" else []
    opt = torch.optim.Adam(params, lr=top) if optimiser == "adam" else torch.optim.SGD(params, lr=top)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - 0.9 * t / steps)
    history, window, tail = [], [], []
    tail_from = steps - max(1, steps // 10)
    for t in range(steps):
        x = sample_features(s, f, batch, generator=generator, dtype=dtype)
        per_instance = weighted_loss(x, model(x), imp)
        opt.zero_grad(set_to_none=True)
        per_instance.sum().backward()
        before = None if scale is None else [p.detach().clone() for p in params]
        opt.step()
        if scale is not None:  # each instance moves by its own rate over the largest
            with torch.no_grad():
                for p, old in zip(params, before):
                    p.copy_(old + scale.view(-1, *([1] * (p.ndim - 1))) * (p - old))
        schedule.step()
        detached = per_instance.detach()
        window.append(detached)
        if t >= tail_from:
            tail.append(detached)
        if len(window) == record_every or t == steps - 1:
            history.append(torch.stack(window).mean(0))
            window = []
    return TrainResult(loss=torch.stack(tail).mean(0), history=torch.stack(history), steps=steps)


def one_hot_outputs(model: ToyModels, value: float = 1.0) -> torch.Tensor:
    """The model's outputs for each feature alone at ``value``: ``[N, F, F]`` (row ``i``: input ``value * e_i``)."""
    value = check_float("value", value, minimum=0.0)
    if not isinstance(model, ToyModels):
        raise TypeError(f"model must be a ToyModels, got {type(model).__name__}")
    eye = value * torch.eye(model.n_features, dtype=model.W.dtype)
    with torch.no_grad():
        return model(eye[None].expand(model.n_instances, -1, -1).contiguous())
