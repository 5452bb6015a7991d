"""Figures for notebooks 03 and 04: PPPM densities, SRM alignment views, seeds scatter, purity.

Every function is pure: it returns a matplotlib ``Figure`` built with
:func:`isodl.plots.figure` and shows nothing, so notebooks can display it and
:func:`isodl.widgets.interactive_figure` can redraw it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from . import pppm as _pppm
from . import representations as _rep
from . import srm as _srm
from .plots import COLORS, figure
from .validate import check_bool, check_choice, check_float, check_tensor

__all__ = [
    "PPPM_CMAP",
    "draw_pppm_density",
    "plot_pppm_density",
    "plot_pppm_row",
    "plot_pppm_epoch",
    "plot_pppm_scrubber",
    "plot_alignment_explorer",
    "plot_entropy_vs_mse",
    "plot_purity",
]

#: Dark background, bright blobs: close to the look of the author's panels.
PPPM_CMAP = "magma"


def _density_arg(density) -> _pppm.PPPMDensity:
    if not isinstance(density, _pppm.PPPMDensity):
        raise TypeError(f"density must be an isodl.pppm.PPPMDensity (from pppm.pppm_density), got {type(density).__name__}")
    return density


def draw_pppm_density(ax, density, *, title: str | None = None, vmax: float | None = None, colorbar: bool = True):
    """Draw one PPPM density on ``ax``: origin lower, extent ``[-M, M]^2``, axes along ``b_i`` and ``b_j``."""
    d = _density_arg(density)
    img = d.image.numpy()
    if vmax is None:
        vmax = float(np.quantile(img, 0.999)) if d.normalised else 1.0
        vmax = vmax if vmax > 0 else 1.0
    # 32 colour levels and no interpolation keep the PNGs small (smooth gradients compress badly)
    cmap = matplotlib.colormaps[PPPM_CMAP].resampled(32)
    im = ax.imshow(img, origin="lower", extent=d.imshow_extent, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("along $b_i$")
    ax.set_ylabel("along $b_j$ (⊥ part)")
    ax.set_aspect("equal")
    ax.grid(False)
    r = d.result
    sub = f"{len(r)} pts, {r.count_ratio:.2f}× isotropic"
    ax.set_title(f"{title}\n{sub}" if title else sub, fontsize=9)
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label("density / isotropic" if d.normalised else "density (max = 1)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return im


def plot_pppm_density(density, *, title: str | None = None) -> Figure:
    """One PPPM density image (see :func:`isodl.pppm.pppm_density`)."""
    fig, ax = figure(1, 1, width=4.2, height=3.6)
    draw_pppm_density(ax, density, title=title)
    return fig


def plot_pppm_row(densities: Mapping[str, _pppm.PPPMDensity], *, title: str | None = None, ncols: int | None = None) -> Figure:
    """PPPM densities side by side (e.g. one run over training, or several activations), one colour bar each."""
    if not isinstance(densities, Mapping) or not densities:
        raise TypeError("densities must be a non-empty dict {panel title: PPPMDensity}")
    n = len(densities)
    ncols = n if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig, axes = figure(ncols, nrows, width=min(2.1 * ncols + 0.4, 13.0), height=2.3 * nrows + (0.35 if title else 0.0))
    axes = np.atleast_1d(axes).ravel()
    for k, (ax, (name, d)) in enumerate(zip(axes, densities.items())):
        draw_pppm_density(ax, d, title=str(name), colorbar=False)
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
        if k % ncols:
            ax.set_ylabel("")  # the axis names are the same in every panel: label the first column only
        if k < n - ncols:
            ax.set_xlabel("")
    for ax in axes[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_pppm_epoch(
    snapshots: Mapping[int, torch.Tensor],
    epoch: int,
    *,
    basis=None,
    epsilon: float = 0.8,
    normalise_volume: bool = True,
    name: str = "",
) -> Figure:
    """One epoch of a run: the PPPM density and the histogram of in-plane angles (with entropy and c4).

    ``snapshots`` maps epochs to latents (:attr:`isodl.autoencoder.AERun.snapshots`);
    ``epoch`` must be one of them.
    """
    if not isinstance(snapshots, Mapping) or not snapshots:
        raise TypeError("snapshots must be a non-empty dict {epoch: latent [N, n]}")
    if epoch not in snapshots:
        raise ValueError(f"epoch must be one of the snapshot epochs {sorted(snapshots)}, got {epoch!r}")
    normalise_volume = check_bool("normalise_volume", normalise_volume)
    d = _pppm.pppm_density(snapshots[epoch], basis, epsilon, normalise_volume=normalise_volume)
    fig, (ax0, ax1) = figure(2, 1, width=8.4, height=3.5)
    draw_pppm_density(ax0, d, title=f"{name} epoch {epoch}".strip())
    phi = d.result.angles.numpy()
    if phi.size:
        ax1.hist(np.degrees(phi), bins=72, range=(-180, 180), color=COLORS[0])
    ax1.set_xlim(-180, 180)
    ax1.set_xticks([-180, -90, 0, 90, 180])
    ax1.set_xlabel("in-plane angle φ (degrees; 0 = $b_i$, 90 = $b_j$)")
    ax1.set_ylabel("kept points")
    h = _rep.angular_entropy(d.result.angles)
    c = _rep.c4(d.result.angles)
    ax1.set_title(f"angular entropy {h:.2f} (1 = uniform), c4 = {c:+.2f}", fontsize=9)
    return fig


def plot_pppm_scrubber(runs: Mapping[str, tuple], activation: str, epoch: int, epsilon: float = 0.8) -> Figure:
    """The widget view of notebook 04: :func:`plot_pppm_epoch` for one of several runs.

    ``runs`` maps an activation label to ``(snapshots, basis)`` (``basis`` is
    ``None`` for the standard basis); PPPM uses each run's own basis.
    """
    if not isinstance(runs, Mapping) or activation not in runs:
        raise ValueError(f"activation must be one of {list(runs) if isinstance(runs, Mapping) else []}, got {activation!r}")
    snapshots, basis = runs[activation]
    return plot_pppm_epoch(snapshots, epoch, basis=basis, epsilon=epsilon, name=activation)


def plot_alignment_explorer(
    latents: Mapping[str, torch.Tensor],
    bases: Mapping[str, torch.Tensor],
    model: str,
    basis: str,
    epsilon: float = 0.7,
    n_angles: int = 72,
    pppm_epsilon: float = 0.8,
) -> Figure:
    """SRM (enrichment of the mean curve) and PPPM (at ``pppm_epsilon``) of one model's latent in one basis, side by side.

    ``latents`` maps a model name to its bottleneck ``[N, n]``; ``bases`` maps a
    basis name to a ``[K, n]`` basis. The title gives the four-fold harmonic
    :func:`isodl.representations.srm_harmonic` of the mean curve.
    """
    if model not in latents:
        raise ValueError(f"model must be one of {list(latents)}, got {model!r}")
    if basis not in bases:
        raise ValueError(f"basis must be one of {list(bases)}, got {basis!r}")
    eps = check_float("epsilon", epsilon, minimum=-1.0, maximum=0.99)
    z = latents[model]
    b = bases[basis]
    res = _srm.spotlight_resonance(z, b, eps, n_angles)
    level = _srm.cap_fraction(z.shape[1], eps)
    mean = res.mean()
    h4 = _rep.srm_harmonic(mean, res.angles)
    fig, (ax0, ax1) = figure(2, 1, width=8.6, height=3.5)
    theta = np.append(res.angles.numpy(), 2 * math.pi)
    vals = res.values.numpy() / level
    vals = np.concatenate([vals, vals[:, :1]], axis=1)
    ax0.fill_between(theta, vals.min(0), vals.max(0), color="#e3f1ea", lw=0, label="range over planes")
    ax0.plot(theta, vals.mean(0), color=COLORS[0], lw=1.6, label="mean over planes")
    ax0.axhline(1.0, color=COLORS[3], ls="--", lw=1.1, label="isotropic level")
    ax0.set_xticks([0, math.pi / 2, math.pi, 3 * math.pi / 2, 2 * math.pi], ["0", "π/2", "π", "3π/2", "2π"])
    for k in range(5):
        ax0.axvline(k * math.pi / 2, color="0.8", lw=0.6, ls=":")
    ax0.set_xlabel("probe angle θ (basis vectors at multiples of π/2)")
    ax0.set_ylabel("SRM / isotropic level")
    ax0.set_yscale("log")
    ax0.set_ylim(1e-2, 30)  # zeros (no sample in the cone) fall off the bottom
    ax0.set_yticks([0.01, 0.1, 1, 10], ["0.01", "0.1", "1", "10"])
    ax0.set_title(f"SRM of {model} in basis {basis}: four-fold harmonic {h4:+.2f}", fontsize=9)
    ax0.legend(fontsize=7, loc="upper right")
    d = _pppm.pppm_density(z, b, pppm_epsilon)
    draw_pppm_density(ax1, d, title=f"PPPM, ε = {d.result.epsilon:g}")
    return fig


def plot_entropy_vs_mse(rows: Sequence[Mapping], *, title: str = "Quantisation against reconstruction error") -> Figure:
    """Scatter of angular entropy (x) against test MSE (y), one point per run, one colour per activation.

    ``rows`` are dicts with keys ``"activation"``, ``"entropy"`` and ``"mse"``;
    runs whose entropy is ``nan`` (no PPPM points) are drawn at the left edge
    with an open marker.
    """
    if not isinstance(rows, Sequence) or not rows:
        raise TypeError("rows must be a non-empty list of dicts with 'activation', 'entropy' and 'mse'")
    fig, ax = figure(1, 1, width=5.6, height=3.8)
    names = list(dict.fromkeys(r["activation"] for r in rows))
    any_missing = False
    for k, name in enumerate(names):
        sel = [r for r in rows if r["activation"] == name]
        h = np.array([r["entropy"] for r in sel], dtype=float)
        m = np.array([r["mse"] for r in sel], dtype=float)
        ok = np.isfinite(h)
        color = COLORS[k % len(COLORS)]
        ax.scatter(h[ok], m[ok], color=color, s=28, label=name, zorder=3)
        if (~ok).any():
            any_missing = True
            ax.scatter(np.full((~ok).sum(), 0.02), m[~ok], facecolors="none", edgecolors=color, s=28, zorder=3)
    if any_missing:  # one legend entry for the open markers, whatever their colour
        ax.scatter([], [], facecolors="none", edgecolors="0.4", s=28, label="no PPPM points (no entropy)")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("angular entropy of PPPM points (1 = continuous, lower = clustered)")
    ax.set_ylabel("test reconstruction MSE")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig


def plot_purity(groups: Mapping[str, Sequence[float]], chance: float, *, title: str = "Class purity of the top samples") -> Figure:
    """Purity of the top-k samples along each direction, one strip per group, with the chance level."""
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError("groups must be a non-empty dict {group name: purities}")
    chance = check_float("chance", chance, minimum=0.0, maximum=1.0)
    fig, ax = figure(1, 1, width=max(4.0, 1.6 * len(groups) + 1.5), height=3.4)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for k, (name, vals) in enumerate(groups.items()):
        v = np.asarray(torch.as_tensor(vals, dtype=torch.float64).numpy(), dtype=float)
        ax.scatter(k + rng.uniform(-0.15, 0.15, v.size), v, color=COLORS[k % len(COLORS)], s=18, alpha=0.8)
        ax.plot([k - 0.3, k + 0.3], [v.mean(), v.mean()], color="k", lw=2)
    ax.axhline(chance, color=COLORS[3], ls="--", lw=1.2, label=f"chance ({chance:.2f})")
    ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of the top class")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig
