"""Notebooks 10-12 (10, 11, 12): exercise checks (predicted step, affine-like layer and its initialisation, paired interval).

Each check compares the learner's function with the library's reference on
random inputs through :func:`isodl.exercises.compare_functions`, with hints for
the usual mistakes, and is registered with :func:`isodl.exercises.register_check`:

* notebook 10: :func:`check_predicted_step` (``predicted_step(x, g, lr)``),
  against :func:`isodl.normalisation.divergence.predicted_minibatch_step`;
* notebook 11: :func:`check_affine_like` (``affine_like(x, weight, bias)``, the
  formula of :class:`isodl.normalisation.layers.AffineLike`) and
  :func:`check_affine_like_init` (``init_affine_like_(layer)``: weights
  ``N(0, 1)`` and bias 0, in place, judged by the statistics of the weights it
  leaves);
* notebook 12: :func:`check_paired_interval` (``paired_interval(a, b)``, the
  paired difference of two per-seed results with its 95 % t interval).

The learner's initialiser draws from PyTorch's global stream
(``layer.weight.normal_(0.0, 1.0)``, as the exercise suggests), so
:func:`check_affine_like_init` runs it inside ``torch.random.fork_rng`` with a
fixed seed: the verdict is repeatable and the notebook's own random stream is
left as it was.
"""

from __future__ import annotations

import torch

from isodl.exercises import CheckResult, compare_functions, exercise_check, register_check

__all__ = [
    "PREDICTED_STEP_HINTS",
    "check_predicted_step",
    "AFFINE_LIKE_HINTS",
    "check_affine_like",
    "AFFINE_LIKE_INIT_HINTS",
    "check_affine_like_init",
    "PAIRED_HINTS",
    "check_paired_interval",
]


# --------------------------------------------------------------------------- notebooks 10 and 11
# (references: isodl.normalisation.divergence and isodl.normalisation.layers)


