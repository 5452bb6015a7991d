"""Notebooks 10, 11: normalisation layers (L2, RMS, the affine-like layer, PatchNorm) and single-head attention.

The layers whose one SGD step :mod:`isodl.normalisation.divergence` measures
(notebook 10, ``10_affine_divergence.ipynb``) and
:mod:`isodl.normalisation.experiments` compares (notebook 12,
``12_normalisation_experiments.ipynb``; notebook 11 derives them). One SGD step through a plain
affine layer ``z = W x + b`` moves its output by ``|x|^2 + 1`` times the
steepest-descent step in activation space: the *divergence factor*,
:func:`affine_factor` (G. Bird, "The Affine Divergence", arXiv 2512.22247; the
identity is derived in :mod:`isodl.normalisation.divergence`).

* :class:`AffineLike` -- ``(W x + b) / sqrt(|x|^2 + 1)``: factor exactly 1.
  Initialisation (:data:`INITS`): ``"normal"`` (``N(0, 1)``, bias 0) or
  ``"linear"`` (``nn.Linear``'s, the pitfall).
* :class:`PatchNorm2d` -- its patch-wise analogue for convolution, in two
  members (:data:`PATCHNORM_FORMS`): ``"affine_like"`` (bias inside, factor 1)
  and ``"normaliser"`` (bias outside, scale-invariant).
* :class:`L2Norm` and :data:`RMSNorm` (torch's) -- parameter-free
  pre-normalisers (factors 2 and d + 1); :func:`l2_normalize` and
  :func:`rms_normalize` are the same maps as functions.
* :class:`SingleHeadAttention` -- one attention head, for the value path of
  notebook 10.
* :func:`augment`, :func:`augmented_sphere` and :func:`recover_input` -- the
  bias-augmented input ``x~ = [x; 1]``, its projection onto the unit sphere and
  back (notebook 11).

Provenance: the affine-like formula, its N(0, 1) initialisation and both
PatchNorm members are the *course's reconstruction*, consistent with the
properties the paper states (normalisation built in, degrees of freedom kept,
not scale-invariant, divergence removed). The paper's exact definitions are
not used here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from isodl.core.init import default_init_, linear
from isodl.core.validate import check_bool, check_choice, check_float, check_generator, check_int, check_tensor

__all__ = [
    "INITS",
    "PATCHNORM_FORMS",
    "augment",
    "augmented_sphere",
    "recover_input",
    "affine_factor",
    "l2_normalize",
    "rms_normalize",
    "L2Norm",
    "RMSNorm",
    "AffineLike",
    "PatchNorm2d",
    "SingleHeadAttention",
    "as_pair",
]

INITS = ("normal", "linear")
PATCHNORM_FORMS = ("affine_like", "normaliser")


# --------------------------------------------------------------------------- small helpers


def as_pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (as for ``nn.Conv2d``), checked."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(f"{name}[0]", value[0], minimum=minimum), check_int(f"{name}[1]", value[1], minimum=minimum))
    v = check_int(name, value, minimum=minimum)
    return (v, v)


def _initialise(weight, bias, normal: bool, fan_in: int, generator) -> None:
    """``normal``: ``W ~ N(0, 1)``, ``b = 0``; else PyTorch's default (:func:`isodl.core.init.default_init_`)."""
    generator = check_generator(generator)
    with torch.no_grad():
        if normal:
            nn.init.normal_(weight, 0.0, 1.0, generator=generator)
            if bias is not None:
                nn.init.zeros_(bias)
        else:
            default_init_(weight, bias, fan_in, generator)


def _add_weight_and_bias(module: nn.Module, shape: tuple[int, ...], bias: bool, dtype) -> None:
    """Register an uninitialised ``weight`` of ``shape`` and a ``bias`` of ``shape[0]`` (or ``bias = None``)."""
    module.weight = nn.Parameter(torch.empty(*shape, dtype=dtype))
    if bias:
        module.bias = nn.Parameter(torch.empty(shape[0], dtype=dtype))
    else:
        module.register_parameter("bias", None)


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
        raise ValueError(
            f"x must have at least one dimension (a vector or a batch of vectors), got shape {tuple(x.shape)}"
        )
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
        self.normalized_shape = (
            (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.eps = eps
        self.weight = (
            nn.Parameter(torch.ones(self.normalized_shape, device=device, dtype=dtype)) if elementwise_affine else None
        )

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
    running statistics, no coupling between samples. Derived in notebook 11.

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
    after layer until the bias swamps it. Measured in notebook 11 (MNIST-1D,
    ReLU MLP with three hidden layers of 128, 550 plain SGD steps at batch size
    32, learning rates 2 and 8): 0.27 to 0.39 test accuracy with the default
    initialisation against 0.43 to 0.53 with ``"normal"`` over seeds 0 to 2.
    Use a learning rate tens of times larger than for a plain MLP: the step no
    longer carries the factor ``|x|^2 + 1`` (of order the width). The paper's
    own initialisation is not known to the course; this choice is the course's.

    ``generator``: a ``torch.Generator`` to draw the initial weights from
    (``None``: the global random state); the draws are the same either way,
    so a generator seeded with ``s`` gives the weights ``torch.manual_seed(s)``
    gives.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "normal",
        *,
        dtype=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        bias = check_bool("bias", bias)
        self.init = check_choice("init", init, INITS)
        _add_weight_and_bias(self, (self.out_features, self.in_features), bias, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the initial weights (``init``), from ``generator`` if given, else from the global random state."""
        _initialise(self.weight, self.bias, self.init == "normal", self.in_features, generator)

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
    Derived in notebook 11; its one-step identity is measured in notebook 10.
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
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.kernel_size = as_pair("kernel_size", kernel_size, 1)
        self.stride = as_pair("stride", stride, 1)
        self.padding = as_pair("padding", padding, 0)
        self.dilation = as_pair("dilation", dilation, 1)
        bias = check_bool("bias", bias)
        self.form = check_choice("form", form, PATCHNORM_FORMS)
        self.init = check_choice("init", init, ("normal", "conv"))
        self.eps = check_float("eps", eps, minimum=0.0)
        _add_weight_and_bias(self, (self.out_channels, self.in_channels, *self.kernel_size), bias, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the initial weights (``init``), from ``generator`` if given, else from the global random state."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        _initialise(self.weight, self.bias, self.init == "normal", fan_in, generator)

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
    (notebook 10). The query/key paths go through the softmax and are not a
    simple rescaling; the course does not derive them.
    """

    def __init__(
        self,
        d_model: int,
        d_key: int = 8,
        d_value: int | None = None,
        bias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.d_key = check_int("d_key", d_key, minimum=1)
        self.d_value = self.d_model if d_value is None else check_int("d_value", d_value, minimum=1)
        bias = check_bool("bias", bias)
        self.query = linear(self.d_model, self.d_key, generator=generator)
        self.key = linear(self.d_model, self.d_key, generator=generator)
        self.value = linear(self.d_model, self.d_value, bias=check_bool("bias", bias), generator=generator)

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

    def freeze_pattern(self) -> SingleHeadAttention:
        """Stop training the query and key weights (the pattern stays fixed); returns ``self``."""
        for p in list(self.query.parameters()) + list(self.key.parameters()):
            p.requires_grad_(False)
        return self
