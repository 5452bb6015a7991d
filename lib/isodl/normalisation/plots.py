"""Notebooks 10, 12: figures (divergence, learning-rate sweeps, batch size, effective steps, scale ablation).

Every function is pure: it returns a ``matplotlib.figure.Figure`` built with
:func:`isodl.core.plots.figure` and shows nothing, so notebooks display it,
:func:`isodl.core.widgets.interactive_figure` redraws it and the tests call it
directly.

* Notebook 10: the widget :func:`plot_divergence` -- how the input norm and the
  batch size shape one SGD step (its data from
  :func:`isodl.normalisation.divergence.divergence_data`, the predictions from
  :func:`isodl.normalisation.layers.affine_factor` and
  :func:`isodl.normalisation.divergence.self_share_curve`).
* Notebook 12, from the result rows of :mod:`isodl.normalisation.experiments`:
  :func:`plot_lr_sweep`, :func:`plot_batch_budget`, :func:`plot_effective_steps`
  and :func:`plot_scale_ablation`; :data:`METHOD_STYLE` gives every method one
  colour and marker.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from isodl.core.validate import check_float, check_int
from isodl.normalisation.divergence import divergence_data, self_share_curve
from isodl.normalisation.experiments import LABELS
from isodl.normalisation.layers import affine_factor

METHOD_STYLE = {
    "none": dict(color="#000000", marker="o"),
    "batchnorm": dict(color="#0072B2", marker="s"),
    "layernorm": dict(color="#56B4E9", marker="^"),
    "rmsnorm": dict(color="#CC79A7", marker="v"),
    "l2": dict(color="#E69F00", marker="D"),
    "affine_like": dict(color="#009E73", marker="o"),
    "rescaled_grad": dict(color="#D55E00", marker="x"),
    "l2_nobias": dict(color="#999933", marker="P"),
}


def _mark_blown_up(ax, table) -> None:
    """Cross out the batch-size points where some runs blew up (train loss above ln 10)."""
    blown = [r for r in table if r.get("blown_up", 0) > 0]
    if blown:
        ax.scatter(
            [r["batch_size"] for r in blown],
            [r["mean"] for r in blown],
            s=90,
            marker="x",
            color="red",
            zorder=5,
            label="some runs blew up (train loss > ln 10)",
        )


def _ci_half(sd: float, n: int) -> float:
    """Half-width of a 95 % Student-t confidence interval for a mean of ``n`` values with standard deviation ``sd``."""
    from scipy import stats

    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


__all__ = [
    "plot_batch_alignment",
    "plot_batch_budget",
    "METHOD_STYLE",
    "plot_divergence",
    "plot_lr_sweep",
    "plot_effective_steps",
    "plot_scale_ablation",
]


def plot_divergence(input_norm: float = 6.0, batch_size: int = 32, data: str = "mnist1d"):
    """Notebook 10's widget: how the input norm and the batch size shape one SGD step.

    The inputs are rescaled so their median norm is ``input_norm``. Left: the
    per-sample divergence factor of a plain affine layer, ``|x|^2 + 1``, with the
    constant factors of L2 pre-normalisation (2) and the affine-like layer
    (1). Right: the self-term share (:func:`~isodl.normalisation.divergence.self_term_share`) against batch
    size for the three kernels, with the chosen batch size marked.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from isodl.core.plots import COLORS, figure

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
    ax1.set_title(
        f"at B = {batch_size}: share affine {curves['affine'][k]:.2f}, affine-like {curves['affine-like'][k]:.2f}",
        fontsize=9,
    )
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7)
    return fig


def _curves(ax, sizes, curves: Mapping[str, np.ndarray], styles) -> None:
    """One line per entry of ``curves`` against the batch size (log2 axis), in the given styles."""
    for (label, curve), style in zip(curves.items(), styles):
        ax.plot(sizes, curve, label=label, **style)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B")


