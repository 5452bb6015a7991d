"""Notebook 14: figures of the superposition notebook, and its weight-explorer widget.

* :func:`plot_weights` ``W^T W`` and the feature norms ``||W_i||`` coloured by interference, for a row of models;
* :func:`plot_sweep` a summary (features represented, dimensions per feature, ...) against sparsity, one line per model kind;
* :func:`plot_dimensionality` per-feature dimensionality against sparsity, with the preferred values;
* :func:`plot_phase_diagram` the ``F = 2, m = 1`` phases over relative importance and sparsity;
* :func:`plot_neuron_weights` per-neuron feature weights (stacked bars) of models with a hidden nonlinearity;
* :func:`plot_alignment` alignment of the hidden layer against its rotated null;
* :func:`plot_hidden_basis_summary` every statistic minus its rotated null, per arm, pooled over seeds (committed results);
* :func:`plot_hidden_pppm` PPPM densities of hidden layers, neuron basis against a rotated basis, on one colour scale;
* :func:`plot_explorer` / :func:`weights_explorer` the widget: sparsity and importance sliders over a bank of trained models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from isodl.core import widgets
from isodl.core.plots import label_axes
from isodl.superposition import metrics
from isodl.superposition.experiments import PHASES
from isodl.symmetry.plots import plot_pppm_row

__all__ = [
    "plot_weights",
    "plot_sweep",
    "plot_dimensionality",
    "plot_phase_diagram",
    "plot_neuron_weights",
    "plot_alignment",
    "plot_hidden_basis_summary",
    "plot_hidden_pppm",
    "plot_explorer",
    "weights_explorer",
]


def _np(t) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)


def plot_weights(weights: Sequence, titles: Sequence[str], *, suptitle: str = "") -> Figure:
    """One column per model: ``W^T W`` (top) and ``||W_i||`` as bars coloured by interference (bottom)."""
    if len(weights) == 0 or len(weights) != len(titles):
        raise ValueError("weights and titles must be non-empty and of the same length")
    k = len(weights)
    fig, axes = plt.subplots(2, k, figsize=(max(4.5, min(2.1 * k + 0.8, 12)), 5.2), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for c, (w, title) in enumerate(zip(weights, titles)):
        w = torch.as_tensor(w, dtype=torch.float64)
        g = _np(metrics.gram(w))
        im = axes[0, c].imshow(g, cmap="RdBu_r", vmin=-1, vmax=1)
        axes[0, c].set_title(title, fontsize=9)
        axes[0, c].set_xticks([])
        axes[0, c].set_yticks([])
        norms = _np(metrics.feature_norms(w))
        inter = np.clip(_np(metrics.interference(w)), 0, 1)
        f = norms.size
        axes[1, c].barh(np.arange(f), norms, color=cmap(inter))
        axes[1, c].set_ylim(f - 0.5, -0.5)
        axes[1, c].set_xlim(0, max(1.2, norms.max() * 1.05))
        axes[1, c].set_xlabel("||W_i||", fontsize=8)
        if c == 0:
            axes[0, c].set_ylabel("feature i (importance falls)", fontsize=8)
            axes[1, c].set_ylabel("feature i", fontsize=8)
        else:
            axes[1, c].set_yticks([])
    fig.colorbar(im, ax=axes[0, :].tolist(), fraction=0.02, pad=0.01, label="W_i . W_j")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01, label="interference sum_j (W^_i.W_j)^2")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    plt.close(fig)
    return fig


def plot_sweep(
    sparsities,
    curves: Mapping[str, Mapping[str, tuple]],
    keys: Sequence[str],
    ylabels: Sequence[str],
    *,
    title: str = "",
    hlines: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """One panel per summary ``key``: mean ± s.e. against the feature density ``1 - S`` (log axis), one line per kind.

    A panel whose key is ``"loss"`` gets a logarithmic y axis.

    ``curves[kind][key] = (mean, se)`` per sparsity.
    """
    if len(keys) != len(ylabels) or not keys:
        raise ValueError("keys and ylabels must be non-empty and of the same length")
    density = 1.0 - _np(sparsities)
    fig, axes = plt.subplots(1, len(keys), figsize=(min(4.0 * len(keys), 12), 3.6), squeeze=False)
    for ax, key, ylabel in zip(axes[0], keys, ylabels):
        for kind, table in curves.items():
            mean, se = (_np(v) for v in table[key])
            ax.errorbar(density, mean, yerr=se, marker="o", ms=3, capsize=2, label=kind)
        for y in (hlines or {}).get(key, ()):
            ax.axhline(y, color="gray", lw=0.8, ls="--")
        ax.set_xscale("log")
        if key == "loss":
            ax.set_yscale("log")
        ax.invert_xaxis()
        label_axes(ax, xlabel="feature density 1 - S (sparser to the right)", ylabel=ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # one legend for all panels, below them, so that it covers no curve
    fig.legend(handles, labels, fontsize=7, loc="outside lower center", ncol=len(labels), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    plt.close(fig)
    return fig


def plot_dimensionality(sparsity, D, *, norms=None, title: str = "") -> Figure:
    """Scatter of per-feature dimensionality ``D_i`` against ``1 / (1 - S)``, preferred values as lines.

    ``sparsity`` ``[N]``, ``D`` ``[N, F]``; features with ``norms <= 0.5`` (if given) are left out.
    """
    s, d = _np(sparsity), _np(D)
    if d.ndim != 2 or d.shape[0] != s.shape[0]:
        raise ValueError(f"D must be [N, F] with N = len(sparsity) = {s.shape[0]}, got {d.shape}")
    keep = np.ones_like(d, dtype=bool) if norms is None else _np(norms) > 0.5
    x = np.repeat(1.0 / (1.0 - s)[:, None], d.shape[1], axis=1)
    rng = np.random.default_rng(0)
    jitter = np.exp(rng.uniform(-0.08, 0.08, size=x.shape))  # only to separate overlapping points
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.scatter((x * jitter)[keep], d[keep], s=6, alpha=0.5)
    names = {1.0: "1", 0.75: "3/4", 2 / 3: "2/3", 0.5: "1/2", 0.4: "2/5", 0.375: "3/8", 1 / 3: "1/3"}
    for v, name in names.items():
        ax.axhline(v, color="gray", lw=0.6, ls="--")
        ax.text(x.max() * 1.3, v, name, va="center", fontsize=7)
    ax.set_xscale("log")
    label_axes(ax, xlabel="1 / (1 - S)", ylabel="dimensionality D_i", title=title)
    plt.close(fig)
    return fig


def plot_phase_diagram(diagram, *, title: str = "") -> Figure:
    """Phases of the ``F = 2, m = 1`` model (:data:`~isodl.superposition.experiments.PHASES`) on its grid."""
    r, s, phase = _np(diagram.relative_importance), _np(diagram.sparsity), _np(diagram.phase)
    colors = ["#4c72b0", "#dd8452", "#c44e52", "#bbbbbb"]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ax.imshow(phase.T, origin="lower", cmap=ListedColormap(colors), vmin=-0.5, vmax=3.5, aspect="auto")
    ax.set_xticks(range(r.size), [f"{v:.2g}" for v in r], fontsize=7, rotation=45)
    ax.set_yticks(range(s.size), [f"{v:.3g}" for v in s], fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    ax.legend(handles, PHASES, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    label_axes(ax, xlabel="relative importance of feature 2", ylabel="sparsity S", title=title)
    plt.close(fig)
    return fig


def plot_neuron_weights(weights: Sequence, titles: Sequence[str], *, suptitle: str = "") -> Figure:
    """Per neuron, the squared weights ``W_ki^2`` of every feature stacked, coloured by feature index (colour bar)."""
    if len(weights) == 0 or len(weights) != len(titles):
        raise ValueError("weights and titles must be non-empty and of the same length")
    fig, axes = plt.subplots(1, len(weights), figsize=(min(2.6 * len(weights) + 1.8, 12), 3.0), squeeze=False)
    cmap = plt.get_cmap("viridis")
    f_max = 1
    for ax, w, title in zip(axes[0], weights, titles):
        sq = _np(torch.as_tensor(w, dtype=torch.float64) ** 2)  # [m, F]
        m, f = sq.shape
        f_max = max(f_max, f)
        colors = cmap(np.arange(f) / max(f - 1, 1))
        bottom = np.zeros(m)
        for i in range(f):
            ax.bar(np.arange(m), sq[:, i], bottom=bottom, color=colors[i], width=0.8)
            bottom += sq[:, i]
        label_axes(ax, xlabel="neuron k", ylabel="sum_i W_ki^2 (stacked by feature)", title=title)
        ax.set_xticks(range(m))
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, f_max - 1))
    fig.colorbar(sm, ax=axes[0, :].tolist(), fraction=0.03, pad=0.01, label="feature index i (importance falls)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    plt.close(fig)
    return fig


def plot_alignment(
    sparsities, rows: Mapping[str, tuple], *, ylabel: str, title: str = "", null_label: str = "rotated null"
) -> Figure:
    """Mean ± s.e. of a measure and of its null against sparsity: ``rows[kind] = (mean, se, null_mean, null_se)``."""
    s = _np(sparsities)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for i, (kind, (mean, se, null_mean, null_se)) in enumerate(rows.items()):
        color = f"C{i}"
        ax.errorbar(s + 0.003 * i, _np(mean), yerr=_np(se), marker="o", ms=4, capsize=2, color=color, label=kind)
        ax.errorbar(
            s + 0.003 * i,
            _np(null_mean),
            yerr=_np(null_se),
            marker="x",
            ms=4,
            capsize=2,
            color=color,
            ls=":",
            alpha=0.6,
        )
    ax.plot([], [], "k:", marker="x", label=f"{null_label} (dotted)")
    label_axes(ax, xlabel="sparsity S", ylabel=ylabel, title=title)
    ax.legend(fontsize=7, loc="best")
    plt.close(fig)
    return fig


def plot_hidden_basis_summary(summary: Mapping, labels: Mapping[str, str], *, title: str = "") -> Figure:
    """One panel per statistic (``labels``: key -> axis label): mean ± s.e. of the statistic minus its null, per arm.

    ``summary`` is :func:`isodl.superposition.experiments.summarise_hidden_basis`'s output
    (``{(activation, optimiser): {statistic: (mean, se)}}``). The dashed line at 0 is the rotated null.
    """
    if not summary or not labels:
        raise ValueError("summary and labels must be non-empty")
    arms = list(summary)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.0 * len(labels) + 0.6, 3.4), layout="constrained")
    axes = np.atleast_1d(axes)
    y = np.arange(len(arms))[::-1]
    for ax, (key, label) in zip(axes, labels.items()):
        for j, arm in enumerate(arms):
            mean, se = summary[arm][key]
            color = "C0" if arm[1] == "sgd" else "C3"
            ax.errorbar(mean, y[j], xerr=se, fmt="o", color=color, capsize=3, ms=5)
        ax.axvline(0.0, color="k", ls="--", lw=1)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{a}, {o}" for a, o in arms] if ax is axes[0] else [])
        label_axes(ax, xlabel=label, title="")
    handles = [
        axes[0].plot([], [], "o", color="C0", label="SGD")[0],
        axes[0].plot([], [], "o", color="C3", label="Adam")[0],
        axes[0].plot([], [], "k--", label="rotated null (0)")[0],
    ]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=3, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    plt.close(fig)
    return fig


def plot_hidden_pppm(densities: Mapping, *, ncols: int, title: str, caption: str | None = None) -> Figure:
    """PPPM density panels (``{panel title: isodl.symmetry.pppm.PPPMDensity}``) in rows of ``ncols``, one colour range and bar.

    Compute the densities with one ``extent`` so that the axes match too.
    """
    return plot_pppm_row(densities, ncols=ncols, title=title, caption=caption, share="all")


def plot_explorer(
    bank: Mapping[tuple[float, float], torch.Tensor], sparsity: float = 0.0, decay: float = 0.7
) -> Figure:
    """The trained model nearest to (``sparsity``, ``decay``) in ``bank`` (``{(S, decay): W}``): ``W^T W`` and norms."""
    if not bank:
        raise ValueError("bank must hold at least one trained W, keyed by (sparsity, importance decay)")
    key = min(bank, key=lambda k: (abs(k[0] - sparsity), abs(k[1] - decay)))
    w = torch.as_tensor(bank[key], dtype=torch.float64)
    d = float(metrics.dimensions_per_feature(w))
    n = int(metrics.features_represented(w))
    return plot_weights(
        [w],
        [f"S = {key[0]:g}, I_i = {key[1]:g}^i"],
        suptitle=f"{n} features represented, m/||W||_F^2 = {d:.2f}",
    )


def weights_explorer(bank: Mapping[tuple[float, float], torch.Tensor]):
    """The widget: sliders over the sparsities and importance decays of ``bank``, redrawing :func:`plot_explorer`."""
    if not bank:
        raise ValueError("bank must hold at least one trained W, keyed by (sparsity, importance decay)")
    sparsities = sorted({k[0] for k in bank})
    decays = sorted({k[1] for k in bank})
    style = {"description_width": "initial"}
    sliders = {
        "sparsity": ipw.SelectionSlider(
            options=sparsities, value=sparsities[0], description="sparsity S", style=style, continuous_update=False
        ),
        "decay": ipw.SelectionSlider(
            options=decays, value=decays[0], description="importance decay", style=style, continuous_update=False
        ),
    }
    return widgets.interactive_figure(partial(plot_explorer, bank, sparsity=sparsities[0], decay=decays[0]), **sliders)
