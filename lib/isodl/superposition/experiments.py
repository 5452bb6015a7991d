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
  rotation of the hidden space (the rotated null);
* :func:`hidden_layer` reads the pre-activations ``W x`` or activations ``f(W x)`` of every
  instance, and :func:`basis_statistics` runs the course's basis tools on them (PPPM kept
  count, per-coordinate kurtosis, the four-fold SRM harmonic; :mod:`isodl.symmetry`) in the
  neuron basis and in Haar-random rotated bases of the same activations (the null);
  :func:`rotated_weights` copies a model with ``W -> Q W`` (the same geometry, no relation to
  the neurons) and :func:`pppm_densities` draws PPPM density images on one shared extent;
* :func:`hidden_basis_experiment` runs every (hidden activation, optimiser) arm of the hidden-basis
  experiment at one seed and :func:`summarise_hidden_basis` pools many seeds (the script
  ``scripts/superposition_hidden_basis.py`` and its committed results);
* :func:`log_sparsity_grid` and :func:`dwell_share` test for a plateau of dimensions per feature
  (how much of a log-spaced sparsity sweep a curve spends near a level, against placebo levels);
  :func:`load_dims_sweep` reads the committed sweep of ``scripts/superposition_dims_sweep.py``;
* :func:`rotation_commutation` tests whether training commutes with a rotation of the hidden space.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from isodl.core.validate import check_choice, check_float, check_int, check_tensor
from isodl.superposition import metrics, models
from isodl.symmetry import pppm, representations, srm

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
    "LAYERS",
    "hidden_layer",
    "basis_statistics",
    "rotated_weights",
    "pppm_densities",
    "HIDDEN_ARMS",
    "HIDDEN_STATISTICS",
    "hidden_basis_experiment",
    "summarise_hidden_basis",
    "seed_excess",
    "HIDDEN_BASIS_RESULTS",
    "load_hidden_basis",
    "log_sparsity_grid",
    "dwell_share",
    "DIMS_SWEEP_RESULTS",
    "load_dims_sweep",
    "rotation_commutation",
]

#: The hidden tensors :func:`hidden_layer` reads: pre-activations ``W x`` or activations ``f(W x)``.
LAYERS = ("pre", "post")

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
    """``phase[i, j]`` (index into :data:`PHASES`) at ``relative_importance[i]``, ``sparsity[j]``; ``W`` of the best restart.

    ``responses[i, j]`` (``[2, 2]``, row ``k``: ``x'(e_k) - x'(0)``) is what the best restart returns for each
    feature alone at 1: the identity when both features come back clean, off-diagonal entries for
    interference that the output map lets through.
    """

    relative_importance: torch.Tensor
    sparsity: torch.Tensor
    phase: torch.Tensor
    W: torch.Tensor  # [I, S, 1, 2]
    loss: torch.Tensor  # [I, S]
    responses: torch.Tensor | None = None  # [I, S, 2, 2]


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
    resp = (models.one_hot_outputs(model) - models.one_hot_outputs(model, 0.0)).to(torch.float64)
    resp = resp.reshape(n_i, n_s, n_restarts, 2, 2)
    resp = torch.gather(resp, 2, best[:, :, None, None, None].expand(-1, -1, 1, 2, 2)).squeeze(2)
    return PhaseDiagram(r, s, classify_two_features(W), W, loss.gather(-1, best[..., None]).squeeze(-1), resp)


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


def hidden_layer(model: models.ToyModels, x, layer: str = "pre") -> torch.Tensor:
    """The hidden tensor of every instance for features ``x`` (``[N, B, F]``): ``[N, B, m]``, float64, detached.

    ``layer="pre"``: the pre-activations ``W x`` (rotating the basis of ``W`` rotates them, whatever ``f`` is);
    ``"post"``: the activations ``f(W x)`` (for an elementwise ``f`` their zeros and saturation are tied to the
    neuron basis by ``f`` itself, before any training).
    """
    if not isinstance(model, models.ToyModels):
        raise TypeError(f"model must be a ToyModels, got {type(model).__name__}")
    layer = check_choice("layer", layer, LAYERS)
    x = check_tensor("x", x, shape=[model.n_instances, None, model.n_features], floating=True, finite=True)
    with torch.no_grad():
        x = x.to(model.W.dtype)
        if layer == "post":
            return model.hidden_activations(x).to(torch.float64)
        return torch.einsum("nbf,nmf->nbm", x, model.W).to(torch.float64)