def plot_batch_alignment(
    sizes,
    shares: Mapping[str, np.ndarray],
    cosines: Mapping[str, np.ndarray],
    *,
    d: int,
    spreads: Mapping[str, np.ndarray] | None = None,
):
    """Notebook 10: the candidate batch-size mechanism beside the layer it must be told apart from.

    Left: the kernel-only self-term share against ``B`` for each kernel in
    ``shares`` (plain affine and affine-like). Middle: the mean cosine between
    the actual activation step and the ideal one, for each entry of
    ``cosines`` (plain affine, affine-like, the exact batch correction), with
    ``B = d + 1`` (where the kernel stops being invertible) marked. Right
    (when ``spreads`` is given): the spread of the samples' step sizes
    (:func:`isodl.normalisation.divergence.step_size_spread_curve`), the one
    metric of the three that sees magnitudes.
    """
    from isodl.core.plots import COLORS, figure

    n = 2 if spreads is None else 3
    fig, axes = figure(n, width=4.7 * n, height=3.8)
    ax0, ax1 = axes[0], axes[1]
    styles = [
        dict(color=COLORS[0], lw=5, alpha=0.4),
        dict(color=COLORS[2], marker="o", ms=4),
        dict(color=COLORS[3], ls="--", marker="s", ms=4),
    ]
    _curves(ax0, sizes, shares, styles)
    ax0.plot(sizes, [1.0 / s for s in sizes], color="0.6", ls=":", lw=1, label="1/B")
    ax0.set_yscale("log")
    ax0.set_ylabel("self-term share |K_mm| / sum_n |K_nm|")
    ax0.set_title("kernel-only share: the two layers coincide", fontsize=9)
    ax0.legend(fontsize=7)
    _curves(ax1, sizes, cosines, styles)
    ax1.axvline(d + 1, color="k", lw=0.8, ls=":")
    ax1.text(d + 1, 0.05, f" B = d + 1 = {d + 1}", fontsize=7)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("mean cos(dz_m, ideal step -g_m)")
    ax1.set_title("direction of the step (random independent g)", fontsize=9)
    ax1.legend(fontsize=7)
    if spreads is not None:
        ax2 = axes[2]
        _curves(ax2, sizes, spreads, styles)
        ax2.set_ylim(bottom=0)
        ax2.set_ylabel("spread of |dz_m| / ideal, log10(q90 / q10)")
        ax2.set_title("size of the step: the layers differ, less at large B", fontsize=9)
        ax2.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- figures


def plot_lr_sweep(summary: Sequence[Mapping], *, title: str = "Method comparison (plain SGD)"):
    """Left: mean test accuracy (bars: sd over seeds) against learning rate, per method. Right: each method at its best rate."""
    from isodl.core.plots import figure

    fig, (ax0, ax1) = figure(2, width=9.4, height=4.4)
    methods = list(dict.fromkeys(r["method"] for r in summary))
    for m in methods:
        rows = sorted((r for r in summary if r["method"] == m), key=lambda r: r["lr"])
        style = METHOD_STYLE.get(m, {})
        ax0.errorbar(
            [r["lr"] for r in rows],
            [r["test_mean"] for r in rows],
            yerr=[_ci_half(r["test_sd"], r["n"]) for r in rows],
            label=LABELS.get(m, m),
            capsize=2,
            ms=4,
            **style,
        )
    ax0.set_xscale("log")
    ax0.set_xlabel("learning rate (log scale)")
    ax0.set_ylabel("test accuracy")
    ns = sorted({r["n"] for r in summary})
    ax0.set_title(f"accuracy against learning rate ({'/'.join(map(str, ns))} seeds per point, 95 % CI)", fontsize=9)
    ax0.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    best = [next(r for r in summary if r["method"] == m and r["best"]) for m in methods]
    ypos = np.arange(len(best))[::-1]
    ax1.barh(
        ypos,
        [r["test_mean"] for r in best],
        xerr=[_ci_half(r["test_sd"], r["n"]) for r in best],
        color=[METHOD_STYLE.get(r["method"], {}).get("color", "0.5") for r in best],
        alpha=0.8,
        capsize=3,
    )
    ax1.set_yticks(
        ypos, [f"{LABELS.get(r['method'], r['method'])}\n(lr {r['lr']:g}, n = {r['n']})" for r in best], fontsize=7
    )
    lo = min(r["test_mean"] - r["test_sd"] for r in best)
    ax1.set_xlim(max(0.0, lo - 0.1), min(1.0, max(r["test_mean"] + r["test_sd"] for r in best) + 0.05))
    ax1.set_xlabel("test accuracy at the chosen rate (95 % CI)")
    ax1.set_title(title)
    return fig


