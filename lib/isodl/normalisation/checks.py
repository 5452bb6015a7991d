"""Notebooks 10-12 (10, 11, 12): exercise checks (batch step, affine-like layer, a diagnosis of a buggy variant, paired interval).

Each check compares the learner's function with the library's reference on
random inputs through :func:`isodl.exercises.compare_functions`, with hints for
the usual mistakes, and is registered with :func:`isodl.exercises.register_check`:

* notebook 10: :func:`check_predicted_step` (``predicted_step(x, g, lr, bias)``,
  the learner's derived batch step), against the step *measured* by
  :func:`isodl.normalisation.divergence.one_step` through a real ``nn.Linear``
  with or without bias (the formula is not given to the learner);
* notebook 11: :func:`check_affine_like` (``affine_like(x, weight, bias)``, the
  formula of :class:`isodl.normalisation.layers.AffineLike`) and
  :func:`check_bias_outside_factor` (``bias_outside_factor(x)``: the derived
  one-step factor of :class:`BiasOutsideAffineLike`, the variant with the bias
  outside the division, against the factor measured after one SGD step);
* notebook 12: :func:`check_paired_interval` (``paired_interval(a, b)``, the
  paired difference of two per-seed results with its 95 % t interval).
"""

from __future__ import annotations

import torch
from torch import nn

from isodl.core.validate import check_int
from isodl.exercises import CheckResult, compare_functions, exercise_check, register_check

__all__ = [
    "PREDICTED_STEP_HINTS",
    "check_predicted_step",
    "AFFINE_LIKE_HINTS",
    "check_affine_like",
    "BiasOutsideAffineLike",
    "BIAS_OUTSIDE_HINTS",
    "check_bias_outside_factor",
    "PAIRED_HINTS",
    "check_paired_interval",
]


# --------------------------------------------------------------------------- notebooks 10 and 11
# (references: isodl.normalisation.divergence and isodl.normalisation.layers)