def _log_kurtosis(h: torch.Tensor) -> torch.Tensor:
    """log of the mean kurtosis over coordinates, ``[...]`` for ``h`` ``[..., B, m]`` (coordinates that never vary left out)."""
    return torch.log(metrics.coordinate_kurtosis(h).nanmean(-1))


def _srm_h4(acts: torch.Tensor, basis: torch.Tensor, epsilon: float) -> float:
    active = acts[torch.linalg.vector_norm(acts, dim=-1) > 0]
    if active.shape[0] == 0:
        return float("nan")
    res = srm.spotlight_resonance(active, basis, epsilon, n_angles=72)
    return representations.srm_harmonic(res.mean(), res.angles, 4)


def basis_statistics(
    activations,
    *,
    generator: torch.Generator,
    epsilon: float = 0.8,
    n_rotations: int = 24,
    n_srm_rotations: int = 6,
) -> dict[str, torch.Tensor]:
    """The course's basis tools on hidden activations ``[N, B, m]``, in the neuron basis and in rotated bases.

    For every instance ``k`` (``[N]`` each, float64):

    * ``pppm``: ``log(1 + kept)``, ``kept`` the number of (sample, plane) pairs that PPPM
      (:func:`isodl.symmetry.pppm.privileged_plane_projection`, unordered pairs) keeps at ``epsilon`` in
      the neuron basis: activations crowding onto the planes of neuron pairs raise it;
    * ``kurtosis``: log of the mean per-coordinate kurtosis (:func:`metrics.coordinate_kurtosis`);
    * ``srm_h4``: the four-fold harmonic of the mean SRM curve (:func:`isodl.symmetry.srm.spotlight_resonance`,
      :func:`isodl.symmetry.representations.srm_harmonic`): + when the activations sit on neurons;
    * ``*_null``: the mean of the same statistic over Haar-random orthonormal bases of ``R^m``
      (``n_rotations`` for PPPM and kurtosis, ``n_srm_rotations`` for SRM, new ones per instance, drawn from
      ``generator``): the statistic of the same cloud in a basis with no relation to the neurons.

    A statistic minus its null has mean 0 over instances whose distribution does not prefer the
    neuron basis (e.g. a model whose training commutes with rotations); the log makes the PPPM and
    kurtosis differences ratios. All-zero rows count in no plane (PPPM, SRM).
    """
    a = check_tensor("activations", activations, ndim=3, floating=True, finite=True).to(torch.float64)
    if a.shape[1] < 2 or a.shape[2] < 2:
        raise ValueError(f"activations must have shape [N, B, m] with B >= 2 samples and m >= 2, got {tuple(a.shape)}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    epsilon = check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)
    n_rotations = check_int("n_rotations", n_rotations, minimum=1)
    n_srm_rotations = check_int("n_srm_rotations", n_srm_rotations, minimum=1)
    n, _, m = a.shape
    eye = torch.eye(m, dtype=torch.float64)
    keys = ("pppm", "pppm_null", "kurtosis", "kurtosis_null", "srm_h4", "srm_h4_null")
    out = {key: torch.empty(n, dtype=torch.float64) for key in keys}

    def kept(acts, basis):
        return math.log1p(len(pppm.privileged_plane_projection(acts, basis, epsilon, "comb")))

    for k in range(n):
        # rows of Q[r]: a rotated basis (enough of them for both counts)
        Q = metrics.rotate_hidden(eye.expand(max(n_rotations, n_srm_rotations), m, m), generator)
        out["pppm"][k] = kept(a[k], eye)
        out["pppm_null"][k] = sum(kept(a[k], Q[r]) for r in range(n_rotations)) / n_rotations
        rotated = a[k] @ Q[:n_rotations].transpose(-1, -2)  # [R, B, m]: coordinates along each rotated basis
        out["srm_h4"][k] = _srm_h4(a[k], eye, epsilon)
        out["srm_h4_null"][k] = sum(_srm_h4(a[k], Q[r], epsilon) for r in range(n_srm_rotations)) / n_srm_rotations
        out["kurtosis"][k] = _log_kurtosis(a[k])
        out["kurtosis_null"][k] = _log_kurtosis(rotated).nanmean()
    return out


def rotated_weights(model: models.ToyModels, generator: torch.Generator) -> models.ToyModels:
    """A copy of ``model`` with ``W`` replaced by ``Q W`` (a Haar-random rotation ``Q`` of ``R^m`` per instance).

    The copy keeps every Gram matrix ``W^T W`` but not the relation of ``W`` to the neurons: for an
    elementwise ``f`` its activations ``f(Q W x)`` show what ``f`` does to the neuron basis by itself.
    """
    if not isinstance(model, models.ToyModels):
        raise TypeError(f"model must be a ToyModels, got {type(model).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    copy = models.ToyModels(
        model.n_instances, model.n_features, model.n_hidden, output=model.output, hidden=model.hidden,
        generator=torch.Generator().manual_seed(0), dtype=model.W.dtype,
    )  # fmt: skip
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        copy.W.copy_(metrics.rotate_hidden(model.W.detach(), generator))
    return copy


def pppm_densities(clouds, bases, *, epsilon: float = 0.8, seed: int = 0) -> dict:
    """PPPM density images (:func:`isodl.symmetry.pppm.pppm_density`, unordered pairs) of ``clouds[name]`` in ``bases[name]``.

    ``clouds`` and ``bases`` are dicts with the same keys (``[B, m]`` activations; ``[m, m]`` basis or ``None``
    for the neuron basis). Every image uses one extent, the largest coordinate over all clouds, so the panels
    can share axes and a colour scale.
    """
    if not isinstance(clouds, dict) or not clouds or not isinstance(bases, dict) or set(bases) != set(clouds):
        raise ValueError("clouds and bases must be non-empty dicts with the same keys")
    checked = {name: srm.check_activations(c).to(torch.float64) for name, c in clouds.items()}
    extent = max(float(c.abs().max()) for c in checked.values()) or 1.0
    return {
        name: pppm.pppm_density(c, bases[name], epsilon, "comb", extent=extent, seed=seed)
        for name, c in checked.items()
    }


#: The arms of the hidden-basis experiment: (hidden activation, optimiser).
HIDDEN_ARMS = tuple((act, opt) for act in ("relu", "tanh", "isotropic_tanh") for opt in ("adam", "sgd"))
#: The statistics of :func:`hidden_basis_experiment` that come with a rotated null (key and key + "_null").
HIDDEN_STATISTICS = ("alignment", "pppm", "kurtosis", "srm_h4")


def hidden_basis_experiment(
    sparsities,
    n_seeds: int,
    importance,
    *,
    n_hidden: int,
    steps: int,
    batch: int,
    adam_lr: float,
    sgd_lr,
    seed: int,
    n_samples: int = 512,
    epsilon: float = 0.8,
    n_rotations: int = 24,
    arms=HIDDEN_ARMS,
) -> dict[tuple[str, str], dict[str, torch.Tensor]]:
    """Every arm of the hidden-basis experiment at one seed: ``{(activation, optimiser): {statistic: [K * n_seeds]}}``.

    Each arm trains ``len(sparsities) * n_seeds`` models ``x' = ReLU(W^T f(W x) + b)`` (:func:`train_sweep`,
    Adam at ``adam_lr`` or SGD at ``sgd_lr[k]`` for sparsity ``k``), then measures, per instance: ``loss``,
    the weight share on the top neuron and its mean over 200 rotations (``alignment``, ``alignment_null``),
    and :func:`basis_statistics` of the pre-activations ``W x`` of ``n_samples`` fresh inputs (``pppm``,
    ``kurtosis``, ``srm_h4`` and their ``_null``). Arm ``i`` draws from the generator streams
    ``1000 * seed + 10 + i`` (training), ``+ 20 + i`` (alignment null) and ``+ 50 + i`` (inputs and bases).
    """
    seed = check_int("seed", seed, minimum=0)
    s = instance_grid(sparsities, n_seeds)
    lrs = check_tensor("sgd_lr", torch.as_tensor(sgd_lr, dtype=torch.float64), ndim=1)
    if lrs.numel() != len(sparsities):
        raise ValueError(f"sgd_lr must hold one rate per sparsity ({len(sparsities)}), got {lrs.numel()}")
    out = {}
    for i, (act, opt) in enumerate(arms):
        lr = adam_lr if opt == "adam" else instance_grid(lrs, n_seeds)
        run = train_sweep(
            sparsities, n_seeds, importance, n_hidden=n_hidden, hidden=act, steps=steps, batch=batch, lr=lr,
            optimiser=opt, seed=1000 * seed + 10 + i,
        )  # fmt: skip
        W = run.model.W.detach().to(torch.float64)
        gen = torch.Generator().manual_seed(1000 * seed + 20 + i)
        row = {"loss": run.result.loss.to(torch.float64), "alignment": metrics.basis_alignment(W)}
        row["alignment_null"] = metrics.rotated_alignment_null(W, gen, 200)
        gen = torch.Generator().manual_seed(1000 * seed + 50 + i)
        x = models.sample_features(s, run.model.n_features, n_samples, generator=gen)
        stats = basis_statistics(
            hidden_layer(run.model, x, "pre"), generator=gen, epsilon=epsilon, n_rotations=n_rotations
        )
        out[act, opt] = {**row, **stats}
    return out


def summarise_hidden_basis(per_seed) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Pool :func:`hidden_basis_experiment` results of several seeds: per arm and statistic, ``(mean, s.e.)`` over seeds.

    ``per_seed`` is a list of its outputs (one per seed, lists or tensors). For each seed, the statistic minus
    its null is averaged over that seed's instances; the mean and standard error are then taken over the
    seeds (the independent units). ``loss`` is summarised the same way, without a null.
    """
    if not per_seed:
        raise ValueError("per_seed must hold the results of at least one seed")
    summary = {}
    for arm in per_seed[0]:
        summary[arm] = {}
        for name in HIDDEN_STATISTICS + ("loss",):
            values = []
            for result in per_seed:
                v = torch.as_tensor(result[arm][name], dtype=torch.float64)
                if name != "loss":
                    v = v - torch.as_tensor(result[arm][name + "_null"], dtype=torch.float64)
                values.append(float(v[~torch.isnan(v)].mean()))
            t = torch.tensor(values, dtype=torch.float64)
            se = float(t.std() / math.sqrt(t.numel())) if t.numel() > 1 else float("nan")
            summary[arm][name] = (float(t.mean()), se)
    return summary


def seed_excess(per_seed, arm, name: str, n_settings: int = 1) -> torch.Tensor:
    """Per seed (rows) and setting (columns), the mean of ``name`` minus its null over that seed's instances: ``[seeds, n_settings]``.

    ``per_seed`` as for :func:`summarise_hidden_basis`; instances are laid out setting-major
    (:func:`instance_grid`), so ``n_settings = len(sparsities)`` gives one column per sparsity and
    ``n_settings = 1`` pools them. ``name = "loss"`` is taken without a null.
    """
    if not per_seed:
        raise ValueError("per_seed must hold the results of at least one seed")
    n_settings = check_int("n_settings", n_settings, minimum=1)
    rows = []
    for result in per_seed:
        if arm not in result:
            raise KeyError(f"arm {arm!r} is not in the results (arms: {list(result)})")
        v = torch.as_tensor(result[arm][name], dtype=torch.float64)
        if name != "loss":
            v = v - torch.as_tensor(result[arm][name + "_null"], dtype=torch.float64)
        if v.numel() % n_settings:
            raise ValueError(f"{v.numel()} instances do not split into n_settings = {n_settings} settings")
        rows.append(v.reshape(n_settings, -1).nanmean(-1))
    return torch.stack(rows)


#: Where ``scripts/superposition_hidden_basis.py`` writes its committed results (notebook 14 reads them).
HIDDEN_BASIS_RESULTS = Path(__file__).resolve().parents[3] / "scripts" / "results" / "superposition_hidden_basis.json"


def _read_results(path, default: Path, keys: set) -> dict:
    """The JSON dict of a committed results file (``default`` when ``path`` is None), checked to hold ``keys``.

    The file is named after its script (``scripts/<stem>.py`` writes ``scripts/results/<stem>.json``), so the
    errors say which script to run.
    """
    p = default if path is None else path
    if not isinstance(p, (str, Path)):
        raise TypeError(f"path must be a file path (str or pathlib.Path) or None, got {type(p).__name__}")
    p = Path(p)
    if not p.is_file():
        raise FileNotFoundError(f"no results file at {p}; run `python scripts/{p.stem}.py` from the repository root")
    record = json.loads(p.read_text())
    if not isinstance(record, dict) or not keys <= set(record):
        raise ValueError(f"{p} is not a results file of scripts/{default.stem}.py")
    return record


def load_hidden_basis(path=None) -> tuple[dict, list]:
    """The committed results of ``scripts/superposition_hidden_basis.py``: ``(record, per_seed)``.

    ``record`` is the file's dict (``settings``, ``seeds``, ``seconds``, ``results``); ``per_seed`` holds one
    :func:`hidden_basis_experiment`-shaped dict per seed (keys ``(activation, optimiser)``, float64 tensors),
    ready for :func:`summarise_hidden_basis`. ``path`` defaults to :data:`HIDDEN_BASIS_RESULTS`.
    """
    record = _read_results(path, HIDDEN_BASIS_RESULTS, {"settings", "seeds", "results"})
    per_seed = [
        {
            tuple(key.split(",")): {k: torch.tensor(v, dtype=torch.float64) for k, v in arm.items()}
            for key, arm in r.items()
        }
        for r in record["results"]
    ]
    return record, per_seed


def log_sparsity_grid(n: int, lowest: float = 2.0, highest: float = 500.0) -> tuple[float, ...]:
    """``n`` sparsities with ``1 / (1 - S)`` evenly spaced in log from ``lowest`` to ``highest`` (both > 1)."""
    n = check_int("n", n, minimum=2)
    lowest = check_float("lowest", lowest, minimum=1.0, strict_minimum=True)
    highest = check_float("highest", highest, minimum=lowest, strict_minimum=True)
    inv = torch.logspace(math.log10(lowest), math.log10(highest), n, dtype=torch.float64)
    return tuple(float(1.0 - 1.0 / v) for v in inv)


def dwell_share(curve, level: float, tolerance: float = 0.03) -> float:
    """The share of the points of ``curve`` (``[K]``, on a log-spaced sparsity grid) within ``tolerance`` of ``level``.

    A curve that sticks at ``level`` over a range of sparsity spends more of the grid there than at a
    nearby placebo level it merely passes through; compare the two.
    """
    c = check_tensor("curve", torch.as_tensor(curve, dtype=torch.float64), ndim=1, finite=True)
    if c.numel() == 0:
        raise ValueError("curve must hold at least one value")
    level = check_float("level", level)
    tolerance = check_float("tolerance", tolerance, minimum=0.0, strict_minimum=True)
    return float(((c - level).abs() <= tolerance).double().mean())


#: Where ``scripts/superposition_dims_sweep.py`` writes its committed results (notebook 14 reads them).
DIMS_SWEEP_RESULTS = Path(__file__).resolve().parents[3] / "scripts" / "results" / "superposition_dims_sweep.json"


def load_dims_sweep(path=None) -> dict:
    """The committed sweep of ``scripts/superposition_dims_sweep.py`` (``settings``, ``sparsities``, per-instance values)."""
    return _read_results(path, DIMS_SWEEP_RESULTS, {"settings", "sparsities", "dims_per_feature"})


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
