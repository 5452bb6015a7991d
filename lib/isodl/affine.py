"""The Affine Divergence: how one SGD step moves activations, and layers that correct it.

Notebooks 09 (``09_affine_divergence.ipynb``) and 10
(``10_normalisation_from_first_principles.ipynb``) derive everything here.

The one-step identity
---------------------
For one sample ``x`` and ``z = W x + b`` with ``g = dL/dz``, one plain SGD step
(rate ``lr``) moves the activation by exactly::

    dz = -lr * (|x|^2 + 1) * g

while steepest descent *in activation space* would move it by ``-lr * g``. The
sample-dependent factor ``|x|^2 + 1`` is the *divergence factor* (G. Bird,
"The Affine Divergence", arXiv 2512.22247, states the result; the derivation
and every numerical check here are the course's). With a mini-batch the step
is ``dz_m = -(lr/B) sum_n K_nm g_n`` with the kernel ``K = X~ X~^T``
(``x~ = [x; 1]``); the factor is its diagonal, the rest is cross-sample
interference.

What is in this module
----------------------
* Layers: :class:`AffineLike` (``(W x + b) / sqrt(|x|^2 + 1)``, factor exactly
  1), :class:`PatchNorm2d` (its patch-wise analogue for convolution, two
  members), :class:`L2Norm` and :data:`RMSNorm` (torch's) as pre-normalisers
  (factors 2 and d + 1), :class:`SingleHeadAttention` for the value path.
* Measurements: :func:`one_step` (the ratio ``|dz| / (lr |dL/dz|)`` after one
  real SGD step, for any layer), :func:`conv_position_step`,
  :func:`token_step`.
* Predictions: :func:`affine_factor`, :func:`minibatch_kernel`,
  :func:`self_term_share`, :func:`self_share_curve`, :func:`patch_matrix`,
  :func:`patch_sq_norms`, :func:`conv_kernel`, :func:`value_path_kernel`.
* The widget of notebook 09: :func:`plot_divergence`.

Provenance: the affine-like formula, its N(0, 1) initialisation and both
PatchNorm members are the *course's reconstruction*, consistent with the
properties the paper states (normalisation built in, degrees of freedom kept,
not scale-invariant, divergence removed). The paper's exact definitions were
not available to the course.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validate import check_bool, check_choice, check_float, check_int, check_tensor

__all__ = [
    "AffineLike",
    "PatchNorm2d",
    "PATCHNORM_FORMS",
    "L2Norm",
    "RMSNorm",
    "l2_normalize",
    "rms_normalize",
    "SingleHeadAttention",
    "augment",
    "augmented_sphere",
    "recover_input",
    "affine_factor",
    "OneStep",
    "LocalStep",
    "one_step",
    "conv_position_step",
    "token_step",
    "minibatch_kernel",
    "self_term_share",
    "self_share_curve",
    "patch_matrix",
    "patch_sq_norms",
    "conv_kernel",
    "value_path_kernel",
    "predicted_minibatch_step",
    "divergence_data",
    "plot_divergence",
]

INITS = ("normal", "linear")
PATCHNORM_FORMS = ("affine_like", "normaliser")


# --------------------------------------------------------------------------- small helpers


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (as for ``nn.Conv2d``), checked."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(f"{name}[0]", value[0], minimum=minimum), check_int(f"{name}[1]", value[1], minimum=minimum))
    v = check_int(name, value, minimum=minimum)
    return (v, v)


def _check_features(name: str, x, n: int, what: str) -> torch.Tensor:
    x = check_tensor(name, x, floating=True)
    if x.ndim < 1 or x.shape[-1] != n:
        raise ValueError(f"{name} must have {n} features in its last dimension ({what}), got shape {tuple(x.shape)}")
    return x


def augment(x) -> torch.Tensor:
    """Append a constant 1 to every input vector: ``x~ = [x; 1]`` (last dimension grows by one).

    With ``x~`` and ``W~ = [W b]`` the affine map is linear: ``W x + b = W~ x~``,
    which is why the bias contributes the ``+ 1`` of the divergence factor.
    """
    x = check_tensor("x", x, floating=True)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension (a vector or a batch of vectors), got shape {tuple(x.shape)}")
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)


def augmented_sphere(x) -> torch.Tensor:
    """``x~ / |x~|``: the bias-augmented input projected onto the unit sphere S^d.

    The affine-like layer is exactly ``W~ augmented_sphere(x)``. The map is
    injective (the inverse gnomonic projection onto the open upper
    hemisphere); :func:`recover_input` undoes it. Compare ``x / |x|``, which
    sends a whole ray to one point and forgets the input's norm.
    """
    xa = augment(x)
    return xa / torch.linalg.vector_norm(xa, dim=-1, keepdim=True)


def recover_input(u) -> torch.Tensor:
    """Invert :func:`augmented_sphere`: ``x = u[:d] / u[d]`` (the gnomonic projection).

    ``u`` must lie on the open upper hemisphere (last coordinate > 0), which is
    where :func:`augmented_sphere` puts every finite input.
    """
    u = check_tensor("u", u, floating=True)
    if u.ndim < 1 or u.shape[-1] < 2:
        raise ValueError(f"u must have at least 2 coordinates in its last dimension, got shape {tuple(u.shape)}")
    last = u[..., -1:]
    if not bool((last > 0).all()):
        raise ValueError("u must lie on the open upper hemisphere: its last coordinate must be > 0 for every row")
    return u[..., :-1] / last


def affine_factor(x, bias: bool = True) -> torch.Tensor:
    """The divergence factor of a plain affine layer for each input row: ``|x|^2 + 1`` (``|x|^2`` without bias)."""
    x = check_tensor("x", x, floating=True)
    bias = check_bool("bias", bias)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension, got shape {tuple(x.shape)}")
    sq = (x * x).sum(dim=-1)
    return sq + 1.0 if bias else sq


def l2_normalize(x, eps: float = 1e-12) -> torch.Tensor:
    """``x / |x|`` along the last dimension (zero vectors stay zero; ``eps`` guards the division)."""
    x = check_tensor("x", x, floating=True)
    eps = check_float("eps", eps, minimum=0.0)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension, got shape {tuple(x.shape)}")
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


def rms_normalize(x, eps: float | None = None) -> torch.Tensor:
    """``x / RMS(x)`` along the last dimension, parameter-free (no gain), via ``torch.nn.functional.rms_norm``.

    After it ``|x^|^2 = d`` for every sample (up to ``eps``; the default is the
    dtype's machine epsilon, as in torch).
    """
    x = check_tensor("x", x, floating=True)
    if eps is not None:
        eps = check_float("eps", eps, minimum=0.0)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension, got shape {tuple(x.shape)}")
    return F.rms_norm(x, (x.shape[-1],), weight=None, eps=eps)


# --------------------------------------------------------------------------- layers


class L2Norm(nn.Module):
    """Parameter-free L2 normaliser ``x / |x|`` over the last dimension (a pre-normaliser).

    Placed directly before an affine layer it makes the divergence factor
    ``|x^|^2 + 1 = 2`` for every sample (``1`` if that layer has no bias).
    """

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = check_float("eps", eps, minimum=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(x, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class _FallbackRMSNorm(nn.Module):  # pragma: no cover - torch >= 2.4 has nn.RMSNorm
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(self.normalized_shape, device=device, dtype=dtype)) if elementwise_affine else None

    def forward(self, x):
        dims = tuple(range(-len(self.normalized_shape), 0))
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        y = x * torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + eps)
        return y if self.weight is None else y * self.weight


#: RMS normalisation: torch's ``nn.RMSNorm`` (``elementwise_affine=False`` for the parameter-free map).
RMSNorm = getattr(nn, "RMSNorm", _FallbackRMSNorm)


class AffineLike(nn.Module):
    """The affine-like layer ``z = (W x + b) / sqrt(|x|^2 + 1)``: an affine map with the divergence removed.

    It has exactly the parameters of ``nn.Linear(in_features, out_features)``
    (``.weight`` of shape ``[out, in]``, ``.bias`` of shape ``[out]``) and no
    running statistics, no coupling between samples. Derived in notebook 10.

    * **Factor exactly 1.** With ``s = sqrt(|x|^2 + 1)`` the gradients are
      ``g x^T / s`` and ``g / s``, so one SGD step on one sample moves ``z``
      by ``-lr g (|x|^2 + 1) / s^2 = -lr g``: the activation-space steepest
      descent step. (Without bias the factor is ``|x|^2 / (|x|^2 + 1)``.)
    * **Normalisation built in, degrees of freedom kept.** It equals
      ``[W b] @ augmented_sphere(x)``: L2 normalisation of the bias-augmented
      input. That map is injective (:func:`recover_input`), unlike ``x/|x|``.
    * **Not scale-invariant.** For ``|x| << 1`` it is nearly ``W x + b``; for
      ``|x| >> 1`` nearly ``W x / |x|``.

    Initialisation (``init``): ``"normal"`` (default) draws ``W ~ N(0, 1)`` and
    sets ``b = 0``, so each output has variance about ``|x|^2/(|x|^2+1) ~ 1``
    whatever the width. ``"linear"`` uses ``nn.Linear``'s default (uniform,
    scale ``1/sqrt(in_features)``); then every layer shrinks its input by about
    ``sqrt(3 in_features)`` (the division by ``|x|`` is not compensated), and
    in a deep stack the input-dependent part of the activations shrinks layer
    after layer until the bias swamps it. Measured in notebook 10 (MNIST-1D,
    ReLU MLP with three hidden layers of 128, 550 plain SGD steps at batch size
    32, learning rates 2 and 8): 0.27 to 0.39 test accuracy with the default
    initialisation against 0.43 to 0.53 with ``"normal"`` over seeds 0 to 2.
    Use a learning rate tens of times larger than for a plain MLP: the step no
    longer carries the factor ``|x|^2 + 1`` (of order the width). The paper's
    own initialisation is not known to the course; this choice is the course's.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "normal", *, dtype=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        bias = check_bool("bias", bias)
        self.init = check_choice("init", init, INITS)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "normal":
            nn.init.normal_(self.weight, 0.0, 1.0)
            if self.bias is not None:
                nn.init.zeros_(self.bias)
        else:  # exactly nn.Linear's default
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_features("x", x, self.in_features, "the layer's in_features")
        scale = torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1.0)
        return F.linear(x, self.weight, self.bias) / scale

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, init={self.init!r}"


