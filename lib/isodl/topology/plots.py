"""Notebooks 05-09 (05, 06, 07, 08, 09): figures (gain and eigenvalues, accuracy curves, spectra, weight matrices, removal error, adaptation, sparsity).

Figures for the isotropic-network notebooks 05-09 (pure: data in, matplotlib Figure out).

Every function here builds its figure with :func:`isodl.core.plots.figure` and
returns it without showing it, so notebooks display it, widgets redraw it and
tests call it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from isodl.core.plots import COLORS, figure, label_axes
from isodl.core.validate import check_float, check_int

__all__ = [
    "plot_gain_and_eigenvalues",
    "plot_accuracy_curves",
    "plot_spectrum_evolution",
    "plot_weight_matrices",
    "plot_removal_error",
    "plot_adaptation",
    "plot_task_schedule",
    "plot_grow_shrink_grid",
    "plot_sparsity_vs_depth",
]


def plot_gain_and_eigenvalues(lengths: Sequence[float] = (0.0, 0.5, 2.0), r_max: float = 6.0) -> Figure:
    """Left: the gain ``g = tanh(rho)/rho`` and the output length of isotropic tanh against ``|z|``,
    for several intrinsic lengths ``o``. Right: the Jacobian's eigenvalues (tangential ``g``,
    radial) against ``|z|``, next to elementwise tanh's ``sech^2`` (notebook 05)."""
    from isodl.topology.network import isotropic_tanh_eigenvalues

    r_max = check_float("r_max", r_max, minimum=0.0, strict_minimum=True)
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError("lengths must be a non-empty sequence of intrinsic lengths o >= 0")
    r = torch.linspace(0.0, r_max, 300, dtype=torch.float64)
    fig, (ax0, ax1) = figure(2, width=8.0, height=3.2)
    for i, o in enumerate(lengths):
        o = check_float(f"lengths[{i}]", o, minimum=0.0)
        tangential, radial = isotropic_tanh_eigenvalues(r, o)
        rho = torch.sqrt(r * r + o)
        colour = COLORS[i % len(COLORS)]
        ax0.plot(r, tangential, color=colour, label=f"gain g, o = {o:g}")
        ax0.plot(
            r,
            torch.tanh(rho) * r / torch.where(rho > 0, rho, torch.ones_like(rho)),
            color=colour,
            ls="--",
            label=f"output length, o = {o:g}",
        )
        ax1.plot(r, radial, color=colour, ls="--", label=f"radial, o = {o:g}", zorder=3)
        if i == 0:
            ax1.plot(r, tangential, color=colour, label=f"tangential (= g), o = {o:g}", zorder=3)
    ax1.plot(
        r,
        1.0 / torch.cosh(r) ** 2,
        color="0.6",
        lw=5,
        alpha=0.5,
        zorder=2,
        label="elementwise tanh: sech^2\n(wide grey; radial at o = 0 lies on it)",
    )
    ax0.set_xlabel("input length |z|")
    ax0.set_ylabel("value")
    ax0.set_title("Isotropic tanh: gain and output length")
    ax0.set_ylim(0, 1.05)
    ax0.legend(fontsize=7)
    ax1.set_xlabel("input length |z|")
    ax1.set_ylabel("Jacobian eigenvalue")
    ax1.set_title("Eigenvalues stay in (0, 1]")
    ax1.set_ylim(0, 1.05)
    ax1.legend(fontsize=7)
    return fig