def _predicted_step_inputs(gen: torch.Generator):
    """Inputs for :func:`check_predicted_step`: a batch x [B, d], gradients g [B, out] and a learning rate."""
    b = int(torch.randint(2, 9, (1,), generator=gen))
    d = int(torch.randint(2, 11, (1,), generator=gen))
    out = int(torch.randint(1, 5, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(b, 1, generator=gen, dtype=torch.float64) * 2 - 1)  # norms 0.1x .. 10x
    x = torch.randn(b, d, generator=gen, dtype=torch.float64) * scale
    g = torch.randn(b, out, generator=gen, dtype=torch.float64)
    lr = float(10.0 ** (torch.rand(1, generator=gen, dtype=torch.float64) * 2 - 2))  # 0.01 .. 1
    return (x, g, lr)


def _close_to(got, target) -> bool:
    got = got.to(torch.float64)
    return tuple(got.shape) == tuple(target.shape) and bool(torch.allclose(got, target, rtol=1e-5, atol=1e-8))


def _step_without_bias(got, expected, inputs) -> bool:
    x, g, lr = inputs
    return _close_to(got, -(lr / x.shape[0]) * (x @ x.T) @ g)


def _step_without_mean(got, expected, inputs) -> bool:
    return _close_to(got, expected * inputs[0].shape[0])


def _step_wrong_sign(got, expected, inputs) -> bool:
    return _close_to(got, -expected)


def _step_diagonal_only(got, expected, inputs) -> bool:
    x, g, lr = inputs
    factor = (x * x).sum(dim=1, keepdim=True) + 1
    return _close_to(got, -(lr / x.shape[0]) * factor * g) or _close_to(got, -lr * factor * g)


PREDICTED_STEP_HINTS = (
    (_step_wrong_sign, "the step goes downhill: it is minus the learning rate times the kernel times g"),
    (_step_without_bias, "the bias is a parameter too: its update adds 1 to every kernel entry, K = X X^T + 1"),
    (_step_without_mean, "the loss is the mean over the batch, so the step carries a factor 1/B"),
    (
        _step_diagonal_only,
        "that is only the self-term (the divergence factor |x|^2 + 1 on each sample's own gradient); "
        "with a batch, every sample's gradient moves every other sample through K_nm = x_n . x_m + 1",
    ),
)


def check_predicted_step(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 10's exercise ``predicted_step(x, g, lr)`` against :func:`isodl.normalisation.divergence.predicted_minibatch_step`.

    ``x`` is a float64 batch [B, d] (B from 2 to 8, row norms spread over two
    orders of magnitude), ``g`` the per-sample gradients [B, out], ``lr``
    between 0.01 and 1. The expected result is ``-(lr/B) (X X^T + 1) g``.
    """
    from isodl.normalisation.divergence import predicted_minibatch_step

    return compare_functions(
        fn,
        predicted_minibatch_step,
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


def _init_statistics(fn):
    """Wrap the learner's in-place initialiser: build a layer, call fn on it, return [std(W), mean(W), max|b|]."""

    def initialise_and_measure(in_features, out_features):
        from isodl.normalisation.layers import AffineLike

        seed = in_features * 1000 + out_features
        layer = AffineLike(in_features, out_features, init="linear", generator=torch.Generator().manual_seed(seed))
        # The learner's initialiser draws from the global stream (layer.weight.normal_(...), as the exercise
        # suggests): seed it for a repeatable verdict, inside fork_rng so the notebook's own stream is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            with torch.no_grad():
                fn(layer)
        w = layer.weight.detach().to(torch.float64)
        b = layer.bias.detach().to(torch.float64)
        return torch.stack([w.std(), w.mean(), b.abs().max()])

    return initialise_and_measure


def _init_inputs(gen: torch.Generator):
    in_features = int(torch.randint(64, 257, (1,), generator=gen))
    out_features = int(torch.randint(64, 129, (1,), generator=gen))
    return (in_features, out_features)


def _init_reference(in_features, out_features):
    return torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)


def _init_fan_in_scale(got, expected, inputs) -> bool:
    return float(got[0]) < 0.3


def _init_bias_left(got, expected, inputs) -> bool:
    return abs(float(got[0]) - 1.0) <= 0.06 and float(got[2]) > 0.06


def _init_uniform(got, expected, inputs) -> bool:
    return 0.45 < float(got[0]) < 0.7


AFFINE_LIKE_INIT_HINTS = (
    (
        _init_fan_in_scale,
        "the weights are still of order 1/sqrt(in_features), nn.Linear's scale; the affine-like layer already divides "
        "by about |x|, so give every weight variance 1 (for example layer.weight.normal_(0.0, 1.0))",
    ),
    (_init_bias_left, "the weights look right; now set every bias entry to zero"),
    (_init_uniform, "uniform(-1, 1) has standard deviation 0.58, not 1: draw the weights from N(0, 1)"),
)


def check_affine_like_init(fn, *, n_trials: int = 4, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check notebook 11's exercise ``init_affine_like_(layer)``: weights ~ N(0, 1), bias = 0, in place.

    Each trial builds an :class:`isodl.normalisation.layers.AffineLike` with ``nn.Linear``'s
    default initialisation (64 to 256 inputs, 64 to 128 outputs), calls
    ``fn(layer)`` and compares ``[std(weight), mean(weight), max|bias|]`` with
    ``[1, 0, 0]`` (absolute tolerance 0.06, far above the sampling error of a
    correct N(0, 1) draw of at least 4096 weights). The notebook's random
    stream is left untouched.
    """
    if not callable(fn):
        raise TypeError(
            f"candidate must be a function, got {type(fn).__name__}; pass the function itself, e.g. "
            "check_affine_like_init(init_affine_like_)"
        )
    return compare_functions(
        _init_statistics(fn),
        _init_reference,
        _init_inputs,
        name="init_affine_like_",
        n_trials=n_trials,
        seed=seed,
        rtol=0.0,
        atol=0.06,
        hints=AFFINE_LIKE_INIT_HINTS,
        verbose=verbose,
    )


register_check(check_affine_like_init)


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
