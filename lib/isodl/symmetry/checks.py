"""Notebooks 01-04 (01, 02, 03, 04): exercise checks (isotropic tanh, cone count, plane points, top-k purity).

One check per exercise. Each compares the learner's function with the library's
reference on random inputs through :func:`isodl.exercises.compare_functions`,
with hints for the usual mistakes, and is registered with
:func:`isodl.exercises.register_check`:

* notebook 01: :func:`check_isotropic_tanh`, against
  :func:`isodl.core.activations.isotropic_tanh`;
* notebook 02: :func:`check_cone_count`, against :func:`isodl.symmetry.srm.cone_count`;
* notebook 03: :func:`check_top_k_purity`, against
  :func:`isodl.symmetry.representations.class_purity` of the top-k samples;
* notebook 04: :func:`check_plane_points`, against
  :func:`isodl.symmetry.pppm.privileged_plane_projection`.

The check cell of each notebook::

    from isodl.symmetry import checks
    checks.check_isotropic_tanh(isotropic_tanh)
"""

from __future__ import annotations

import warnings

import torch

from isodl.exercises import CheckResult, compare_functions, exercise_check, matches, register_check

__all__ = [
    "ISOTROPIC_TANH_HINTS",
    "check_isotropic_tanh",
    "CONE_COUNT_HINTS",
    "check_cone_count",
    "PLANE_POINTS_HINTS",
    "check_plane_points",
    "TOP_K_PURITY_HINTS",
    "check_top_k_purity",
]

# --------------------------------------------------------------------------- notebooks 01 and 02
# (references: isodl.core.activations.isotropic_tanh, isodl.symmetry.srm.cone_count)


def _isotropic_tanh_reference(x):
    from isodl.core import activations

    return activations.isotropic_tanh(x)


def _isotropic_tanh_inputs(gen: torch.Generator, trial: int):
    """float64 batches [rows, n]; odd trials hold zero rows, every trial some very short and long rows."""
    rows = int(torch.randint(4, 9, (1,), generator=gen))
    n = int(torch.randint(2, 6, (1,), generator=gen))
    lengths = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 3 - 1.5)  # 0.03 .. 30
    x = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * lengths
    x[0] *= 1e-9  # almost at the origin
    if trial % 2 == 1:
        x[int(torch.randint(1, rows, (1,), generator=gen))] = 0.0
    return (x,)


def _iso_nonfinite_at_zero(got, expected, inputs) -> bool:
    zero = (inputs[0] == 0).all(dim=-1)
    return bool(zero.any()) and not bool(torch.isfinite(got[zero]).all())


def _iso_is_elementwise(got, expected, inputs) -> bool:
    return matches(got, torch.tanh(inputs[0]))


def _iso_not_divided(got, expected, inputs) -> bool:
    x = inputs[0]
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return matches(got, torch.tanh(r) * x)


def _iso_wrong_dim(got, expected, inputs) -> bool:
    x = inputs[0]
    r = torch.linalg.vector_norm(x, dim=0, keepdim=True)
    return matches(got[:, (r[0] > 0)], (torch.tanh(r) / r * x)[:, (r[0] > 0)])


ISOTROPIC_TANH_HINTS = (
    (
        _iso_nonfinite_at_zero,
        "at the origin (a zero row) tanh(r) / r is 0 / 0; its limit is 1, so return x there (use torch.where on a safe "
        "norm)",
    ),
    (
        _iso_is_elementwise,
        "torch.tanh(x) acts on each coordinate; the isotropic map squashes the length of the whole row",
    ),
    (
        _iso_not_divided,
        "tanh(r) * x has length tanh(r) * r: keep the direction x / r, i.e. use tanh(r) / r as the gain",
    ),
    (_iso_wrong_dim, "take the length of each row with dim=-1 (keepdim=True), not of each column"),
)