class PatchNorm2d(nn.Module):
    """A convolution divided, position by position, by the norm of its own input patch.

    ``n_q^2 = |P_q|^2`` is computed by one extra single-output-channel
    convolution of ``x^2`` with a ones kernel of the *same* kernel size,
    stride, padding and dilation. Two members (``form``):

    * ``"affine_like"`` (default): ``z = (W * x + b) / sqrt(n^2 + 1)``, bias
      inside. Its one-step factor at a position is exactly 1.
    * ``"normaliser"``: ``z = (W * x) / sqrt(n^2 + eps) + b``, bias outside.
      Scale-invariant (up to ``eps``); factor ``n^2/(n^2 + eps) + 1``, i.e. 2.

    Neither can be split into "normalise the input, then convolve" (every
    pixel lies in many patches, each with its own divisor) nor "convolve,
    then normalise the output" (the divisor depends on the input patch, not
    on ``z``): it is one fused operation. Both members are the course's
    reading of the paper's PatchNorm family, not its exact definition.

    ``init="normal"`` draws ``W ~ N(0, 1)``, ``b = 0`` (outputs of variance
    about 1); ``"conv"`` keeps ``nn.Conv2d``'s default. Zero padding only.
    Derived in notebook 10; its one-step identity is measured in notebook 09.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        form: str = "affine_like",
        init: str = "normal",
        eps: float = 1e-6,
        *,
        dtype=None,
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.dilation = _pair("dilation", dilation, 1)
        bias = check_bool("bias", bias)
        self.form = check_choice("form", form, PATCHNORM_FORMS)
        self.init = check_choice("init", init, ("normal", "conv"))
        self.eps = check_float("eps", eps, minimum=0.0)
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "normal":
            nn.init.normal_(self.weight, 0.0, 1.0)
            if self.bias is not None:
                nn.init.zeros_(self.bias)
        else:  # nn.Conv2d's default
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(self.bias, -bound, bound)

    def _conv_args(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def patch_sq_norms(self, x: torch.Tensor) -> torch.Tensor:
        """``|P_q|^2`` at every output position, shape ``[N, 1, H_out, W_out]``."""
        x = self._check_input(x)
        ones = torch.ones(1, self.in_channels, *self.kernel_size, dtype=x.dtype, device=x.device)
        return F.conv2d(x * x, ones, None, **self._conv_args())

    def _check_input(self, x) -> torch.Tensor:
        x = check_tensor("x", x, floating=True)
        if x.ndim != 4:
            raise ValueError(
                f"PatchNorm2d expects a 4-D input [batch, channels, height, width], got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels (dimension 1), got shape {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        conv = F.conv2d(x, self.weight, None, **self._conv_args())
        n2 = self.patch_sq_norms(x)
        bias = None if self.bias is None else self.bias.view(1, -1, 1, 1)
        if self.form == "affine_like":
            out = conv if bias is None else conv + bias
            return out / torch.sqrt(n2 + 1.0)
        out = conv / torch.sqrt(n2 + self.eps)
        return out if bias is None else out + bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}, form={self.form!r}"
        )


class SingleHeadAttention(nn.Module):
    """One attention head, ``o_t = sum_s A_ts (W_V x_s + b_V)`` with ``A = softmax(Q K^T / sqrt(d_k))``.

    Input ``[N, T, d_model]``, output ``[N, T, d_value]``. :meth:`freeze_pattern`
    stops the query and key weights from training, so one SGD step changes
    only the value path and the pattern ``A`` is *exactly* fixed: then the
    step of token ``t`` carries the factor ``|sum_s A_ts x_s|^2 + 1``
    (notebook 09). The query/key paths go through the softmax and are not a
    simple rescaling; the course does not derive them.
    """

    def __init__(self, d_model: int, d_key: int = 8, d_value: int | None = None, bias: bool = True):
        super().__init__()
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.d_key = check_int("d_key", d_key, minimum=1)
        self.d_value = self.d_model if d_value is None else check_int("d_value", d_value, minimum=1)
        bias = check_bool("bias", bias)
        self.query = nn.Linear(self.d_model, self.d_key)
        self.key = nn.Linear(self.d_model, self.d_key)
        self.value = nn.Linear(self.d_model, self.d_value, bias=bias)

    def _check(self, x) -> torch.Tensor:
        x = check_tensor("x", x, floating=True)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape [batch, tokens, {self.d_model}], got {tuple(x.shape)}")
        return x

    def pattern(self, x: torch.Tensor) -> torch.Tensor:
        """The attention pattern ``A`` of shape ``[N, T, T]`` (rows sum to 1)."""
        x = self._check(x)
        scores = self.query(x) @ self.key(x).transpose(-1, -2) / math.sqrt(self.d_key)
        return torch.softmax(scores, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pattern(x) @ self.value(self._check(x))

    def freeze_pattern(self) -> "SingleHeadAttention":
        """Stop training the query and key weights (the pattern stays fixed); returns ``self``."""
        for p in list(self.query.parameters()) + list(self.key.parameters()):
            p.requires_grad_(False)
        return self


# --------------------------------------------------------------------------- measuring one SGD step


@dataclass
class OneStep:
    """What :func:`one_step` measured.

    ``z`` is the layer's output before the step, ``dz`` the change after it,
    ``grad`` the loss gradient ``dL/dz`` that the step descended (same shape
    as ``z``). The properties reduce over everything but the first (sample)
    dimension.
    """

    z: torch.Tensor
    dz: torch.Tensor
    grad: torch.Tensor
    lr: float
    batch: bool

    @property
    def ratio(self) -> torch.Tensor:
        """Per sample ``|dz| / (lr |dL/dz|)``: 1 for activation-space steepest descent (NaN where the gradient is 0)."""
        dz = self.dz.reshape(self.dz.shape[0], -1)
        g = self.grad.reshape(self.grad.shape[0], -1)
        gn = torch.linalg.vector_norm(g, dim=1)
        out = torch.linalg.vector_norm(dz, dim=1) / (self.lr * gn)
        return torch.where(gn > 0, out, torch.full_like(out, float("nan")))

    @property
    def cosine(self) -> torch.Tensor:
        """Per sample cosine between ``dz`` and ``-dL/dz``: 1 when the step points straight downhill."""
        dz = self.dz.reshape(self.dz.shape[0], -1)
        g = self.grad.reshape(self.grad.shape[0], -1)
        return -(dz * g).sum(dim=1) / (torch.linalg.vector_norm(dz, dim=1) * torch.linalg.vector_norm(g, dim=1))

    @property
    def unit_ratios(self) -> torch.Tensor:
        """``-dz / (lr dL/dz)`` entry by entry (NaN where the gradient is 0): the factor seen by each output unit."""
        safe = torch.where(self.grad != 0, self.grad, torch.ones_like(self.grad))
        out = -self.dz / (self.lr * safe)
        return torch.where(self.grad != 0, out, torch.full_like(out, float("nan")))


def _sgd_step_and_delta(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, lr: float):
    """On a copy of ``layer``: z = layer(x); one SGD step on L = sum(weight * z); return z and z' - z."""
    model = copy.deepcopy(layer)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("layer has no trainable parameters, so an SGD step cannot move its output")
    z = model(x)
    if not isinstance(z, torch.Tensor) or z.shape != weight.shape:
        raise ValueError(f"grad_out must have the shape of layer(x), {tuple(z.shape)}, got {tuple(weight.shape)}")
    grads = torch.autograd.grad((weight * z).sum(), params, allow_unused=True)
    with torch.no_grad():
        for p, gp in zip(params, grads):
            if gp is not None:
                p.sub_(lr * gp)
        z_new = model(x)
    return z.detach(), (z_new - z).detach()