def plot_batch_budget(
    table: Sequence[Mapping],
    slope_diffs: Mapping[str, Mapping],
    shares: Mapping[str, Sequence[float]],
    share_sizes: Sequence[int],
    *,
    title: str = "fixed sample budget",
    diff_title: str = "paired by seed, 95 % CI (red: excludes 0)",
    share_title: str = "candidate mechanism: plain and affine-like alike",
):
    """Notebook 12's batch-size test in three panels (``title``, ``diff_title``, ``share_title`` head them).

    Left: test accuracy against ``B`` per method (rows of
    :func:`~isodl.normalisation.experiments.batch_size_table`, 95 % CI); a red
    cross marks a point where some runs blew up (their ``blown_up`` count).
    Middle: each entry of ``slope_diffs`` (``{label: paired_difference}``,
    slope per doubling of ``B`` minus a reference method's, paired by seed)
    with its 95 % CI; the prediction says the affine-like layer's should be
    clearly negative. Right: the kernel-only self-term share for each curve of
    ``shares`` (the course's candidate mechanism, plain affine included).
    """
    from matplotlib.ticker import FuncFormatter

    from isodl.core.plots import COLORS, figure

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    fig, (ax0, ax1, ax2) = figure(3, width=12.0, height=3.7)
    for m in dict.fromkeys(r["method"] for r in table):
        rows = sorted((r for r in table if r["method"] == m), key=lambda r: r["batch_size"])
        ax0.errorbar(
            [r["batch_size"] for r in rows],
            [r["mean"] for r in rows],
            yerr=[_ci_half(r["sd"], r["n"]) for r in rows],
            label=f"{LABELS.get(m, m)} (n = {rows[0]['n']})",
            capsize=2,
            ms=4,
            **METHOD_STYLE.get(m, {}),
        )
    _mark_blown_up(ax0, table)
    ax0.set_xscale("log", base=2)
    ax0.xaxis.set_major_formatter(plain)
    ax0.set_xlabel("batch size B (log scale)")
    ax0.set_ylabel("test accuracy (95 % CI)")
    ax0.set_title(title, fontsize=9)
    ax0.legend(fontsize=7)
    labels = list(slope_diffs)
    ypos = np.arange(len(labels))[::-1]
    for y, label in zip(ypos, labels):
        d = slope_diffs[label]
        colour = COLORS[3] if d.get("significant") else "0.4"
        ax1.errorbar(
            [d["mean"]], [y], xerr=[[d["mean"] - d["lo"]], [d["hi"] - d["mean"]]], fmt="o", color=colour, capsize=3
        )
    ax1.axvline(0, color="k", lw=0.8)
    ax1.set_yticks(ypos, [textwrap.fill(label, 24) for label in labels], fontsize=7)
    ax1.set_xlabel("difference of slopes (accuracy per doubling of B)")
    ax1.set_title(diff_title, fontsize=9)
    styles = [
        dict(color=COLORS[0], lw=5, alpha=0.4),
        dict(color=COLORS[2], marker="o", ms=3),
        dict(color=COLORS[1], marker="s", ms=3),
    ]
    for (label, curve), style in zip(shares.items(), styles):
        ax2.plot(share_sizes, curve, label=label, **style)
    ax2.plot(share_sizes, [1 / b for b in share_sizes], ls=":", color="0.5", label="1/B")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.xaxis.set_major_formatter(plain)
    ax2.yaxis.set_major_formatter(plain)
    ax2.set_xlabel("batch size B (log scale)")
    ax2.set_ylabel("self-term share |K_mm| / sum_n |K_nm|")
    ax2.set_title(share_title, fontsize=9)
    ax2.legend(fontsize=7)
    return fig


def plot_effective_steps(ratios: Mapping[str, Mapping[int, np.ndarray]], *, title: str | None = None):
    """Histograms of effective step ratios, one panel per method, one colour per batch size (log x axis).

    ``title`` (optional) heads the whole figure, e.g. the layer, the number of samples and the rates.
    """
    from isodl.core.plots import COLORS, figure

    methods = list(ratios)
    fig, axes = figure(len(methods), width=2.6 * len(methods) + 0.4, height=3.0, sharey=False)
    axes = np.atleast_1d(axes)
    every = np.concatenate([v for per in ratios.values() for v in per.values()])
    lo, hi = max(float(every.min()) * 0.8, 1e-3), float(every.max()) * 1.25
    bins = np.geomspace(lo, hi, 40)
    for ax, m in zip(axes, methods):
        for (b, values), colour in zip(ratios[m].items(), COLORS):
            ax.hist(values, bins=bins, alpha=0.6, color=colour, label=f"B = {b}")
        ax.set_xscale("log")
        ax.set_title(LABELS.get(m, m), fontsize=9)
        ax.set_xlabel("|dz| / (lr |dL/dz|)")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
    axes[0].set_ylabel("number of samples")
    axes[0].legend(fontsize=7)
    if title is not None:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_scale_ablation(rows: Sequence[Mapping]):
    """Test accuracy against the input scale c (log axis), one line per method: mean over seeds with its 95 % CI."""
    from isodl.core.plots import figure

    fig, ax = figure(1, width=5.2, height=3.4)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ns = set()
    for m in methods:
        scales = sorted({float(r["input_scale"]) for r in rows if r["method"] == m})
        means, halves = [], []
        for c in scales:
            acc = [r["test_accuracy"] for r in rows if r["method"] == m and float(r["input_scale"]) == c]
            ns.add(len(acc))
            means.append(float(np.mean(acc)))
            halves.append(_ci_half(float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0, len(acc)))
        ax.errorbar(scales, means, yerr=halves, label=LABELS.get(m, m), capsize=2, ms=4, **METHOD_STYLE.get(m, {}))
    ax.set_xscale("log")
    ax.set_xlabel("input scale c (inputs multiplied by c)")
    ax.set_ylabel("test accuracy (95 % CI)")
    ax.set_title(f"same learning rate, rescaled inputs ({'/'.join(map(str, sorted(ns)))} seeds per point)", fontsize=9)
    ax.legend(fontsize=7)
    return fig