def check_isotropic_tanh(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-01 exercise ``isotropic_tanh(x)`` against :func:`isodl.core.activations.isotropic_tanh`.

    First the values on float64 batches (lengths 1e-9 to 30, zero rows in odd
    trials); then the gradient at the origin and next to it, which must be
    finite (``torch.where`` evaluates both branches, so a NaN in the branch not
    taken still poisons the gradient).
    """
    result = compare_functions(
        fn,
        _isotropic_tanh_reference,
        _isotropic_tanh_inputs,
        name="isotropic_tanh",
        n_trials=n_trials,
        seed=seed,
        hints=ISOTROPIC_TANH_HINTS,
        verbose=False,
    )
    if result.passed:
        x = torch.tensor(
            [[0.0, 0.0, 0.0], [3e-9, -4e-9, 0.0], [0.3, 0.1, -0.5]], dtype=torch.float64, requires_grad=True
        )
        problem = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(x)
                (grad,) = torch.autograd.grad((out * torch.arange(1.0, 4.0, dtype=torch.float64)).sum(), x)
        except Exception as exc:  # a learner's function that cannot be differentiated
            problem = f"backpropagating through your function raised {type(exc).__name__}: {exc}"
        else:
            if not bool(torch.isfinite(grad).all()):
                problem = (
                    "the values are right, but the gradient at the origin is not finite "
                    f"(d/dx of your output at x = 0 gave {grad[0].tolist()}). Hint: torch.where computes both "
                    "branches and backpropagates through both, so tanh(r) / r at r = 0 still makes NaN; divide by a "
                    "safe norm, torch.where(r > 0, r, torch.ones_like(r)), inside the branch"
                )
            elif not torch.allclose(grad[0], torch.arange(1.0, 4.0, dtype=torch.float64)):
                problem = (
                    "the gradient at the origin should be the identity map (isotropic tanh equals x to first order), "
                    f"got {grad[0].tolist()} for the weights [1, 2, 3]"
                )
        if problem is not None:
            result = CheckResult(
                name="isotropic_tanh", passed=False, message=f"FAIL: isotropic_tanh: {problem}.", trials=result.trials
            )
        else:
            result.message += "; its gradient at the origin is finite (the identity)"
    if verbose:
        print(result.message)
        result.printed = True
    return result


register_check(check_isotropic_tanh)


def _cone_count_reference(activations, probes, epsilon):
    from isodl.symmetry import srm

    return srm.cone_count(activations, probes, epsilon)


def _cone_count_inputs(gen: torch.Generator, trial: int):
    """Activations with mixed lengths (some exactly on an axis, some zero), axis and random unit probes."""
    epsilons = (0.5, 1.0, 0.0, -0.4, 0.8, -1.0, 0.25)
    n = int(torch.randint(2, 6, (1,), generator=gen))
    rows = int(torch.randint(8, 20, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 4 - 2)  # 0.01 .. 100
    a = torch.randn(rows, n, generator=gen, dtype=torch.float64) * scale
    a[0] = 0.0
    a[0, 0] = 3.0  # exactly along the first axis: cos = 1 with the first probe
    a[1] = 0.0
    a[1, 1] = 0.5  # exactly orthogonal to the first probe: cos = 0
    if trial % 2 == 1:
        a[2] = 0.0  # a zero row
    n_probes = int(torch.randint(2, 6, (1,), generator=gen))
    p = torch.randn(n_probes, n, generator=gen, dtype=torch.float64)
    p = p / torch.linalg.vector_norm(p, dim=1, keepdim=True)
    p[0] = 0.0
    p[0, 0] = 1.0
    eps = epsilons[trial % len(epsilons)]
    return (a, p, eps)


def _cone_strict(got, expected, inputs) -> bool:
    from isodl.core.ops import unit_rows

    a, p, eps = inputs
    return matches(got, (unit_rows(a) @ p.T > eps).to(torch.float64).mean(dim=0))


def _cone_not_normalised(got, expected, inputs) -> bool:
    a, p, eps = inputs
    return matches(got, (a @ p.T >= eps).to(torch.float64).mean(dim=0))


def _cone_counts_not_fractions(got, expected, inputs) -> bool:
    return matches(got, expected * inputs[0].shape[0])


def _cone_zero_rows_dropped(got, expected, inputs) -> bool:
    a, p, eps = inputs
    zero = (a == 0).all(dim=1)
    return bool(zero.any()) and eps <= 0 and matches(got, expected - zero.sum() / a.shape[0])


def _cone_wrong_shape(got, expected, inputs) -> bool:
    return tuple(got.shape) != tuple(expected.shape)


CONE_COUNT_HINTS = (
    (
        _cone_wrong_shape,
        "return one fraction per probe: shape [A] for probes of shape [A, n] (average over the N activations, dim=0)",
    ),
    (
        _cone_not_normalised,
        "normalise each activation row to unit length before the dot product (the cone tests the angle only)",
    ),
    (_cone_strict, "the cone includes its boundary: use >= epsilon, not > epsilon"),
    (_cone_counts_not_fractions, "return the fraction of activations in the cone (divide the count by N)"),
    (
        _cone_zero_rows_dropped,
        "a zero activation row stays zero after normalising (not NaN); its dot product is 0, which is inside the cone "
        "when epsilon <= 0",
    ),
)


@exercise_check(_cone_count_reference, _cone_count_inputs, hints=CONE_COUNT_HINTS)
def check_cone_count(fn, *, n_trials: int = 7, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-02 exercise ``cone_count(activations, probes, epsilon)`` against :func:`isodl.symmetry.srm.cone_count`.

    Trials cover epsilon = 1 with an activation exactly on a probe, epsilon = 0
    with an activation exactly orthogonal to it (both on the boundary, so ``>=``
    matters), negative epsilon, zero rows and lengths from 0.01 to 100.
    """


# --------------------------------------------------------------------------- notebook 04
# (reference: isodl.symmetry.pppm.privileged_plane_projection)


def _plane_points_reference(z, i, j, epsilon):
    from isodl.symmetry import pppm

    basis = torch.eye(z.shape[1], dtype=z.dtype)
    res = pppm.privileged_plane_projection(z, basis[[i, j]], epsilon, "comb")
    return res.points  # one plane, samples in order


def _plane_points_inputs(gen: torch.Generator, trial: int):
    epsilons = (0.8, 0.6, 0.9, 0.0, 0.7)
    n = int(torch.randint(3, 7, (1,), generator=gen))
    rows = int(torch.randint(20, 40, (1,), generator=gen))
    scale = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 2 - 1)  # 0.1 .. 10
    z = torch.randn(rows, n, generator=gen, dtype=torch.float64) * scale
    i, j = (int(v) for v in torch.randperm(n, generator=gen)[:2])
    z[0] = 0.0
    z[0, i], z[0, j] = 3.0, -4.0  # exactly in the plane, radius 5
    if trial % 2 == 1:
        z[1] = 0.0  # a zero row: kept only when epsilon <= 0
    eps = epsilons[trial % len(epsilons)]
    return (z, i, j, eps)


