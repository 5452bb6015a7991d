"""Notebook 13: figures (truncation errors, costs, recall training).

Figures for notebook 13 (forward sensitivity versus BPTT), and the one helper they need.

Every plotting function is pure: data in, ``matplotlib.figure.Figure`` out
(built with :func:`isodl.core.plots.figure`), nothing shown or stored. The
notebook computes the data with :mod:`isodl.recurrent.sensitivity` and
:mod:`isodl.recurrent.tasks` and passes it in, so the
widget redraws instantly and the tests need no training.

* :func:`truncation_errors` turns per-step gradient contributions into the
  relative error of truncated BPTT for every window ``k``.
* :func:`plot_truncation` (the notebook's widget): gradient error against the
  window ``k``, and the input gradients that truncation sets to exactly zero.
* :func:`plot_costs`: time per step against the state size ``n`` and the
  sequence length ``T``, and memory against ``T``, from
  :class:`isodl.recurrent.sensitivity.CostMeasurement` lists.
* :func:`plot_recall_training`: test accuracy over the updates and the final
  accuracy of every run of the online-learning comparison on the recall task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from isodl.core.plots import COLORS, figure
from isodl.core.validate import check_int, check_tensor

__all__ = [
    "METHOD_COLORS",
    "truncation_errors",
    "plot_truncation",
    "plot_costs",
    "plot_recall_training",
    "plot_recall_sweep",
    "plot_online",
]

#: One colour per gradient method, shared by the figures of notebook 13.
METHOD_COLORS = {"forward": COLORS[0], "bptt": COLORS[1], "tbptt": COLORS[2]}

_METHOD_LABELS = {"forward": "forward sensitivity", "bptt": "BPTT (autograd)", "tbptt": "truncated BPTT"}


def _key(method: str) -> str | None:
    text = method.strip().lower()
    if text.startswith("forward"):
        return "forward"
    if text.startswith(("tbptt", "truncated")):
        return "tbptt"
    if text.startswith("bptt"):
        return "bptt"
    return None


def _label(method: str) -> str:
    return _METHOD_LABELS.get(method.strip().lower(), method)


def _colour(method: str, i: int) -> str:
    key = _key(method)
    return METHOD_COLORS[key] if key else COLORS[(i + 4) % len(COLORS)]


def truncation_errors(step_gradients, reference_norm: float | None = None) -> torch.Tensor:
    """Relative gradient error of keeping only the last ``k`` steps, for ``k = 1 ... L``.

    ``step_gradients`` is ``[L, P]``: row ``tau`` is the gradient of the loss
    with respect to the parameters *as used at step* ``tau`` (the exact
    gradient is the sum of the rows). For a loss on the last step only,
    truncated BPTT with window ``k`` keeps rows ``L-k ... L-1`` and drops the
    rest, so its error is ``||sum of the dropped rows|| / reference_norm``.
    ``reference_norm`` defaults to the norm of the full sum; pass the norm of
    the whole exact gradient (readout included) to get the number that
    :func:`isodl.recurrent.sensitivity.relative_error` reports. Entry ``k - 1`` of the result
    belongs to window ``k``; the last entry (``k = L``) is exactly 0.
    Derived in notebook 13.
    """
    g = check_tensor("step_gradients", step_gradients, ndim=2, floating=True)
    L = g.shape[0]
    if L < 1:
        raise ValueError("step_gradients must have at least one row (one time step)")
    g = g.detach().to(torch.float64)
    if reference_norm is None:
        reference_norm = float(torch.linalg.vector_norm(g.sum(0)))
    else:
        if isinstance(reference_norm, bool) or not isinstance(reference_norm, (int, float, np.floating, np.integer)):
            raise TypeError(f"reference_norm must be a positive number or None, got {type(reference_norm).__name__}")
        reference_norm = float(reference_norm)
        if not math.isfinite(reference_norm) or reference_norm <= 0:
            raise ValueError(f"reference_norm must be a positive finite number, got {reference_norm}")
    if reference_norm == 0.0:
        raise ValueError("the exact gradient is zero, so a relative error is undefined; pass reference_norm")
    # dropped(k) = sum of rows 0 .. L-k-1 = prefix sums, read backwards
    prefix = torch.cat([torch.zeros(1, g.shape[1], dtype=g.dtype), torch.cumsum(g, dim=0)])  # prefix[j] = rows < j
    dropped = prefix[L - torch.arange(1, L + 1)]
    return torch.linalg.vector_norm(dropped, dim=1) / reference_norm


def _check_truncation_data(data) -> dict:
    if not isinstance(data, Mapping) or not data:
        raise TypeError(
            "data must be a non-empty dict {recurrent_gain: (errors, input_norms)} with errors from truncation_errors "
            f"and input_norms the norms of the exact input gradients, got {type(data).__name__}"
        )
    out, length = {}, None
    for gain, value in data.items():
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise TypeError(f"data[{gain!r}] must be a pair (errors, input_norms), got {type(value).__name__}")
        errors = check_tensor(f"data[{gain!r}] errors", value[0], ndim=1).detach().double().cpu()
        norms = check_tensor(f"data[{gain!r}] input_norms", value[1], ndim=1).detach().double().cpu()
        if errors.shape != norms.shape:
            raise ValueError(
                f"data[{gain!r}]: errors and input_norms must both have one entry per step, "
                f"got {errors.shape[0]} and {norms.shape[0]}"
            )
        if length is not None and errors.shape[0] != length:
            raise ValueError(
                f"every entry of data must have the same sequence length; got {length} and {errors.shape[0]}"
            )
        length = errors.shape[0]
        out[gain] = (errors.numpy(), norms.numpy())
    return out


def plot_truncation(data, k: int = 10, recurrent_gain=None, *, symbol_errors: Mapping | None = None) -> Figure:
    """Widget figure: what truncated BPTT with window ``k`` drops on a recall task.

    ``data`` maps a recurrent gain to ``(errors, input_norms)``: ``errors``
    from :func:`truncation_errors` (entry ``k - 1`` for window ``k``) and
    ``input_norms[tau] = ||dL/dx_tau||`` from the exact gradient, for a loss on
    the last of ``L`` steps. Left: relative gradient error against ``k`` for
    every gain, the chosen ``k`` marked. Right: the exact input gradients of
    the chosen gain; truncated BPTT keeps the last ``k`` of them unchanged and
    sets every older one to exactly zero (shaded). ``recurrent_gain`` picks the
    gain on the right (default: the first key of ``data``). ``errors`` should
    be relative to the recurrent parameters' own gradient (the readout's
    gradient is the same for every method and would dilute the figure).
    ``symbol_errors`` optionally maps each gain to the same curve for the
    input weights that read the symbol; the right panel's title then names
    both figures.
    """
    curves = _check_truncation_data(data)
    if symbol_errors is not None and not isinstance(symbol_errors, Mapping):
        raise TypeError(f"symbol_errors must be a dict {{gain: errors}} or None, got {type(symbol_errors).__name__}")
    if recurrent_gain is None:
        recurrent_gain = next(iter(curves))
    if recurrent_gain not in curves:
        raise ValueError(f"recurrent_gain must be one of {list(curves)}, got {recurrent_gain!r}")
    errors, norms = curves[recurrent_gain]
    L = errors.shape[0]
    k = check_int("k", k, minimum=1)
    k_eff = min(k, L)

    fig, (ax0, ax1) = figure(2, width=9.4, height=3.5)
    ks = np.arange(1, L + 1)
    floor = 1e-17
    shades = matplotlib.colormaps["plasma"](np.linspace(0.0, 0.75, len(curves)))
    for i, (gain, (err, _)) in enumerate(curves.items()):
        chosen = gain == recurrent_gain
        ax0.semilogy(
            ks[:-1],
            np.maximum(err[:-1], floor),
            marker="o" if chosen else None,
            ms=3,
            lw=2.2 if chosen else 1.2,
            alpha=1.0 if chosen else 0.55,
            color=shades[i],
            label=f"recurrent gain {gain}",
        )
    ax0.axvline(k_eff, color="k", lw=0.8, ls=":")
    err_k = float(errors[k_eff - 1])
    if k_eff < L:
        ax0.plot([k_eff], [max(err_k, floor)], "o", ms=9, mfc="none", mec="k")
    ax0.set_xlabel("truncation window k (steps)")
    ax0.set_ylabel("relative error, recurrent weights")
    ax0.set_title(f"TBPTT error against k (0 once k >= {L})")
    ax0.legend(loc="lower left")

    taus = np.arange(L)
    cut = L - k_eff  # steps 0 .. cut-1 are outside the window
    pos = norms > 0
    tb = METHOD_COLORS["tbptt"]
    ax1.semilogy(
        taus[pos], norms[pos], "o-", ms=3, color=METHOD_COLORS["forward"], label="exact (forward sensitivity = BPTT)"
    )
    kept = taus >= cut
    ax1.semilogy(
        taus[kept & pos], norms[kept & pos], "s", ms=6, mfc="none", color=tb, label=f"TBPTT(k={k_eff}): the same"
    )
    if cut > 0:
        ax1.axvspan(-0.5, cut - 0.5, color=tb, alpha=0.12, lw=0, label=f"TBPTT(k={k_eff}): exactly 0")
    ax1.set_xlim(-0.5, L - 0.5)
    ax1.set_xlabel("input step tau (symbol at 0, cue and loss at the last step)")
    ax1.set_ylabel("|dL/dx_tau|")
    drop = "nothing" if cut == 0 else f"{err_k:.1%} of the recurrent gradient"
    if symbol_errors is not None and recurrent_gain in symbol_errors and cut > 0:
        sym = float(np.asarray(symbol_errors[recurrent_gain])[k_eff - 1])
        drop = f"{sym:.0%} of the symbol-reading weights' gradient, {err_k:.1%} of the recurrent one"
    ax1.set_title(f"gain {recurrent_gain}: TBPTT(k={k_eff}) drops" + (" " if cut == 0 else "\n") + drop, fontsize=9)
    ax1.legend(loc="lower right", fontsize=8)
    return fig


def _integer_ticks(ax, values) -> None:
    """Label a log axis at exactly ``values`` (plain integers), without minor tick labels."""
    ax.xaxis.set_major_locator(FixedLocator(list(values)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(int(v)) for v in values])


def _cost_series(measurements, name: str):
    if isinstance(measurements, (str, bytes)) or not isinstance(measurements, Sequence) or not measurements:
        raise TypeError(
            f"{name} must be a non-empty list of isodl.recurrent.sensitivity.CostMeasurement, got {type(measurements).__name__}"
        )
    series: dict[str, list] = {}
    for i, m in enumerate(measurements):
        for attr in ("method", "hidden_size", "T", "seconds_per_step", "memory_bytes"):
            if not hasattr(m, attr):
                raise TypeError(
                    f"{name}[{i}] must be an isodl.recurrent.sensitivity.CostMeasurement (from measure_cost), got {type(m).__name__}"
                )
        series.setdefault(m.method, []).append(m)
    return series


def plot_costs(
    by_size,
    by_length,
    *,
    saved_bytes: Mapping[int, int] | None = None,
    forward_bytes: Mapping[int, int] | None = None,
) -> Figure:
    """Cost of the exact gradient: forward sensitivity against BPTT, in three panels.

    ``by_size``: :class:`isodl.recurrent.sensitivity.CostMeasurement` results for several state
    sizes ``n`` at one ``T``; ``by_length``: results for several ``T`` at one
    ``n``. Left: time per step against ``n`` (log-log) with dashed guides of
    slope 2 (anchored at BPTT's largest ``n``) and 3 and 4 (anchored at
    forward sensitivity's largest ``n``). Middle: time per step against
    ``T``. Right: memory against ``T``, the analytic counts of
    :func:`isodl.recurrent.sensitivity.stored_bytes`, plus, if given, ``saved_bytes`` ``{T:
    bytes}`` measured for BPTT (the tensors autograd keeps for backward) and
    ``forward_bytes`` ``{T: bytes}`` measured for forward sensitivity (see
    :func:`isodl.recurrent.sensitivity.measured_memory`); with both, the
    crossover length where the two measured lines meet is marked.
    """
    sizes = _cost_series(by_size, "by_size")
    lengths = _cost_series(by_length, "by_length")
    if saved_bytes is not None and not isinstance(saved_bytes, Mapping):
        raise TypeError(f"saved_bytes must be a dict {{T: bytes}} or None, got {type(saved_bytes).__name__}")
    fig, (ax0, ax1, ax2) = figure(3, width=10.0, height=3.4)

    for i, (method, ms) in enumerate(sizes.items()):
        ms = sorted(ms, key=lambda m: m.hidden_size)
        n = np.array([m.hidden_size for m in ms], dtype=float)
        t = np.array([1e3 * m.seconds_per_step for m in ms])
        ax0.loglog(n, t, "o-", color=_colour(method, i), label=_label(method))
        if len(n) > 1:
            grid = np.geomspace(n[0], n[-1], 20)
            powers = (2,) if method == "bptt" else (3, 4) if method == "forward" else ()
            for p, ls in zip(powers, ("--", ":")):
                ax0.loglog(grid, t[-1] * (grid / n[-1]) ** p, ls, color="0.45", lw=1.0)
                ax0.annotate(
                    f"n^{p}",
                    (grid[0], t[-1] * (grid[0] / n[-1]) ** p),
                    fontsize=8,
                    color="0.35",
                    xytext=(2, 0),
                    textcoords="offset points",
                    va="center",
                )
    T_size = sorted({m.T for ms in sizes.values() for m in ms})
    _integer_ticks(ax0, sorted({m.hidden_size for ms in sizes.values() for m in ms}))
    ax0.set_xlabel("state size n")
    ax0.set_ylabel("ms per step")
    ax0.set_title(f"time per step against n (T = {', '.join(map(str, T_size))})")
    ax0.legend(loc="upper left")

    n_len = sorted({m.hidden_size for ms in lengths.values() for m in ms})
    for i, (method, ms) in enumerate(lengths.items()):
        ms = sorted(ms, key=lambda m: m.T)
        T = np.array([m.T for m in ms], dtype=float)
        ax1.semilogx(T, [1e3 * m.seconds_per_step for m in ms], "o-", color=_colour(method, i), label=_label(method))
        what = {"forward": "S_t", "bptt": "the T states"}.get(method, "count")
        ax2.plot(
            T, [m.memory_bytes / 1024 for m in ms], "o-", color=_colour(method, i), label=f"{_label(method)}: {what}"
        )
    ax1.set_ylim(bottom=0)
    _integer_ticks(ax1, sorted({m.T for ms in lengths.values() for m in ms}))
    ax1.set_xlabel("sequence length T")
    ax1.set_ylabel("ms per step")
    ax1.set_title(f"time per step against T (n = {', '.join(map(str, n_len))})")
    ax1.legend(loc="center right")
    if saved_bytes:
        Ts = sorted(saved_bytes)
        ax2.plot(
            Ts,
            [saved_bytes[t] / 1024 for t in Ts],
            "x--",
            color=METHOD_COLORS["bptt"],
            ms=7,
            label="BPTT: autograd's saved tensors",
        )
    if forward_bytes:
        Tf = sorted(forward_bytes)
        ax2.plot(
            Tf,
            [forward_bytes[t] / 1024 for t in Tf],
            "+--",
            color=METHOD_COLORS["forward"],
            ms=8,
            label="forward: measured live tensors",
        )
    if saved_bytes and forward_bytes and len(saved_bytes) > 1:
        Ts = sorted(saved_bytes)
        slope, intercept = np.polyfit(Ts, [saved_bytes[t] for t in Ts], 1)
        level = float(np.mean(list(forward_bytes.values())))
        if slope > 0:
            cross = (level - intercept) / slope
            ax2.axvline(cross, color="0.4", lw=0.8, ls=":")
            ax2.annotate(
                f"crossover T ~ {cross:.0f}",
                (cross, level / 1024),
                fontsize=7,
                xytext=(4, 6),
                textcoords="offset points",
            )
    ax2.set_ylim(bottom=0)
    ax2.set_xlabel("sequence length T")
    ax2.set_ylabel("KiB kept while computing")
    ax2.set_title("memory against T")
    ax2.legend(loc="upper left", fontsize=7)
    return fig


def plot_recall_training(
    curves: Mapping[str, Sequence],
    *,
    chance: float,
    title: str = "Learning to recall",
) -> Figure:
    """Left: test accuracy against update for every run. Right: the final accuracy of every run.

    ``curves`` maps a method label (``"forward sensitivity"``, ``"BPTT"``,
    ``"TBPTT(k=7)"``, ...; the colour follows the label) to a list of runs,
    each a pair ``(updates, accuracies)`` of equal-length sequences (one run
    per seed). ``chance`` is the accuracy of guessing, drawn as a line.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(
            f"curves must be a non-empty dict {{method label: [(updates, accuracies), ...]}}, got {type(curves).__name__}"
        )
    if isinstance(chance, bool) or not isinstance(chance, (int, float, np.floating)) or not 0 <= float(chance) <= 1:
        raise ValueError(f"chance must be an accuracy between 0 and 1, got {chance!r}")
    runs = {}
    for label, value in curves.items():
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise TypeError(f"curves[{label!r}] must be a non-empty list of (updates, accuracies) pairs")
        pairs = []
        for j, run in enumerate(value):
            if not (isinstance(run, (tuple, list)) and len(run) == 2):
                raise TypeError(f"curves[{label!r}][{j}] must be a pair (updates, accuracies)")
            x, y = np.asarray(run[0], dtype=float), np.asarray(run[1], dtype=float)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0:
                raise ValueError(
                    f"curves[{label!r}][{j}]: updates and accuracies must be non-empty lists of the same length, "
                    f"got shapes {x.shape} and {y.shape}"
                )
            pairs.append((x, y))
        runs[label] = pairs
    fig, (ax0, ax1) = figure(2, width=9.4, height=3.5)
    styles = ["-", "--", "-", ":"]
    for i, (label, pairs) in enumerate(runs.items()):
        colour = _colour(label, i)
        for j, (x, y) in enumerate(pairs):
            ax0.plot(
                x,
                y,
                styles[i % len(styles)],
                marker="o" if len(pairs) == 1 else None,
                ms=4,
                color=colour,
                lw=2.4 if len(pairs) == 1 else 1.2,
                alpha=1.0 if len(pairs) == 1 else 0.7,
                label=f"{label}, {len(pairs)} run{'s' if len(pairs) > 1 else ''}" if j == 0 else None,
            )
        finals = np.array([y[-1] for _, y in pairs])
        jitter = np.linspace(-0.12, 0.12, finals.size) if finals.size > 1 else np.zeros(1)
        ax1.plot(i + jitter, finals, "o", ms=7, alpha=0.8, color=colour)
    for ax in (ax0, ax1):
        ax.axhline(float(chance), color="k", lw=0.8, ls="--")
        ax.set_ylim(0, 1.05)
    ax0.text(
        0.02,
        float(chance) - 0.02,
        f"chance ({float(chance):.2f})",
        transform=ax0.get_yaxis_transform(),
        ha="left",
        va="top",
        fontsize=8,
    )
    ax0.set_xlabel("update (one batch of sequences each)")
    ax0.set_ylabel("test accuracy at the cue")
    ax0.set_title(title)
    ax0.legend(loc="lower right", fontsize=8)
    labels = list(runs)
    ax1.set_xticks(range(len(labels)))
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_xlim(-0.5, len(labels) - 0.5)
    ax1.set_ylabel("final test accuracy")
    ax1.set_title("end of each run, one dot per seed")
    return fig


def plot_recall_sweep(
    accuracies: Mapping, delays: Sequence[int], *, k: int, chance: float, title: str = "Recall"
) -> Figure:
    """Final test accuracy against the recall delay, one point per run, for exact and truncated BPTT.

    ``accuracies`` maps ``(method, delay)`` to a list of final accuracies
    (one per seed) for ``method`` in ``"bptt"`` and ``"tbptt"``. The
    truncation window ``k`` is marked at delay ``k - 1`` (the longest delay
    whose whole sequence fits in the window); ``chance`` is drawn as a line.
    Means are joined by lines; every seed is a dot.
    """
    if not isinstance(accuracies, Mapping) or not accuracies:
        raise TypeError("accuracies must be a non-empty dict {(method, delay): [accuracy per seed]}")
    if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence) or not delays:
        raise TypeError(f"delays must be a non-empty sequence of ints, got {delays!r}")
    k = check_int("k", k, minimum=1)
    fig, ax = figure(1, width=6.4, height=3.6)
    offsets = {"bptt": -0.04, "tbptt": 0.04}
    for i, method in enumerate(("bptt", "tbptt")):
        present = [d for d in delays if (method, d) in accuracies]
        if not present:
            continue
        means = [float(np.mean(accuracies[method, d])) for d in present]
        label = _label(method) if method == "bptt" else f"truncated BPTT (k = {k})"
        ax.plot(present, means, "-", color=_colour(method, i), lw=1.5, label=f"{label}: mean")
        for d in present:
            vals = np.asarray(accuracies[method, d], dtype=float)
            xs = np.full(len(vals), float(d)) * (1 + offsets[method])
            ax.plot(xs, vals, "o", color=_colour(method, i), ms=5, alpha=0.7)
    ax.axhline(chance, color="0.5", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.axvline(k - 1, color="k", ls="--", lw=0.8)
    ax.annotate(
        f"sequence fits in the window (delay <= {k - 1})",
        (k - 1, 0.05),
        fontsize=7,
        xytext=(3, 0),
        textcoords="offset points",
    )
    ax.set_xscale("log", base=2)
    _integer_ticks(ax, list(delays))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("delay between symbol and cue (steps)")
    ax.set_ylabel("final test accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9), fontsize=7)
    return fig


def plot_online(
    runs: Mapping[str, Sequence[Sequence[float]]], *, chance: float, title: str = "Learning online"
) -> Figure:
    """Accuracy at each cue of one long stream, per method: thin lines one per seed, thick their mean.

    ``runs`` maps a method (``"forward"``, ``"tbptt"``, ``"bptt"``) to a list of per-seed accuracy lists, one value
    per cue (from :func:`isodl.recurrent.tasks.train_online`).
    """
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("runs must be a non-empty dict {method: [accuracies per seed]}")
    labels = {
        "forward": "forward sensitivity (RTRL): update at every cue",
        "tbptt": "truncated BPTT online: update at every cue",
        "bptt": "BPTT: no update until the stream ends",
    }
    fig, ax = figure(1, width=7.0, height=3.6)
    for i, (method, per_seed) in enumerate(runs.items()):
        arr = np.asarray([list(a) for a in per_seed], dtype=float)
        # a variant of a method (e.g. truncated BPTT with another window) gets its own colour and a dashed line
        colour = _colour(method, i) if method in labels else COLORS[(i + 4) % len(COLORS)]
        ls = "-" if method in labels else "--"
        for row in arr:
            ax.plot(np.arange(1, arr.shape[1] + 1), row, color=colour, lw=0.6, alpha=0.35, ls=ls)
        ax.plot(
            np.arange(1, arr.shape[1] + 1),
            arr.mean(0),
            color=colour,
            lw=2,
            ls=ls,
            label=f"{labels.get(method, method)} (mean of {len(arr)})",
        )
    ax.axhline(chance, color="0.5", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("episode (cue) within the one long sequence")
    ax.set_ylabel("accuracy at the cue, before its update")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig
