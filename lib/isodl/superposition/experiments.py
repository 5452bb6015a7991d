"""Notebook 14: the sweeps behind the superposition notebook (sparsity x seeds in one batched run, phase diagram, hidden-basis alignment).

* :func:`instance_grid` lays settings out as instances (setting-major, seeds inner) and
  :func:`mean_se` folds per-instance values back into mean and standard error per setting;
* :func:`train_sweep` trains one :class:`~isodl.superposition.models.ToyModels` with one
  instance per (sparsity, seed) and :class:`Sweep` summarises it per sparsity
  (features represented, dimensions per feature, features recovered, loss);
* :func:`phase_diagram` trains the ``F = 2, m = 1`` model over relative importance and
  sparsity and classifies each result (:data:`PHASES`);
* :func:`hidden_alignment` measures whether a model's hidden layer is aligned with its
  neurons (weight share on the top neuron, per-coordinate kurtosis, the four-fold SRM
  harmonic from :mod:`isodl.symmetry.srm`) next to the same measures after a random
  rotation of the hidden space (the rotated null).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from isodl.core.validate import check_float, check_int, check_tensor
from isodl.superposition import metrics, models
from isodl.symmetry import representations, srm

__all__ = [
    "PHASES",
    "instance_grid",
    "mean_se",
    "Sweep",
    "train_sweep",
    "PhaseDiagram",
    "phase_diagram",
    "classify_two_features",
    "hidden_alignment",
    "rotation_commutation",
]

#: Phases of the F = 2, m = 1 model: what the single hidden dimension is used for.
PHASES = ("feature 1 (alone or mostly)", "feature 2 (alone or mostly)", "both, antipodal (superposition)", "neither")


def instance_grid(settings, n_seeds: int) -> torch.Tensor:
    """One entry per instance: each setting repeated ``n_seeds`` times (setting-major), float64."""
    s = check_tensor("settings", torch.as_tensor(settings, dtype=torch.float64), ndim=1)
    if s.numel() == 0:
        raise ValueError("settings must hold at least one value")
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    return s.repeat_interleave(n_seeds)


def mean_se(values, n_seeds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-instance values ``[K * n_seeds]`` -> ``(mean, standard error)`` per setting, each ``[K]`` (float64).

    The standard error is ``std / sqrt(n_seeds)`` (0 for a single seed); ``nan`` entries are ignored.
    """
    v = check_tensor("values", torch.as_tensor(values), ndim=1).to(torch.float64)
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    if v.numel() % n_seeds:
        raise ValueError(f"values must hold a multiple of n_seeds = {n_seeds} entries, got {v.numel()}")
    v = v.reshape(-1, n_seeds)
    count = (~torch.isnan(v)).sum(-1)
    mean = v.nanmean(-1)
    dev = torch.where(torch.isnan(v), torch.zeros_like(v), v - mean[:, None])
    var = (dev**2).sum(-1) / torch.clamp(count - 1, min=1)
    se = torch.where(count > 1, (var / count).sqrt(), torch.zeros_like(mean))
    return mean, se