def _pp_normalised(got, expected, inputs) -> bool:
    z, i, j, eps = inputs
    norms = torch.linalg.vector_norm(z, dim=1)
    keep = (torch.hypot(z[:, i], z[:, j]) >= eps * norms) & (norms > 0)
    return matches(got, z[keep][:, [i, j]] / norms[keep, None])


def _pp_swapped(got, expected, inputs) -> bool:
    return tuple(got.shape) == tuple(expected.shape) and matches(got, expected[:, [1, 0]])


def _pp_strict(got, expected, inputs) -> bool:
    return tuple(got.shape) != tuple(expected.shape) and got.shape[0] < expected.shape[0]


def _pp_wrong_shape(got, expected, inputs) -> bool:
    return got.ndim != 2 or got.shape[1] != 2


PLANE_POINTS_HINTS = (
    (
        _pp_wrong_shape,
        "return the kept points as a [M, 2] tensor: column 0 along b_i (z[:, i]), column 1 along b_j (z[:, j])",
    ),
    (_pp_swapped, "the first coordinate is along b_i and the second along b_j: (u, v) = (z[:, i], z[:, j])"),
    (_pp_normalised, "keep the raw coordinates (radii carry meaning); normalise only to decide which samples to keep"),
    (
        _pp_strict,
        "too few points: keep a sample when sqrt(u^2 + v^2) / |z| >= epsilon (the boundary counts), and compare the in-plane length with the whole vector's length",
    ),
)