def one_step(layer: nn.Module, x, grad_out=None, *, lr: float = 0.01, batch: bool = False, seed: int = 0) -> OneStep:
    """Take one plain SGD step through ``layer`` and measure how its output moved.

    The loss is linear in the output, ``L = sum_m g_m . z_m``, so its gradient
    is exactly ``g`` (``grad_out``, random N(0, 1) from ``seed`` if ``None``).

    * ``batch=False`` (default): every sample gets *its own* step, from the
      same starting parameters (a fresh copy of ``layer`` each time), as at
      batch size 1. ``OneStep.grad`` is ``g``.
    * ``batch=True``: one step on the mean loss ``(1/B) sum_m g_m . z_m`` over
      the whole batch. ``OneStep.grad`` is then ``dL/dz_m = g_m / B``, so the
      ratio is normalised by ``(lr / B) |g_m|`` (no spurious ``1/B``).

    ``layer`` itself is never changed. Every parameter with
    ``requires_grad=True`` is stepped (freeze the ones you want fixed). For
    layers whose output is linear in their parameters (affine, convolution,
    affine-like, a normaliser followed by a linear map, the attention value
    path) the measured change is exact, not a first-order estimate.
    Notebook 09.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    x = check_tensor("x", x, floating=True)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch with samples along dimension 0, got shape {tuple(x.shape)}")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch = check_bool("batch", batch)
    seed = check_int("seed", seed, minimum=0)
    with torch.no_grad():
        z0 = layer(x)
    if grad_out is None:
        gen = torch.Generator().manual_seed(seed)
        g = torch.randn(z0.shape, generator=gen, dtype=torch.float64).to(z0.dtype)
    else:
        g = check_tensor("grad_out", grad_out, floating=True)
        if g.shape != z0.shape:
            raise ValueError(f"grad_out must have the shape of layer(x), {tuple(z0.shape)}, got {tuple(g.shape)}")
        g = g.to(z0.dtype)
    n = x.shape[0]
    if batch:
        z, dz = _sgd_step_and_delta(layer, x, g / n, lr)
        return OneStep(z=z, dz=dz, grad=g / n, lr=lr, batch=True)
    zs, dzs = [], []
    for m in range(n):
        z, dz = _sgd_step_and_delta(layer, x[m : m + 1], g[m : m + 1], lr)
        zs.append(z)
        dzs.append(dz)
    return OneStep(z=torch.cat(zs), dz=torch.cat(dzs), grad=g, lr=lr, batch=False)


@dataclass
class LocalStep:
    """A one-step measurement with the gradient placed at one position (or token) only.

    ``ratio[m]``: ``|dz_q| / (lr |g_q|)`` at that position for sample ``m``.
    ``leak[m, ...]``: at every position ``p``, the signed size of the induced
    step along ``-g_q``, ``-<dz_p, g_q> / (lr |g_q|^2)`` (so ``leak`` at ``q``
    is the ratio). For a convolution ``leak`` is the patch kernel
    ``P_p . P_q + 1``. ``step`` is the full :class:`OneStep`.
    """

    ratio: torch.Tensor
    leak: torch.Tensor
    step: OneStep


def conv_position_step(layer: nn.Module, x, position, *, lr: float = 0.01, seed: int = 0) -> LocalStep:
    """One SGD step per sample through a 2-D convolution-like ``layer`` with the gradient at one output position.

    ``x`` is ``[N, C, H, W]``; ``position = (i, j)`` indexes the layer's output
    ``[N, C_out, H_out, W_out]``. The gradient is random (from ``seed``) over the
    output channels at ``(i, j)`` and zero elsewhere. For ``nn.Conv2d`` the
    ratio is ``|P_q|^2 + 1`` and ``leak`` the map ``P_p . P_q + 1``; for the
    affine-like :class:`PatchNorm2d` the ratio is 1 and ``leak`` the cosine
    of the augmented patches. Notebook 09.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    x = check_tensor("x", x, ndim=4, floating=True)
    with torch.no_grad():
        z = layer(x)
    if z.ndim != 4:
        raise ValueError(f"layer must return a 4-D output [N, C, H, W], got shape {tuple(z.shape)}")
    if not (isinstance(position, (tuple, list)) and len(position) == 2):
        raise TypeError(f"position must be a pair (row, column) of output indices, got {position!r}")
    i = check_int("position[0]", position[0], minimum=0, maximum=z.shape[2] - 1)
    j = check_int("position[1]", position[1], minimum=0, maximum=z.shape[3] - 1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    g = torch.zeros(z.shape, dtype=z.dtype)
    g[:, :, i, j] = torch.randn(z.shape[0], z.shape[1], generator=gen, dtype=torch.float64).to(z.dtype)
    step = one_step(layer, x, g, lr=lr, batch=False)
    gq = g[:, :, i, j]  # [N, C]
    leak = -torch.einsum("ncpq,nc->npq", step.dz, gq) / (lr * (gq * gq).sum(dim=1)).view(-1, 1, 1)
    ratio = torch.linalg.vector_norm(step.dz[:, :, i, j], dim=1) / (lr * torch.linalg.vector_norm(gq, dim=1))
    return LocalStep(ratio=ratio, leak=leak, step=step)


def token_step(layer: nn.Module, x, token: int, *, lr: float = 0.01, seed: int = 0) -> LocalStep:
    """One SGD step per sample through a sequence layer ``[N, T, d] -> [N, T, d_out]`` with the gradient on one token.

    For :class:`SingleHeadAttention` with :meth:`~SingleHeadAttention.freeze_pattern`
    the ratio is ``|sum_s A_ts x_s|^2 + 1``. ``leak`` has shape ``[N, T]``.
    Notebook 09.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    x = check_tensor("x", x, ndim=3, floating=True)
    with torch.no_grad():
        z = layer(x)
    if z.ndim != 3:
        raise ValueError(f"layer must return a 3-D output [N, T, d_out], got shape {tuple(z.shape)}")
    t = check_int("token", token, minimum=0, maximum=z.shape[1] - 1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    g = torch.zeros(z.shape, dtype=z.dtype)
    g[:, t, :] = torch.randn(z.shape[0], z.shape[2], generator=gen, dtype=torch.float64).to(z.dtype)
    step = one_step(layer, x, g, lr=lr, batch=False)
    gt = g[:, t, :]
    leak = -torch.einsum("nsc,nc->ns", step.dz, gt) / (lr * (gt * gt).sum(dim=1)).view(-1, 1)
    ratio = torch.linalg.vector_norm(step.dz[:, t, :], dim=1) / (lr * torch.linalg.vector_norm(gt, dim=1))
    return LocalStep(ratio=ratio, leak=leak, step=step)


# --------------------------------------------------------------------------- kernels (predictions)


def minibatch_kernel(x, bias: bool = True, normalised: bool = False) -> torch.Tensor:
    """The affine layer's tangent kernel on a batch: ``K = X~ X~^T``, i.e. ``K_nm = x_n . x_m + 1``.

    One SGD step on the batch's mean loss moves sample ``m`` by
    ``dz_m = -(lr/B) sum_n K_nm g_n``. ``bias=False`` drops the ``+ 1``.
    ``normalised=True`` gives the affine-like layer's kernel, the cosine
    similarities of the augmented inputs (unit diagonal). ``x`` is ``[B, d]``.
    Notebook 09.
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    bias = check_bool("bias", bias)
    normalised = check_bool("normalised", normalised)
    xa = augment(x) if bias else x
    k = xa @ xa.T
    if normalised:
        s = torch.sqrt(torch.diagonal(k))
        k = k / (s[:, None] * s[None, :])
    return k


def predicted_minibatch_step(x, g, lr: float) -> torch.Tensor:
    """``-(lr/B) K g`` with ``K = X X^T + 1``: the exact step of ``z = W x + b`` under one SGD step on the mean loss.

    ``x`` is ``[B, d]``, ``g`` the per-sample loss gradients ``[B, out]``.
    The reference for notebook 09's exercise.
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    g = check_tensor("g", g, ndim=2, floating=True)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"x and g must have one row per sample, got {x.shape[0]} and {g.shape[0]} rows")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    return -(lr / x.shape[0]) * minibatch_kernel(x) @ g


def self_term_share(kernel) -> torch.Tensor:
    """For each sample ``m``, the share of its step's kernel weight that is its own: ``|K_mm| / sum_n |K_nm|``.

    1 at batch size 1; ``1 / (1 + (B - 1) c)`` when every off-diagonal entry
    has size ``c`` relative to the diagonal. For the affine-like layer
    (unit diagonal) it measures how much of sample ``m``'s step is the
    corrected, ideal term ``-lr g_m / B``; the rest is cross-sample
    interference, which the correction does not touch. Notebook 09.
    """
    k = check_tensor("kernel", kernel, ndim=2, floating=True)
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be square [B, B], got shape {tuple(k.shape)}")
    return torch.diagonal(k).abs() / k.abs().sum(dim=1)


def self_share_curve(
    x, batch_sizes: Sequence[int], *, kind: str = "affine_like", n_batches: int = 20, seed: int = 0
) -> np.ndarray:
    """Mean :func:`self_term_share` over ``n_batches`` random batches (drawn without replacement) of each size.

    ``kind``: ``"affine"`` (``K = X X^T + 1``), ``"l2"`` (L2 pre-normaliser
    then affine: ``K = X^ X^^T + 1``) or ``"affine_like"`` (cosines of the
    augmented inputs). Returns a NumPy array, one value per batch size.
    The mechanistic curve beside the batch-size experiment (notebooks 09, 10).
    """
    x = check_tensor("x", x, ndim=2, floating=True)
    kind = check_choice("kind", kind, ("affine", "l2", "affine_like"))
    n_batches = check_int("n_batches", n_batches, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of ints, got {batch_sizes!r}")
    sizes = [check_int(f"batch_sizes[{i}]", b, minimum=1, maximum=x.shape[0]) for i, b in enumerate(batch_sizes)]
    x = x.to(torch.float64)
    if kind == "l2":
        x = l2_normalize(x)
    gen = torch.Generator().manual_seed(seed)
    largest = max(sizes)
    totals = np.zeros(len(sizes))
    for _ in range(n_batches):
        # One random batch of the largest size; its first b samples are a random batch of size b.
        idx = torch.randperm(x.shape[0], generator=gen)[:largest]
        k = minibatch_kernel(x[idx], normalised=(kind == "affine_like")).abs()
        for i, b in enumerate(sizes):
            sub = k[:b, :b]
            totals[i] += float((torch.diagonal(sub) / sub.sum(dim=1)).mean())
    out = totals / n_batches
    return np.asarray(out)


def patch_matrix(x, kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """The input patches of a 2-D convolution: ``[N, L, C * kh * kw]``, one row per output position (row-major).

    Row ``q`` is ``P_q``, the receptive field of output position ``q``
    (``torch.nn.functional.unfold``). Notebook 09.
    """
    x = check_tensor("x", x, ndim=4, floating=True)
    k = _pair("kernel_size", kernel_size, 1)
    cols = F.unfold(x, k, dilation=_pair("dilation", dilation, 1), padding=_pair("padding", padding, 0),
                    stride=_pair("stride", stride, 1))
    return cols.transpose(1, 2)


def patch_sq_norms(x, kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """``|P_q|^2`` at every output position, ``[N, 1, H_out, W_out]``: a ones-kernel convolution of ``x^2``.

    The same computation :class:`PatchNorm2d` does internally.
    """
    x = check_tensor("x", x, ndim=4, floating=True)
    k = _pair("kernel_size", kernel_size, 1)
    ones = torch.ones(1, x.shape[1], *k, dtype=x.dtype, device=x.device)
    return F.conv2d(x * x, ones, None, stride=_pair("stride", stride, 1), padding=_pair("padding", padding, 0),
                    dilation=_pair("dilation", dilation, 1))


def conv_kernel(x, kernel_size, stride=1, padding=0, dilation=1, *, bias: bool = True, normalised: bool = False) -> torch.Tensor:
    """The convolution's tangent kernel over all (sample, position) pairs: ``K = P~ P~^T``, ``[N L, N L]``.

    Entry ``((n, p), (m, q))`` is ``P_{n,p} . P_{m,q} + 1``. One SGD step on the
    mean loss over the ``N`` samples moves output channel ``c`` by
    ``dz = -(lr/N) K g`` (flattened sample-major, positions row-major): weight
    sharing makes positions behave like extra samples. ``normalised=True`` is
    the affine-like :class:`PatchNorm2d`'s kernel (cosines of augmented patches).
    """
    bias = check_bool("bias", bias)
    normalised = check_bool("normalised", normalised)
    p = patch_matrix(x, kernel_size, stride, padding, dilation)
    return minibatch_kernel(p.reshape(-1, p.shape[-1]), bias=bias, normalised=normalised)


def value_path_kernel(x, pattern, *, bias: bool = True) -> torch.Tensor:
    """The attention value path's kernel with the pattern held fixed, over all (sample, token) pairs.

    With ``r_t = sum_s A_ts x~_s`` the value output is ``W~ r_t``, so the
    kernel is ``R R^T`` (``[N T, N T]``); for rows of ``A`` summing to 1 it is
    ``A X X^T A^T + 1`` within a sample, and its diagonal is the factor
    ``|sum_s A_ts x_s|^2 + 1``. ``x``: ``[N, T, d]``, ``pattern``: ``[N, T, T]``.
    """
    x = check_tensor("x", x, ndim=3, floating=True)
    a = check_tensor("pattern", pattern, ndim=3, floating=True)
    if a.shape != (x.shape[0], x.shape[1], x.shape[1]):
        raise ValueError(f"pattern must have shape [N, T, T] = {[x.shape[0], x.shape[1], x.shape[1]]}, got {list(a.shape)}")
    bias = check_bool("bias", bias)
    xa = augment(x) if bias else x
    r = (a.to(xa.dtype) @ xa).reshape(-1, xa.shape[-1])
    return r @ r.T


# --------------------------------------------------------------------------- widget (notebook 09)

_DATA_CACHE: dict = {}


def divergence_data(name: str = "mnist1d") -> torch.Tensor:
    """Inputs for :func:`plot_divergence`: MNIST-1D training signals or isotropic Gaussian vectors (d = 40), float64."""
    name = check_choice("data", name, ("mnist1d", "gaussian"))
    if name not in _DATA_CACHE:
        if name == "mnist1d":
            from .data import mnist1d

            x = mnist1d().x_train.to(torch.float64)
        else:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(4000, 40, generator=gen, dtype=torch.float64)
        _DATA_CACHE[name] = x
    return _DATA_CACHE[name].clone()


def plot_divergence(input_norm: float = 6.0, batch_size: int = 32, data: str = "mnist1d"):
    """Notebook 09's widget: how the input norm and the batch size shape one SGD step.

    The inputs are rescaled so their median norm is ``input_norm``. Left: the
    per-sample divergence factor of a plain affine layer, ``|x|^2 + 1``, with the
    constant factors of L2 pre-normalisation (2) and the affine-like layer
    (1). Right: the self-term share (:func:`self_term_share`) against batch
    size for the three kernels, with the chosen batch size marked.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from .plots import COLORS, figure

    input_norm = check_float("input_norm", input_norm, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=256)
    x = divergence_data(data)
    x = x * (input_norm / float(torch.linalg.vector_norm(x, dim=1).median()))
    factors = affine_factor(x).numpy()
    sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    if batch_size not in sizes:
        sizes = sorted(sizes + [batch_size])
    curves = {
        "affine": self_share_curve(x, sizes, kind="affine", n_batches=8),
        "L2 then affine": self_share_curve(x, sizes, kind="l2", n_batches=8),
        "affine-like": self_share_curve(x, sizes, kind="affine_like", n_batches=8),
    }
    fig, (ax0, ax1) = figure(2, width=8.6, height=3.8)
    lo = min(0.7, float(factors.min()) * 0.8)
    hi = max(3.0, float(factors.max()) * 1.3)
    bins = np.geomspace(max(1.0, float(factors.min())) * 0.95, float(factors.max()) * 1.05 + 1e-9, 30)
    ax0.hist(factors, bins=bins, color=COLORS[0], alpha=0.8, label="affine: |x|^2 + 1")
    ax0.axvline(2.0, color=COLORS[1], lw=2, ls="--", label="L2 then affine: 2")
    ax0.axvline(1.0, color=COLORS[2], lw=2, label="affine-like: 1")
    ax0.set_xscale("log")
    ax0.set_xlim(lo, hi)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax0.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax0.xaxis.set_major_formatter(plain)
    ax0.xaxis.set_minor_formatter(NullFormatter())
    ax0.set_xlabel("divergence factor |dz| / (lr |dL/dz|)")
    ax0.set_ylabel("number of samples")
    ax0.set_title(f"one sample, one step (median |x| = {input_norm:.3g})")
    ax0.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=7)
    styles = {
        "affine": dict(color=COLORS[0], lw=4, alpha=0.45),
        "L2 then affine": dict(color=COLORS[1], ls="--", marker="s", ms=3),
        "affine-like": dict(color=COLORS[2], marker="o", ms=3),
    }
    for label, curve in curves.items():
        ax1.plot(sizes, curve, label=label, **styles[label])
    k = sizes.index(batch_size)
    ax1.axvline(batch_size, color="k", lw=0.8, ls=":")
    ax1.plot(sizes, [1.0 / s for s in sizes], color="0.6", lw=1, ls=":", label="1/B (no self-term advantage)")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.xaxis.set_major_formatter(plain)
    ax1.yaxis.set_major_formatter(plain)
    ax1.set_ylim(min(1.0 / sizes[-1], min(float(c.min()) for c in curves.values())) * 0.8, 1.3)
    ax1.set_xlabel("batch size B")
    ax1.set_ylabel("self-term share of the step")
    ax1.set_title(f"at B = {batch_size}: affine-like share {curves['affine-like'][k]:.2f}")
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7)
    return fig