@dataclass
class Sweep:
    """A trained sweep: ``model`` (one instance per (sparsity, seed)), its settings and losses."""

    model: models.ToyModels
    sparsities: torch.Tensor  # [K]
    n_seeds: int
    importance: torch.Tensor  # [F]
    result: models.TrainResult

    @property
    def W(self) -> torch.Tensor:
        """The trained weights, ``[K * n_seeds, m, F]`` (detached, float64)."""
        return self.model.W.detach().to(torch.float64)

    def instance(self, sparsity_index: int, seed_index: int = 0) -> int:
        """The instance index of a (sparsity, seed) pair."""
        k = check_int("sparsity_index", sparsity_index, minimum=0, maximum=len(self.sparsities) - 1)
        return k * self.n_seeds + check_int("seed_index", seed_index, minimum=0, maximum=self.n_seeds - 1)

    def per_instance(self) -> dict[str, torch.Tensor]:
        """Every summary per instance: represented, dims_per_feature, recovered, loss."""
        ones = models.one_hot_outputs(self.model).to(torch.float64)
        zero = models.one_hot_outputs(self.model, 0.0).to(torch.float64)
        return {
            "represented": metrics.features_represented(self.W).to(torch.float64),
            "dims_per_feature": metrics.dimensions_per_feature(self.W),
            "recovered": metrics.recovered_features(ones - zero).to(torch.float64),
            "loss": self.result.loss.to(torch.float64),
        }

    def table(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each summary of :meth:`per_instance` as ``(mean, s.e.)`` per sparsity."""
        return {k: mean_se(v, self.n_seeds) for k, v in self.per_instance().items()}


def train_sweep(
    sparsities,
    n_seeds: int,
    importance,
    *,
    n_hidden: int,
    output: str = "relu",
    hidden: str = "linear",
    steps: int,
    batch: int,
    lr: float,
    optimiser: str = "adam",
    seed: int = 0,
) -> Sweep:
    """Train ``len(sparsities) * n_seeds`` instances at once (initialisation and data from ``seed``)."""
    imp = check_tensor("importance", importance, ndim=1, floating=True, finite=True)
    seed = check_int("seed", seed, minimum=0)
    s = instance_grid(sparsities, n_seeds)
    gen = torch.Generator().manual_seed(seed)
    model = models.ToyModels(s.numel(), imp.numel(), n_hidden, output=output, hidden=hidden, generator=gen)
    result = models.train_toy_models(model, s, imp, steps=steps, batch=batch, lr=lr, generator=gen, optimiser=optimiser)
    return Sweep(model, torch.as_tensor(sparsities, dtype=torch.float64), n_seeds, imp, result)


def classify_two_features(W, threshold: float = 0.5) -> torch.Tensor:
    """The phase (index into :data:`PHASES`) of ``F = 2, m = 1`` weights ``[..., 1, 2]``.

    Superposition (2): both ``|w_i| > threshold``, opposite signs and ``w_1^2 + w_2^2 > 1.5`` (more than one
    feature's worth of weight in one dimension). Otherwise the larger ``|w_i|`` names the phase if it exceeds
    ``threshold`` (a linear model may mix two features of equal importance in one direction: that is not
    superposition), else neither (3).
    """
    w = metrics.check_weights(W)
    if tuple(w.shape[-2:]) != (1, 2):
        raise ValueError(f"W must have shape [..., 1, 2] (m = 1, F = 2), got {tuple(w.shape)}")
    threshold = check_float("threshold", threshold, minimum=0.0)
    w1, w2 = w[..., 0, 0], w[..., 0, 1]
    both = (w1.abs() > threshold) & (w2.abs() > threshold) & (w1 * w2 < 0) & (w1**2 + w2**2 > 1.5)
    phase = torch.where(w1.abs() >= w2.abs(), 0, 1)
    phase = torch.where(torch.maximum(w1.abs(), w2.abs()) > threshold, phase, 3)
    return torch.where(both, 2, phase)


@dataclass
class PhaseDiagram:
    """``phase[i, j]`` (index into :data:`PHASES`) at ``relative_importance[i]``, ``sparsity[j]``; ``W`` of the best restart."""

    relative_importance: torch.Tensor
    sparsity: torch.Tensor
    phase: torch.Tensor
    W: torch.Tensor  # [I, S, 1, 2]
    loss: torch.Tensor  # [I, S]


def phase_diagram(
    relative_importance,
    sparsity,
    *,
    n_restarts: int = 2,
    steps: int,
    batch: int,
    lr: float,
    output: str = "relu",
    seed: int = 0,
) -> PhaseDiagram:
    """Train the ``F = 2, m = 1`` model on a grid (feature 1 importance 1, feature 2 ``relative_importance``).

    ``output`` is the output map (:data:`~isodl.superposition.models.OUTPUTS`; the paper's is ``"relu"``).

    Each grid point gets ``n_restarts`` instances; the one with the lowest final loss is kept.
    """
    r = check_tensor("relative_importance", torch.as_tensor(relative_importance, dtype=torch.float64), ndim=1)
    s = check_tensor("sparsity", torch.as_tensor(sparsity, dtype=torch.float64), ndim=1)
    if bool((r <= 0).any()):
        raise ValueError("relative_importance must be > 0")
    n_restarts = check_int("n_restarts", n_restarts, minimum=1)
    n_i, n_s = r.numel(), s.numel()
    ii, jj = torch.meshgrid(torch.arange(n_i), torch.arange(n_s), indexing="ij")
    ii, jj = ii.reshape(-1).repeat_interleave(n_restarts), jj.reshape(-1).repeat_interleave(n_restarts)
    imp = torch.stack([torch.ones_like(r[ii]), r[ii]], dim=1).to(torch.float32)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    model = models.ToyModels(ii.numel(), 2, 1, output=output, generator=gen)
    # losses differ in scale with importance: compare restarts, never grid points
    result = models.train_toy_models(model, s[jj], imp, steps=steps, batch=batch, lr=lr, generator=gen)
    loss = result.loss.reshape(n_i, n_s, n_restarts).to(torch.float64)
    best = loss.argmin(-1)
    W = model.W.detach().to(torch.float64).reshape(n_i, n_s, n_restarts, 1, 2)
    W = torch.gather(W, 2, best[:, :, None, None, None].expand(-1, -1, 1, 1, 2)).squeeze(2)
    return PhaseDiagram(r, s, classify_two_features(W), W, loss.gather(-1, best[..., None]).squeeze(-1))


def hidden_alignment(
    model: models.ToyModels,
    sparsity,
    *,
    generator: torch.Generator,
    n_samples: int = 1024,
    epsilon: float = 0.8,
    n_rotations: int = 200,
) -> dict[str, torch.Tensor]:
    """Neuron-alignment measures of each instance's hidden layer and of its rotated null, ``[N]`` each.

    Keys: ``alignment`` / ``alignment_null`` (:func:`metrics.basis_alignment` of ``W``, and its mean over
    ``n_rotations`` random rotations ``Q W`` of the same instance, :func:`metrics.rotated_alignment_null`),
    ``log_kurtosis_ratio`` (log of the mean kurtosis of the neurons over that of rotated coordinates,
    on activations of ``n_samples`` fresh inputs; 0 without alignment), ``srm_h4`` / ``srm_h4_null``
    (the four-fold harmonic of the mean SRM curve of the hidden activations in the neuron basis,
    and in a rotated basis). ``Q`` is drawn from ``generator``.
    """
    if not isinstance(model, models.ToyModels):
        raise TypeError(f"model must be a ToyModels, got {type(model).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    n_samples = check_int("n_samples", n_samples, minimum=2)
    n_rotations = check_int("n_rotations", n_rotations, minimum=1)
    epsilon = check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)
    n, m = model.n_instances, model.n_hidden
    s = models.as_instance_values("sparsity", sparsity, n, minimum=0.0, maximum=1.0 - 1e-12)
    W = model.W.detach().to(torch.float64)
    # one Haar rotation per instance: Q = rotate_hidden(I) (so Q W is rotate_hidden's null for W)
    Q = metrics.rotate_hidden(torch.eye(m, dtype=torch.float64).expand(n, m, m), generator)
    x = models.sample_features(s, model.n_features, n_samples, generator=generator, dtype=model.W.dtype)
    with torch.no_grad():
        h = model.hidden_activations(x).to(torch.float64)
    h_rot = h @ Q.transpose(-1, -2)
    kurt = metrics.coordinate_kurtosis(h).nanmean(-1)
    kurt_rot = metrics.coordinate_kurtosis(h_rot).nanmean(-1)
    eye = torch.eye(m, dtype=torch.float64)
    h4, h4_null = [], []
    for k in range(n):
        for acts, out in ((h[k], h4), (h_rot[k], h4_null)):
            active = acts[torch.linalg.vector_norm(acts, dim=-1) > 0]
            if active.shape[0] == 0:
                out.append(float("nan"))
                continue
            res = srm.spotlight_resonance(active, eye, epsilon, n_angles=72)
            out.append(representations.srm_harmonic(res.mean(), res.angles, 4))
    return {
        "alignment": metrics.basis_alignment(W),
        "alignment_null": metrics.rotated_alignment_null(W, generator, n_rotations),
        "log_kurtosis_ratio": torch.log(kurt / kurt_rot),
        "srm_h4": torch.tensor(h4, dtype=torch.float64),
        "srm_h4_null": torch.tensor(h4_null, dtype=torch.float64),
    }


def rotation_commutation(
    n_instances: int,
    n_features: int,
    n_hidden: int,
    *,
    hidden: str,
    optimiser: str,
    sparsity,
    importance,
    steps: int,
    batch: int,
    lr: float,
    seed: int = 0,
) -> torch.Tensor:
    """Does training commute with a rotation of the hidden space? ``||W_B - Q W_A|| / ||Q W_A||`` per instance, ``[N]``.

    Model A starts at ``W_0``, model B at ``Q W_0`` (a Haar-random ``Q`` per instance); both see the same
    data (float64). If the loss and the optimiser are both symmetric under ``W -> Q W``, B stays ``Q``
    times A and the result is rounding error; otherwise it grows.
    """
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    model_a = models.ToyModels(n_instances, n_features, n_hidden, hidden=hidden, generator=gen, dtype=torch.float64)
    model_b = models.ToyModels(n_instances, n_features, n_hidden, hidden=hidden, generator=gen, dtype=torch.float64)
    m = model_a.n_hidden
    Q = metrics.rotate_hidden(torch.eye(m, dtype=torch.float64).expand(n_instances, m, m), gen)
    with torch.no_grad():
        model_b.W.copy_(Q @ model_a.W)
    for model in (model_a, model_b):
        models.train_toy_models(
            model,
            sparsity,
            importance,
            steps=steps,
            batch=batch,
            lr=lr,
            optimiser=optimiser,
            generator=torch.Generator().manual_seed(seed + 1),
        )
    target = Q @ model_a.W.detach()
    diff = torch.linalg.vector_norm((model_b.W.detach() - target).reshape(n_instances, -1), dim=-1)
    return diff / torch.linalg.vector_norm(target.reshape(n_instances, -1), dim=-1)