def _predicted_step_inputs(gen: torch.Generator, trial: int):
    """Inputs for :func:`check_predicted_step`: a batch x [B, d], gradients g [B, out], a rate, and the bias flag.

    Even trials have a bias, odd trials none, so both cases of the derivation are checked.
    """
    b = int(torch.randint(2, 9, (1,), generator=gen))
    d = int(torch.randint(2, 11, (1,), generator=gen))
    out = int(torch.randint(1, 5, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 2 - 1)  # norms 0.1x .. 10x
    x = torch.randn(b, d, generator=gen, dtype=torch.float64) * scale
    g = torch.randn(b, out, generator=gen, dtype=torch.float64)
    lr = float(10.0 ** (torch.rand(1, generator=gen, dtype=torch.float64) * 2 - 2))  # 0.01 .. 1
    return (x, g, lr, trial % 2 == 0)


def _measured_batch_step(x, g, lr, bias=True):
    """The reference: one real SGD step of an ``nn.Linear`` (with or without bias) on the mean loss, measured."""
    from isodl.core.init import linear
    from isodl.normalisation.divergence import one_step

    gen = torch.Generator().manual_seed(x.shape[0] * 100 + x.shape[1])
    layer = linear(x.shape[1], g.shape[1], bias=bias, generator=gen, dtype=torch.float64)
    return one_step(layer, x, g, lr=lr, batch=True).dz.detach()


def _close_to(got, target) -> bool:
    got = got.to(torch.float64)
    return tuple(got.shape) == tuple(target.shape) and bool(torch.allclose(got, target, rtol=1e-5, atol=1e-8))


def _kernel_step(x, g, lr, plus):
    return -(lr / x.shape[0]) * (x @ x.T + plus) @ g


def _step_bias_forgotten(got, expected, inputs) -> bool:
    x, g, lr, bias = inputs
    return bias and _close_to(got, _kernel_step(x, g, lr, 0.0))


def _step_bias_invented(got, expected, inputs) -> bool:
    x, g, lr, bias = inputs
    return not bias and _close_to(got, _kernel_step(x, g, lr, 1.0))


def _step_without_mean(got, expected, inputs) -> bool:
    return _close_to(got, expected * inputs[0].shape[0])


def _step_wrong_sign(got, expected, inputs) -> bool:
    return _close_to(got, -expected)


def _step_diagonal_only(got, expected, inputs) -> bool:
    x, g, lr, bias = inputs
    factor = (x * x).sum(dim=1, keepdim=True) + float(bias)
    return _close_to(got, -(lr / x.shape[0]) * factor * g) or _close_to(got, -lr * factor * g)


PREDICTED_STEP_HINTS = (
    (_step_wrong_sign, "the step goes downhill: every parameter moves by minus the learning rate times its gradient"),
    (
        _step_bias_forgotten,
        "with bias=True the bias is a parameter too: its step moves every sample's z by the same amount, "
        "which adds 1 to every x_n . x_m",
    ),
    (_step_bias_invented, "with bias=False the layer is z = W x: there is no bias step, so no + 1"),
    (_step_without_mean, "the loss is the mean over the batch, so every gradient (and the step) carries a factor 1/B"),
    (
        _step_diagonal_only,
        "that is only sample m's own term (the factor |x_m|^2 + 1 on its own gradient); the weights are shared, so "
        "every sample n's gradient moves sample m too, weighted by how much x_n and x_m overlap",
    ),
)


def check_predicted_step(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 10's exercise ``predicted_step(x, g, lr, bias)`` against a measured SGD step.

    ``x`` is a float64 batch [B, d] (B from 2 to 8, row norms spread over two
    orders of magnitude), ``g`` the per-sample gradients [B, out], ``lr``
    between 0.01 and 1, ``bias`` True in even trials and False in odd ones.
    The reference takes one plain SGD step of an ``nn.Linear(d, out, bias)``
    on the mean loss ``(1/B) sum_m g_m . z_m`` and measures how every sample's
    output moved (:func:`isodl.normalisation.divergence.one_step` with
    ``batch=True``); the derivation gives ``-(lr/B) (X X^T + 1) g``, without
    the ``+ 1`` when there is no bias.
    """
    return compare_functions(
        fn,
        _measured_batch_step,
        _predicted_step_inputs,
        name="predicted_step",
        n_trials=n_trials,
        seed=seed,
        rtol=1e-7,
        atol=1e-10,
        hints=PREDICTED_STEP_HINTS,
        verbose=verbose,
    )


register_check(check_predicted_step)


def _affine_like_reference(x, weight, bias):
    return (x @ weight.T + bias) / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1.0)


def _affine_like_inputs(gen: torch.Generator):
    """Inputs for :func:`check_affine_like`: x [B, d] with norms from 0.01 to 100, weight [out, d], bias [out]."""
    b = int(torch.randint(2, 7, (1,), generator=gen))
    d = int(torch.randint(2, 9, (1,), generator=gen))
    out = int(torch.randint(1, 5, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 4 - 2)
    x = torch.randn(b, d, generator=gen, dtype=torch.float64) * scale
    weight = torch.randn(out, d, generator=gen, dtype=torch.float64)
    bias = torch.randn(out, generator=gen, dtype=torch.float64)
    return (x, weight, bias)


def _affine_like_by_norm(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T + b) / x.norm(dim=-1, keepdim=True))


def _affine_like_bias_outside(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T) / torch.sqrt((x * x).sum(-1, keepdim=True) + 1) + b)


def _affine_like_no_sqrt(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, (x @ w.T + b) / ((x * x).sum(-1, keepdim=True) + 1))


def _affine_like_plain(got, expected, inputs) -> bool:
    x, w, b = inputs
    return _close_to(got, x @ w.T + b)


AFFINE_LIKE_HINTS = (
    (_affine_like_plain, "that is the plain affine map; divide it by sqrt(|x|^2 + 1), one number per sample"),
    (
        _affine_like_by_norm,
        "divide by sqrt(|x|^2 + 1), the norm of the augmented input [x; 1], not by |x| "
        "(the +1 is the bias's share of the divergence factor)",
    ),
    (_affine_like_bias_outside, "the bias goes inside the division: (W x + b) / sqrt(|x|^2 + 1)"),
    (_affine_like_no_sqrt, "divide by the square root sqrt(|x|^2 + 1), not by |x|^2 + 1"),
)


@exercise_check(_affine_like_reference, _affine_like_inputs, rtol=1e-07, atol=1e-10, hints=AFFINE_LIKE_HINTS)
def check_affine_like(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 11's exercise ``affine_like(x, weight, bias)``: ``(x W^T + b) / sqrt(|x|^2 + 1)`` row by row.

    Inputs are float64, ``x`` [B, d] with row norms from 0.01 to 100, ``weight``
    [out, d], ``bias`` [out]. The reference is the forward map of
    :class:`isodl.normalisation.layers.AffineLike`.
    """


class BiasOutsideAffineLike(nn.Module):
    """Notebook 11's diagnosis exercise: ``z = W x / sqrt(|x|^2 + 1) + b``, the affine-like layer with the bias outside.

    The forward map differs from :class:`isodl.normalisation.layers.AffineLike`
    only in where the bias sits; the learner derives what that does to the
    one-step factor (:func:`check_bias_outside_factor`). Weights ``N(0, 1)``,
    bias 0, drawn from ``generator`` (``None``: the global random state).
    """

    def __init__(self, in_features: int, out_features: int, *, dtype=torch.float64, generator=None):
        super().__init__()
        in_features = check_int("in_features", in_features, minimum=1)
        out_features = check_int("out_features", out_features, minimum=1)
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=generator, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1.0)
        return (x @ self.weight.T) / scale + self.bias


def _bias_outside_inputs(gen: torch.Generator):
    """Inputs for :func:`check_bias_outside_factor`: x [B, d] with row norms from 0.01 to 100 (float64)."""
    b = int(torch.randint(4, 9, (1,), generator=gen))
    d = int(torch.randint(2, 9, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 4 - 2)
    return (torch.randn(b, d, generator=gen, dtype=torch.float64) * scale,)


def _measured_bias_outside_factor(x):
    """The reference: ``|dz| / (lr |g|)`` per sample after one SGD step of :class:`BiasOutsideAffineLike`."""
    from isodl.normalisation.divergence import one_step

    layer = BiasOutsideAffineLike(x.shape[1], 3, generator=torch.Generator().manual_seed(x.shape[0]))
    return one_step(layer, x, lr=0.1, seed=0).ratio.detach()


def _sq(x):
    return (x * x).sum(dim=-1)


def _factor_is(got, target) -> bool:
    return _close_to(got.reshape(-1), target)


BIAS_OUTSIDE_HINTS = (
    (
        lambda got, exp, inp: _factor_is(got, torch.ones(inp[0].shape[0], dtype=torch.float64)),
        "1 is the factor of the layer with the bias inside; here the bias's gradient is g itself (not g / s), "
        "so its step moves z by -lr g on top of what the weight step does",
    ),
    (
        lambda got, exp, inp: _factor_is(got, _sq(inp[0]) + 1),
        "|x|^2 + 1 is the plain affine layer's factor; here the weight gradient is g x^T / s and its effect on z is "
        "divided by s once more",
    ),
    (
        lambda got, exp, inp: _factor_is(got, _sq(inp[0]) / (_sq(inp[0]) + 1)),
        "that is the weight step's share only; add the bias's share (the bias moves z one for one)",
    ),
    (
        lambda got, exp, inp: _factor_is(got, torch.full((inp[0].shape[0],), 2.0, dtype=torch.float64)),
        "2 is the L2 normaliser's factor; here the weight step's share is |x|^2 / (|x|^2 + 1), which depends on |x|",
    ),
    (
        lambda got, exp, inp: _factor_is(got, 1 + _sq(inp[0]).sqrt() / torch.sqrt(_sq(inp[0]) + 1)),
        "the weight step's share is (W step) x / s with a W step of -lr g x^T / s: that is |x|^2 / s^2, not |x| / s",
    ),
)


@exercise_check(_measured_bias_outside_factor, _bias_outside_inputs, rtol=1e-07, atol=1e-09, hints=BIAS_OUTSIDE_HINTS)
def check_bias_outside_factor(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 11's exercise ``bias_outside_factor(x)``: the one-step factor of :class:`BiasOutsideAffineLike`.

    ``x`` is float64 [B, d] with row norms from 0.01 to 100; the answer is one
    factor per sample, ``[B]``. The reference *measures* it: one plain SGD
    step per sample through the layer (:func:`isodl.normalisation.divergence.one_step`),
    ``|dz| / (lr |dL/dz|)``. The derivation gives ``(2|x|^2 + 1) / (|x|^2 + 1)``.
    """


# --------------------------------------------------------------------------- notebook 12
# (reference: isodl.normalisation.experiments.paired_difference)


def _paired_reference(a, b):
    from isodl.normalisation.experiments import paired_difference

    d = paired_difference(dict(enumerate(a.tolist())), dict(enumerate(b.tolist())))
    return torch.tensor([d["mean"], d["lo"], d["hi"]], dtype=torch.float64)


def _paired_inputs(gen: torch.Generator):
    n = int(torch.randint(3, 9, (1,), generator=gen))
    base = 5 * torch.rand(n, generator=gen, dtype=torch.float64)  # a shared per-seed effect: pairing matters
    a = base + 0.05 * torch.randn(n, generator=gen, dtype=torch.float64) + 0.02
    b = base + 0.05 * torch.randn(n, generator=gen, dtype=torch.float64)
    return a, b


def _interval(mean, sd, n, q):
    half = q * sd / n**0.5
    return torch.tensor([mean, mean - half, mean + half], dtype=torch.float64)


def _paired_normal_quantile(got, expected, inputs) -> bool:
    a, b = inputs
    d = a - b
    return any(
        _close_to(got, _interval(float(d.mean()), float(d.std()), len(d), q)) for q in (1.96, 1.959963984540054, 2.0)
    )


def _paired_biased_sd(got, expected, inputs) -> bool:
    from scipy import stats

    a, b = inputs
    d = a - b
    return _close_to(
        got, _interval(float(d.mean()), float(d.std(unbiased=False)), len(d), stats.t.ppf(0.975, len(d) - 1))
    )


def _paired_unpaired(got, expected, inputs) -> bool:
    a, b = inputs
    return (
        abs(float(got[0]) - float((a - b).mean())) < 1e-9
        and float(got[2] - got[1]) > float(expected[2] - expected[1]) * 1.5
    )


PAIRED_HINTS = (
    (
        _paired_normal_quantile,
        "with a handful of seeds use Student's t quantile, scipy.stats.t.ppf(0.975, n - 1), not 1.96",
    ),
    (_paired_biased_sd, "the standard deviation of the differences needs n - 1 in the denominator (unbiased)"),
    (
        _paired_unpaired,
        "pair the seeds: take the differences a_i - b_i first, then their mean and spread (not two separate spreads)",
    ),
)


@exercise_check(_paired_reference, _paired_inputs, rtol=1e-9, atol=1e-12, hints=PAIRED_HINTS)
def check_paired_interval(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 12's exercise ``paired_interval(a, b)``: ``[mean, lo, hi]`` of ``a - b`` paired by seed, 95 % t interval.

    Inputs are two float64 vectors of 3 to 8 per-seed values sharing a per-seed effect. The reference is
    :func:`isodl.normalisation.experiments.paired_difference`.
    """