def plot_accuracy_curves(curves: Mapping[str, Mapping[str, np.ndarray]], *, title: str = "Test accuracy") -> Figure:
    """One panel per data set: mean test accuracy (line) and the range from the lowest to the highest seed (band),
    per model; the legend says so.

    ``curves[dataset][model]`` is an array ``[seeds, epochs + 1]`` (epoch 0 = untrained).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty mapping {dataset: {model: array [seeds, epochs]}}")
    fig, axes = figure(len(curves), width=3.9 * len(curves), height=3.0)
    axes = np.atleast_1d(axes)
    for ax, (name, models) in zip(axes, curves.items()):
        for i, (label, values) in enumerate(models.items()):
            a = np.asarray(values, dtype=float)
            if a.ndim != 2:
                raise ValueError(f"curves[{name!r}][{label!r}] must be [seeds, epochs], got shape {a.shape}")
            ep = np.arange(a.shape[1])
            ax.plot(ep, a.mean(0), color=COLORS[i % len(COLORS)], label=f"{label} (mean)")
            ax.fill_between(ep, a.min(0), a.max(0), color=COLORS[i % len(COLORS)], alpha=0.2)
        n_seeds = max(np.asarray(v).shape[0] for v in models.values())
        ax.set_title(f"{title}: {name}\n(band: lowest to highest of {n_seeds} seeds)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_spectrum_evolution(
    spectra: Mapping[str, np.ndarray], *, threshold: float | None = 0.95, title: str = ""
) -> Figure:
    """Singular values of one layer over training, one panel per model.

    ``spectra[model]`` is ``[epochs + 1, n]`` (singular values per epoch).
    Each singular value is a thin line; the dashed line marks ``threshold``.
    """
    if not isinstance(spectra, Mapping) or not spectra:
        raise TypeError("spectra must be a non-empty mapping {model: array [epochs + 1, n]}")
    fig, axes = figure(len(spectra), width=3.9 * len(spectra), height=3.0, sharey=True)
    axes = np.atleast_1d(axes)
    for i, (ax, (name, values)) in enumerate(zip(axes, spectra.items())):
        a = np.asarray(values, dtype=float)
        if a.ndim != 2:
            raise ValueError(f"spectra[{name!r}] must be [epochs + 1, n], got shape {a.shape}")
        ax.plot(np.arange(a.shape[0]), a, color=COLORS[i % len(COLORS)], lw=0.8, alpha=0.7)
        if threshold is not None:
            ax.axhline(threshold, color=COLORS[7], ls="--", lw=1.0, label=f"threshold {threshold:g}")
            frac = float((a[-1] <= threshold).mean())
            ax.legend(loc="upper left", title=f"{100 * frac:.0f}% below at the end")
        ax.set_title(f"{name}{': ' + title if title else ''}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("singular value")
    return fig


def plot_weight_matrices(matrices: Sequence[tuple[str, torch.Tensor]], *, ncols: int | None = None) -> Figure:
    """Heat-maps of ``|W|`` for a list of ``(title, matrix)``, on a shared log colour scale (zeros white)."""
    if isinstance(matrices, (str, bytes)) or not isinstance(matrices, Sequence) or not matrices:
        raise TypeError("matrices must be a non-empty sequence of (title, matrix) pairs")
    import matplotlib.colors as mcolors

    arrays = []
    for i, item in enumerate(matrices):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"matrices[{i}] must be a (title, matrix) pair")
        m = (
            item[1].detach().abs().to(torch.float64).numpy()
            if isinstance(item[1], torch.Tensor)
            else np.abs(np.asarray(item[1], dtype=float))
        )
        if m.ndim != 2:
            raise ValueError(f"matrices[{i}] must be 2-D, got shape {m.shape}")
        arrays.append((str(item[0]), m))
    ncols = len(arrays) if ncols is None else check_int("ncols", ncols, minimum=1)
    nrows = int(np.ceil(len(arrays) / ncols))
    fig, axes = figure(ncols, nrows, width=2.6 * ncols + 0.8, height=2.6 * nrows)
    axes = np.atleast_1d(axes).ravel()
    top = max(float(m.max()) for _, m in arrays)
    norm = mcolors.LogNorm(vmin=max(top * 1e-4, 1e-12), vmax=max(top, 1e-12))
    image = None
    for ax, (name, m) in zip(axes, arrays):
        shown = np.ma.masked_where(m <= top * 1e-12, m)
        image = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_facecolor("white")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("input neuron")
        ax.set_ylabel("output neuron")
        ax.grid(False)
    for ax in axes[len(arrays) :]:
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[: len(arrays)]), shrink=0.8, label="|weight| (white: exactly 0)")
    return fig


def plot_removal_error(sizes, errors: Mapping[str, Sequence[float]], *, title: str = "Removing one neuron") -> Figure:
    """Log-log plot of the logit change against the removed singular value, one line per setting,
    with a slope-1 guide (notebook 07)."""
    s = np.asarray(sizes, dtype=float)
    if s.ndim != 1 or s.size < 2 or (s <= 0).any():
        raise ValueError("sizes must be at least two positive singular values")
    if not isinstance(errors, Mapping) or not errors:
        raise TypeError("errors must be a non-empty mapping {label: errors per size}")
    fig, ax = figure(1, width=4.6, height=3.2)
    for i, (label, values) in enumerate(errors.items()):
        e = np.asarray(values, dtype=float)
        if e.shape != s.shape:
            raise ValueError(f"errors[{label!r}] must have one value per size ({s.size}), got {e.shape}")
        ax.loglog(s, np.maximum(e, 1e-18), "o-", color=COLORS[i % len(COLORS)], label=label)
    first = np.asarray(next(iter(errors.values())), dtype=float)
    ax.loglog(s, first[-1] * s / s[-1], color=COLORS[7], ls=":", label="slope 1 (linear)")
    ax.set_xlabel("removed singular value s")
    ax.set_ylabel("largest logit change")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_adaptation(record: Mapping, epoch: int, *, threshold: float = 0.95) -> Figure:
    """One epoch of a scheduled task adaptation (notebook 08's widget).

    ``record`` comes from :func:`isodl.topology.schedules.run_task_schedule`
    (phases are shaded and labelled when it holds ``task_names``).
    Left: each hidden layer's width over the epochs, with a grey line at the
    selected ``epoch``. Right: each hidden layer's neuron strengths after that
    epoch, sorted, with the buffer ``threshold`` (neurons at or below it are
    the reserve; exact zeros are fresh scaffolds).
    """
    n = len(record["widths"])
    epoch = check_int("epoch", epoch, minimum=1, maximum=n)
    threshold = check_float("threshold", threshold, minimum=0.0)
    i = epoch - 1
    fig, (ax0, ax1) = figure(2, width=9.0, height=3.4)
    epochs = np.arange(1, n + 1)
    widths = np.array([w[1:-1] for w in record["widths"]])
    first = np.array(record.get("initial_widths", record["widths"][0])[1:-1])
    _shade_phases(ax0, record["active"], record.get("task_names"))
    for k in range(widths.shape[1]):
        ax0.plot(
            np.r_[0, epochs], np.r_[first[k], widths[:, k]], color=COLORS[k % len(COLORS)], label=f"hidden layer {k}"
        )
    ax0.axvline(epoch, color=COLORS[7], lw=1.5, label=f"selected epoch {epoch}")
    label_axes(ax0, xlabel="epoch (0: initial widths)", ylabel="width", title="Hidden widths (buffer rule)")
    ax0.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    for k, st in enumerate(record["strengths"][i]):
        st = np.sort(np.asarray(st))[::-1]
        weak = int((st <= threshold).sum())
        ax1.plot(
            np.arange(len(st)), st, "o-", ms=3, color=COLORS[k % len(COLORS)], label=f"layer {k}: {weak} at or below"
        )
    ax1.axhline(threshold, color=COLORS[7], ls="--", lw=1.0, label=f"threshold {threshold:g}")
    label_axes(
        ax1,
        xlabel="neuron (sorted by strength)",
        ylabel="singular value",
        title=f"Neuron strengths after epoch {epoch}",
    )
    ax1.legend(fontsize=8)
    return fig


def plot_task_schedule(
    record: Mapping,
    *,
    control: Mapping,
    null: Mapping,
    task_names: Sequence[str],
) -> Figure:
    """Overview of a scheduled task adaptation (notebook 08), four panels sharing the epoch axis.

    Top left: each hidden layer's width under the buffer rule. Top right: the
    summed hidden width, against ``null`` (the same rule on a schedule where no
    task arrives). Bottom left: per-task test accuracy, buffer rule (solid)
    against the ``control`` that never adapts (dashed). Bottom right: the
    function change (``eps_scaled``, log scale) of every adaptation step that
    removed neurons, for the rule (filled) and for magnitude pruning of the
    same counts after an exact random rotation (open; needs ``baseline=True``).
    Shaded bands are the phases, labelled by their active tasks.
    """
    names = list(task_names)
    n = len(record["widths"])
    epochs = np.arange(1, n + 1)
    fig, (ax0, ax1, ax2, ax3) = figure(2, 2, width=10.5, height=6.6)
    for ax in (ax0, ax1, ax2, ax3):
        _shade_phases(ax, record["active"], names)
    widths = np.array([w[1:-1] for w in record["widths"]])
    first = np.array(record["initial_widths"][1:-1])
    for k in range(widths.shape[1]):
        ax0.plot(
            np.r_[0, epochs], np.r_[first[k], widths[:, k]], color=COLORS[k % len(COLORS)], label=f"hidden layer {k}"
        )
    label_axes(ax0, xlabel="epoch (0: initial widths)", ylabel="width", title="Width of each hidden layer")
    ax0.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    for rec, label, ls in ((record, "tasks arrive (schedule)", "-"), (null, "no task arrives (null)", "--")):
        total = [sum(rec["initial_widths"][1:-1])] + [sum(w[1:-1]) for w in rec["widths"]]
        ax1.plot(np.r_[0, np.arange(1, len(total))], total, ls, color=COLORS[0 if ls == "-" else 3], label=label)
    label_axes(ax1, xlabel="epoch (0: initial widths)", ylabel="sum of hidden widths", title="Total hidden width")
    ax1.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    acc = np.array(record["accuracy"], dtype=float)
    acc_c = np.array(control["accuracy"], dtype=float)
    for t in range(acc.shape[1]):
        ax2.plot(epochs, acc[:, t], color=COLORS[t % len(COLORS)], label=f"{names[t]}")
        ax2.plot(epochs, acc_c[:, t], color=COLORS[t % len(COLORS)], ls="--", lw=1.0)
    ax2.plot([], [], color="grey", ls="--", lw=1.0, label="dashed: static control")
    label_axes(
        ax2, xlabel="epoch", ylabel="test accuracy", title="Per-task accuracy (solid: buffer rule)", ylim=(0, 1.02)
    )
    ax2.legend(fontsize=8, loc="lower right")
    base = record.get("baseline_change")
    events = [e for e, ch in enumerate(record["changes"]) if any(v < 0 for v in ch.values())]
    if events:
        rule = [max(record["adapt_change"][e]["eps_scaled"], 1e-4) for e in events]
        ax3.semilogy(np.array(events) + 1, rule, "o", color=COLORS[0], label="buffer rule (SVD removal)")
        if base is not None and all(base[e] is not None for e in events):
            ax3.semilogy(
                np.array(events) + 1,
                [max(base[e]["eps_scaled"], 1e-4) for e in events],
                "o",
                mfc="none",
                color=COLORS[3],
                label="same counts, magnitude pruning in a random basis",
            )
    label_axes(ax3, xlabel="epoch", ylabel="eps_scaled (%)", title="Function change of each removal step")
    ax3.legend(fontsize=8, loc="lower center")
    ax3.set_xlim(0.5, n + 0.5)
    return fig


def _mean_se(runs) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(runs, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"runs must be [seeds, epochs], got shape {a.shape}")
    se = a.std(0, ddof=1) / np.sqrt(a.shape[0]) if a.shape[0] > 1 else np.zeros(a.shape[1])
    return a.mean(0), se


def plot_grow_shrink_grid(
    results: Mapping, *, ylim: tuple[float, float] = (0.5, 1.0), mark_epoch: int | None = None
) -> Figure:
    """The grow/shrink grid (notebook 08): one panel per (start, target), rows = start width, columns = target.

    ``results`` comes from :func:`isodl.topology.schedules.grow_shrink_grid`.
    Each panel: test accuracy of the adapted network (mean, band = +- 1
    standard error over seeds), the static isotropic network of the target
    width (dashed) and the static elementwise-tanh network of the target width
    (dotted); the grey band marks the adaptation epochs; ``mark_epoch`` adds
    a thin vertical line at that epoch (for example the end of a shorter run).
    """
    if mark_epoch is not None:
        mark_epoch = check_int("mark_epoch", mark_epoch, minimum=1, maximum=int(results["epochs"]))
    starts, targets = list(results["starts"]), list(results["targets"])
    n_seeds = len(results["seeds"])
    fig, axes = figure(
        len(targets),
        len(starts),
        width=2.4 * len(targets) + 0.6,
        height=1.9 * len(starts) + 0.6,
        sharex=True,
        sharey=True,
    )
    axes = np.asarray(axes).reshape(len(starts), len(targets))
    w, a = results["warmup"], results["adapt"]
    for i, start in enumerate(starts):
        for j, target in enumerate(targets):
            ax = axes[i, j]
            ax.axvspan(w + 0.5, w + a + 0.5, color="0.9", lw=0, zorder=0)
            if mark_epoch is not None:
                ax.axvline(mark_epoch, color="0.5", lw=0.8, ls="-", zorder=0)
            for key, group, color, ls, label in (
                (f"{start}->{target}", "adaptive", COLORS[0], "-", "grown or shrunk (isotropic)"),
                (str(target), "static", COLORS[1], "--", "static isotropic, target width"),
                (str(target), "elementwise", COLORS[2], ":", "static elementwise tanh, target width"),
            ):
                mean, se = _mean_se(results[group][key])
                ep = np.arange(1, mean.size + 1)
                ax.plot(ep, mean, color=color, ls=ls, lw=1.3, label=label)
                if group == "adaptive":
                    ax.fill_between(ep, mean - se, mean + se, color=color, alpha=0.25, lw=0)
            ax.set_title(f"{start} -> {target}", fontsize=9)
            ax.set_ylim(*ylim)
            if i == len(starts) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel(f"start {start}\ntest accuracy", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        f"Grow or shrink one hidden layer [64, m, 10] on the digits: rows start width, columns target width "
        f"(band: +- 1 s.e. over {n_seeds} seeds; grey: adaptation epochs"
        + (f"; vertical line: epoch {mark_epoch}" if mark_epoch is not None else "")
        + ")",
        fontsize=9,
    )
    return fig


def _shade_phases(ax, active, names=None) -> None:
    """Alternate light bands for the phases of a schedule; with ``names``, each phase labelled by its tasks' initials."""
    starts = [0] + [e for e in range(1, len(active)) if active[e] != active[e - 1]] + [len(active)]
    for p, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        if p % 2:
            ax.axvspan(a + 0.5, b + 0.5, color="0.92", lw=0, zorder=0)
        if names is not None:
            label = "+".join(str(names[t])[0] for t in active[a])
            ax.text(
                (a + b) / 2 + 0.5, 0.98, label, transform=ax.get_xaxis_transform(), fontsize=9, ha="center", va="top"
            )


def plot_sparsity_vs_depth(
    depths,
    measured: Mapping[str, Sequence[float]],
    formula: Mapping[str, Sequence[float]],
    *,
    width: int,
    bound: Sequence[float] | None = None,
) -> Figure:
    """Fraction of hidden-to-hidden weights left non-zero against the number ``M`` of hidden-to-hidden matrices
    (notebook 09): one colour per construction, lines for the formula, markers for the count on real networks
    (filled for the first construction, open for the others, so coinciding points stay visible),
    with the reparameterisation ``bound`` (dashed), 1/2 (dotted) and the deep limit ``(1 + 1/n)/2`` (dash-dotted)."""
    width = check_int("width", width, minimum=1)
    d = np.asarray(depths, dtype=float)
    if d.ndim != 1 or d.size < 1:
        raise ValueError("depths must be a non-empty 1-D sequence")
    if not isinstance(measured, Mapping) or not isinstance(formula, Mapping) or set(measured) != set(formula):
        raise TypeError("measured and formula must be mappings {construction: values} with the same keys")
    fig, ax = figure(1, width=5.6, height=3.6)
    for i, label in enumerate(formula):
        f = np.asarray(formula[label], dtype=float)
        m = np.asarray(measured[label], dtype=float)
        if not (f.shape == m.shape == d.shape):
            raise ValueError(f"measured and formula for {label!r} must have one value per depth ({d.size})")
        color = COLORS[i % len(COLORS)]
        ax.plot(d, f, "-", color=color, lw=1.2, label=label)
        ax.plot(d, m, "o", color=color, ms=7 - 1.5 * i, mfc="none" if i else color)
    if bound is not None:
        b = np.asarray(bound, dtype=float)
        if b.shape != d.shape:
            raise ValueError(f"bound must have one value per depth ({d.size})")
        ax.plot(d, b, "--", color="black", lw=1.0, label="least reachable (dimension count)")
    ax.axhline(0.5, color=COLORS[7], ls=":", lw=1.0, label="1/2")
    ax.axhline(
        0.5 * (1 + 1 / width),
        color="0.4",
        ls="-.",
        lw=1.0,
        label=f"deep limit (1 + 1/n)/2 = {0.5 * (1 + 1 / width):.3f}",
    )
    label_axes(
        ax,
        xlabel="hidden-to-hidden matrices M (network [n] * (M + 3))",
        ylabel="fraction of W_1..W_M non-zero",
        title=f"{width} x {width} hidden matrices (lines: formula, markers: counted)",
        ylim=(0.0, 0.8),
    )
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax.set_xticks(d)
    return fig