@exercise_check(_plane_points_reference, _plane_points_inputs, hints=PLANE_POINTS_HINTS)
def check_plane_points(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-04 exercise ``plane_points(z, i, j, epsilon)`` against :func:`isodl.symmetry.pppm.privileged_plane_projection`.

    One plane of the standard basis: the raw ``(z_i, z_j)`` of every sample whose
    in-plane fraction ``sqrt(z_i^2 + z_j^2) / |z|`` is at least ``epsilon``, in sample order.
    Trials include a sample exactly in the plane and one on the boundary.
    """


# --------------------------------------------------------------------------- notebook 03
# (grandmother directions; reference: isodl.symmetry.representations.class_purity)


def _top_k_purity_reference(scores, labels, k):
    from isodl.symmetry import representations

    top = torch.argsort(scores, descending=True, stable=True)[:k]
    return representations.class_purity(labels[top])


def _top_k_purity_inputs(gen: torch.Generator):
    """Distinct float64 scores [N] that favour one class, int64 labels [N] and k, with a unique top class.

    The favoured class gets a moderate score boost, so the top k usually but
    not always lead with it, the k lowest scores lead with another class and
    the whole set is close to balanced. Draws are repeated until the most
    common class among the top k is unique (no tie to break) and all scores
    are distinct (no tie in the ranking).
    """
    n = int(torch.randint(30, 81, (1,), generator=gen))
    n_classes = int(torch.randint(3, 7, (1,), generator=gen))
    k = int(torch.randint(5, 16, (1,), generator=gen))
    while True:
        labels = torch.randint(0, n_classes, (n,), generator=gen)
        favoured = int(torch.randint(0, n_classes, (1,), generator=gen))
        scores = torch.randn(n, generator=gen, dtype=torch.float64) + 1.2 * (labels == favoured).to(torch.float64)
        top = torch.argsort(scores, descending=True)[:k]
        counts = torch.bincount(labels[top], minlength=n_classes)
        if int((counts == counts.max()).sum()) == 1 and torch.unique(scores).numel() == n:
            return (scores, labels, k)


def _tkp_pair(got):
    """``(share, class)`` of a learner's output as Python numbers (raises if it is not a pair)."""
    share, cls = got
    return float(share), int(cls)


def _tkp_same(got, target) -> bool:
    share, cls = _tkp_pair(got)
    return abs(share - float(target[0])) <= 1e-6 and cls == int(target[1])


def _tkp_not_a_pair(got, expected, inputs) -> bool:
    return not isinstance(got, (tuple, list)) or len(got) != 2


def _tkp_count(got, expected, inputs) -> bool:
    share, cls = _tkp_pair(got)
    return abs(share - expected[0] * inputs[2]) <= 1e-6 and abs(share - expected[0]) > 1e-6


def _tkp_smallest(got, expected, inputs) -> bool:
    from isodl.symmetry import representations

    scores, labels, k = inputs
    return _tkp_same(got, representations.class_purity(labels[torch.argsort(scores)[:k]]))


def _tkp_k_plus_one(got, expected, inputs) -> bool:
    from isodl.symmetry import representations

    scores, labels, k = inputs
    return _tkp_same(got, representations.class_purity(labels[torch.argsort(scores, descending=True)[: k + 1]]))


def _tkp_all_samples(got, expected, inputs) -> bool:
    from isodl.symmetry import representations

    return _tkp_same(got, representations.class_purity(inputs[1]))


def _tkp_divided_by_n(got, expected, inputs) -> bool:
    scores, labels, k = inputs
    share, cls = _tkp_pair(got)
    return abs(share - expected[0] * k / labels.numel()) <= 1e-6


def _tkp_class_of_top_sample(got, expected, inputs) -> bool:
    scores, labels, k = inputs
    share, cls = _tkp_pair(got)
    return (
        abs(share - float(expected[0])) <= 1e-6 and cls != int(expected[1]) and cls == int(labels[torch.argmax(scores)])
    )


TOP_K_PURITY_HINTS = (
    (_tkp_not_a_pair, "return two values, the share and the class: `return share, cls`"),
    (_tkp_count, "return the share of the top class (its count divided by k), not the count"),
    (_tkp_smallest, "take the k samples with the LARGEST scores (sort in descending order, or use torch.topk)"),
    (_tkp_k_plus_one, "take exactly k samples: scores.argsort(descending=True)[:k] has k entries"),
    (_tkp_all_samples, "count the classes among the top k samples only, not among all samples"),
    (_tkp_divided_by_n, "divide the count by k (the size of the top set), not by the number of samples"),
    (
        _tkp_class_of_top_sample,
        "the class to return is the most common class among the k samples (torch.bincount, then argmax), "
        "not the class of the single highest-scoring sample",
    ),
)


@exercise_check(_top_k_purity_reference, _top_k_purity_inputs, hints=TOP_K_PURITY_HINTS)
def check_top_k_purity(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-03 exercise ``top_k_purity(scores, labels, k)``.

    Expected: ``(share, cls)``, the most common class ``cls`` among the ``k``
    samples with the largest ``scores`` and its share of those ``k``, i.e.
    :func:`isodl.symmetry.representations.class_purity` of ``labels[top k]``. The
    random inputs have distinct scores and a unique most common class, so no
    tie has to be broken; scores favour one class moderately, so taking the
    k smallest scores, k + 1 samples or all samples gives another answer.
    """
