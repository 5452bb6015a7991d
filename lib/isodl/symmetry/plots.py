"""Notebooks 01-04 (01, 02, 03, 04): figures (rotation symmetry, Jacobian axes, SRM curves and explorer, PPPM densities, alignment explorer, purity).

Every function is pure: data in, ``matplotlib.figure.Figure`` out (built with
:func:`isodl.core.plots.figure`), nothing shown, so notebooks display it,
:func:`isodl.core.widgets.interactive_figure` redraws it and the tests call it
directly.

* Notebook 01 (symmetry of activations): :func:`demo_cloud`,
  :func:`rotation_gaps`, :func:`plot_rotation_symmetry`,
  :func:`plot_jacobian_axes`.
* Notebook 02 (the Spotlight Resonance Method): :func:`plot_srm_curves`,
  :func:`plot_cap_fraction`, the widget :func:`plot_srm_explorer` (its data from
  :func:`explorer_data`, one of :data:`EXPLORER_ACTIVATIONS`) and
  :func:`plot_benchmark`.
* Notebook 03 (alignment follows the basis): :func:`plot_alignment_explorer`,
  :func:`plot_purity` and again :func:`plot_srm_curves`.
* Notebook 04 (quantised representations): :func:`plot_pppm_density`,
  :func:`draw_pppm_density`, :func:`plot_pppm_row`, :func:`plot_pppm_epoch`,
  the widget :func:`plot_pppm_scrubber`, :func:`plot_entropy_vs_mse`,
  :func:`plot_unit_diagnostics` (per-unit mean ± sd, stuck units) and
  :func:`plot_against_null` (a statistic on each run against its null;
  also notebook 03) and :func:`plot_graded_control` (a test statistic on
  positive controls blurred step by step, beside the trained values).

The numbers come from :mod:`isodl.core.activations`, :mod:`isodl.symmetry.srm`,
:mod:`isodl.symmetry.pppm` and :mod:`isodl.symmetry.representations`.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from isodl.core import activations
from isodl.core.plots import COLORS, figure, rotation_2d
from isodl.core.validate import check_bool, check_choice, check_float, check_int
from isodl.symmetry import pppm as _pppm
from isodl.symmetry import representations as _rep
from isodl.symmetry import srm

__all__ = [
    "PI_TICKS",
    "demo_cloud",
    "rotation_gaps",
    "plot_rotation_symmetry",
    "plot_jacobian_axes",
    "plot_srm_curves",
    "plot_cap_fraction",
    "EXPLORER_ACTIVATIONS",
    "explorer_data",
    "plot_srm_explorer",
    "plot_benchmark",
    "PPPM_CMAP",
    "draw_pppm_density",
    "plot_pppm_density",
    "plot_pppm_row",
    "plot_unit_diagnostics",
    "plot_against_null",
    "plot_graded_control",
    "plot_pppm_epoch",
    "plot_pppm_scrubber",
    "plot_alignment_explorer",
    "plot_entropy_vs_mse",
    "plot_purity",
]

#: Angle ticks at multiples of pi/2, with labels.
PI_TICKS = ([0, math.pi / 2, math.pi, 3 * math.pi / 2, 2 * math.pi], ["0", "π/2", "π", "3π/2", "2π"])


def _pi_axis(ax, label: str = "probe angle θ") -> None:
    ax.set_xticks(PI_TICKS[0], PI_TICKS[1])
    ax.set_xlim(0, 2 * math.pi)
    ax.set_xlabel(label)
    for t in PI_TICKS[0]:
        ax.axvline(t, color="#bbbbbb", lw=0.6)


# --------------------------------------------------------------------------- notebook 01


@functools.lru_cache(maxsize=4)
def _cloud(n_per_blob: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[1.0, 0.25], [-0.3, 0.8], [-0.55, -0.55]], dtype=torch.float64)
    widths = torch.tensor([0.12, 0.07, 0.1], dtype=torch.float64)
    blobs = [c + w * torch.randn(n_per_blob, 2, generator=gen, dtype=torch.float64) for c, w in zip(centres, widths)]
    return torch.cat(blobs)


def demo_cloud(n_per_blob: int = 60, seed: int = 0) -> torch.Tensor:
    """A small 2-D point cloud of three blobs at different angles and radii (``[3 n_per_blob, 2]``, float64).

    Lopsided on purpose, so a rotation is easy to see.
    """
    n_per_blob = check_int("n_per_blob", n_per_blob, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    return _cloud(n_per_blob, seed).clone()


def _activation_pair(activation: str):
    name = check_choice("activation", activation, ("tanh", "relu", "leaky_relu", "gelu"))
    elem = activations.scalar_activation(name, 0.1 if name == "leaky_relu" else 0.01)
    if name == "tanh":
        iso = activations.isotropic_tanh
    elif name == "gelu":
        iso = activations.isotropic_gelu
    elif name == "relu":
        iso = lambda x: activations.isotropic_relu(x, radius=0.5)  # noqa: E731
    else:
        iso = lambda x: activations.isotropic_leaky_relu(x, radius=0.5, negative_slope=0.1)  # noqa: E731
    return name, elem, iso


def rotation_gaps(angle: float, gain: float = 2.0, activation: str = "tanh") -> tuple[float, float]:
    """``(elementwise, isotropic)``: largest ``|f(R x) - R f(x)|`` over :func:`demo_cloud` scaled by ``gain``.

    The numbers behind :func:`plot_rotation_symmetry`.
    """
    angle = check_float("angle", angle)
    gain = check_float("gain", gain, minimum=0.0, strict_minimum=True)
    _, elem, iso = _activation_pair(activation)
    x = gain * _cloud(60, 0)
    rot = rotation_2d(angle)
    e = activations.equivariance_error(elem, rot, x)
    i = activations.equivariance_error(iso, rot, x)
    return e, i


def plot_rotation_symmetry(angle: float = 0.6, gain: float = 2.0, activation: str = "tanh") -> Figure:
    """Rotate a 2-D cloud and compare ``f(R x)`` with ``R f(x)`` for an elementwise and an isotropic map.

    Left: the cloud ``x`` (scaled by ``gain``) and the rotated cloud ``R x``.
    Middle: the elementwise map: ``sigma(R x)`` (dots) against ``R sigma(x)``
    (rings); they coincide only for quarter turns. Right: the isotropic map
    with the same radial function: the two always coincide. Colours follow
    each point through the maps. Used by notebook 01's widget.
    """
    angle = check_float("angle", angle)
    gain = check_float("gain", gain, minimum=0.0, strict_minimum=True)
    name, elem, iso = _activation_pair(activation)
    x = gain * _cloud(60, 0)
    rot = rotation_2d(angle)
    rx = x @ rot.T
    colour = np.arange(x.shape[0])
    gap_e, gap_i = rotation_gaps(angle, gain, name)
    fig, axes = figure(3, width=10.0, height=3.6)
    ax0, ax1, ax2 = axes
    ax0.scatter(x[:, 0], x[:, 1], c="lightgrey", s=10, label="x")
    ax0.scatter(rx[:, 0], rx[:, 1], c=colour, cmap="viridis", s=10, label="R x")
    ax0.set_title(f"input, turned by {math.degrees(angle):.0f}°")
    panels = (
        (ax1, elem, f"elementwise {name}", gap_e),
        (ax2, iso, f"isotropic {name}", gap_i),
    )
    for ax, fn, title, gap in panels:
        before = fn(rx)
        after = fn(x) @ rot.T
        ax.scatter(after[:, 0], after[:, 1], facecolors="none", edgecolors=COLORS[3], s=30, lw=0.8, label="R f(x)")
        ax.scatter(before[:, 0], before[:, 1], c=colour, cmap="viridis", s=10, label="f(R x)")
        ax.set_title(f"{title}\nlargest gap {gap:.3f}")
        if name == "tanh" and fn is elem:
            ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], color="grey", ls=":", lw=1, label="range of tanh")
        elif name == "tanh":
            ax.add_patch(Circle((0, 0), 1.0, fill=False, color="grey", ls=":", lw=1, label="unit circle"))
    lim_in = 1.15 * float(x.norm(dim=1).max())
    for ax in axes:
        ax.set_aspect("equal")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("coordinate 1")
        ax.set_ylabel("coordinate 2")
        ax.legend(loc="lower right", fontsize=7, handletextpad=0.2)
    ax0.set_xlim(-lim_in, lim_in)
    ax0.set_ylim(-lim_in, lim_in)
    for ax, fn in ((ax1, elem), (ax2, iso)):
        lim = 1.15 * max(float(fn(rx).abs().max()), float((fn(x) @ rot.T).abs().max()), 0.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    return fig


def plot_jacobian_axes(gain: float = 1.5, activation: str = "tanh", n_points: int = 12) -> Figure:
    """Eigenvectors of the Jacobian at points on a ring, for the elementwise and the isotropic map.

    At each of ``n_points`` points on the circle of radius ``gain`` a cross
    shows the Jacobian's two eigenvectors, each drawn with length
    proportional to its eigenvalue. Elementwise: the crosses stay locked to
    the coordinate axes wherever the point is. Isotropic: one arm points along
    the radius (eigenvalue ``sigma'(r)``), the other along the tangent
    (``sigma(r) / r``), so the cross turns with the point.
    """
    gain = check_float("gain", gain, minimum=0.0, strict_minimum=True)
    n_points = check_int("n_points", n_points, minimum=1)
    name = check_choice("activation", activation, ("tanh", "gelu"))
    phi = torch.arange(n_points, dtype=torch.float64) * (2 * math.pi / n_points) + 0.2
    pts = gain * torch.stack([torch.cos(phi), torch.sin(phi)], dim=1)
    jac_e = activations.elementwise_jacobian(pts, name)
    jac_i = activations.isotropic_jacobian(pts, name)
    fig, axes = figure(2, width=7.6, height=3.9)
    scale = 0.32 * gain
    for ax, jac, title in (
        (axes[0], jac_e, f"elementwise {name}: eigenvectors locked to the axes"),
        (axes[1], jac_i, f"isotropic {name}: eigenvectors turn with x"),
    ):
        ax.add_patch(Circle((0, 0), gain, fill=False, ls=":", color="grey", lw=0.8))
        for p, j in zip(pts, jac):
            lam, vec = torch.linalg.eigh(j)
            for k in range(2):
                d = scale * lam[k] * vec[:, k]
                colour = COLORS[0] if abs(float(vec[:, k] @ p)) / float(p.norm()) > 0.99 else COLORS[1]
                if jac is jac_e:
                    colour = COLORS[2] if abs(float(vec[0, k])) > 0.5 else COLORS[4]
                ax.plot([p[0] - d[0], p[0] + d[0]], [p[1] - d[1], p[1] + d[1]], color=colour, lw=2)
            ax.plot(p[0], p[1], "k.", ms=3)
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        lim = gain * 1.45
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("coordinate 1")
        ax.set_ylabel("coordinate 2")
    axes[0].plot([], [], color=COLORS[2], lw=2, label="along e1")
    axes[0].plot([], [], color=COLORS[4], lw=2, label="along e2")
    axes[1].plot([], [], color=COLORS[0], lw=2, label="radial")
    axes[1].plot([], [], color=COLORS[1], lw=2, label="tangential")
    for ax in axes:
        ax.legend(loc="upper right", fontsize=7)
    fig.suptitle(f"Jacobian eigenvectors on the circle |x| = {gain:g} (arm length ∝ eigenvalue)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- notebook 02


def plot_srm_curves(
    results: Mapping[str, srm.SRMResult],
    *,
    baseline: float | None = None,
    enrichment: bool = False,
    ncols: int = 2,
    title: str | None = None,
    log: bool = True,
    show_range: bool = True,
) -> Figure:
    """One panel per SRM result: the range over planes, their mean and mean ± one std.

    ``baseline`` draws the isotropic level (e.g. :func:`isodl.symmetry.srm.cap_fraction`);
    with ``enrichment=True`` the curves are divided by it (1 = isotropic, on a
    log scale unless ``log=False``: then a linear axis shared by every panel).
    ``show_range=False`` leaves out the band of the full range over planes
    (keeping the mean and mean ± std), which is easier to read when a few
    planes swing far. Dotted lines mark multiples of π/2 (where the basis vectors
    ``±b_i, ±b_j`` sit for an orthonormal basis, in the course's orientation).
    """
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty dict {name: SRMResult}")
    enrichment = check_bool("enrichment", enrichment)
    log = check_bool("log", log)
    show_range = check_bool("show_range", show_range)
    ncols = check_int("ncols", ncols, minimum=1)
    if enrichment and (baseline is None or baseline <= 0):
        raise ValueError("enrichment=True needs a positive baseline (the isotropic level C_n(epsilon))")
    n = len(results)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = figure(ncols, nrows, width=min(3.9 * ncols, 10.0), height=2.9 * nrows)
    axes = np.atleast_1d(axes).ravel()
    top = 0.0
    for ax, (name, res) in zip(axes, results.items()):
        if not isinstance(res, srm.SRMResult):
            raise TypeError(f"results[{name!r}] must be an SRMResult, got {type(res).__name__}")
        theta = res.angles.numpy()
        vals = res.values.numpy()
        if enrichment:
            vals = vals / baseline
        theta_c = np.append(theta, 2 * math.pi)
        vals_c = np.concatenate([vals, vals[:, :1]], axis=1)
        mean, std = vals_c.mean(0), vals_c.std(0)
        # Bands in solid light colours (not many thin translucent lines) keep the PNG small.
        if show_range:
            ax.fill_between(
                theta_c, vals_c.min(0), vals_c.max(0), color="#e3f1ea", lw=0, label="range over planes", zorder=1
            )
        top = max(top, float((mean + std).max()), float(vals_c.max()) if show_range else 0.0)
        ax.fill_between(theta_c, mean - std, mean + std, color="#b9d7ee", lw=0, label="mean ± std", zorder=2)
        ax.plot(theta_c, mean, color=COLORS[0], lw=1.6, label=f"mean of {vals.shape[0]} planes", zorder=3)
        if baseline is not None:
            level = 1.0 if enrichment else baseline
            ax.axhline(level, color=COLORS[3], ls="--", lw=1.2, label="isotropic level")
        if enrichment and log:
            ax.set_yscale("log")
            ax.set_ylim(1e-2, 30)  # zeros (no sample in the cone) fall off the bottom
            ax.set_yticks([0.01, 0.1, 1, 10], ["0.01", "0.1", "1", "10"])
            ax.set_ylabel("SRM / isotropic level")
        elif enrichment:
            ax.set_ylabel("SRM / isotropic level")
        else:
            ax.set_ylabel("signed SRM" if res.signed else "fraction in cone")
        ax.set_title(f"{name} (ε = {res.epsilon:g})", fontsize=10)
        _pi_axis(ax)
        if res.signed:
            ax.axhline(0, color="k", lw=0.6)
    if enrichment and not log:
        for ax in axes[:n]:
            ax.set_ylim(0.0, 1.05 * top)  # one linear scale for every panel
    axes[0].legend(loc="best", fontsize=7)
    for ax in axes[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_cap_fraction(dims=(2, 4, 8, 16, 64), epsilon: float | None = None) -> Figure:
    """The isotropic SRM level ``C_n(epsilon)`` against epsilon for several dimensions (log scale).

    ``epsilon`` marks one threshold with a vertical line.
    """
    dims = [check_int("dims", d, minimum=2) for d in dims]
    eps = np.linspace(-0.99, 0.99, 199)
    fig, ax = figure(width=5.2, height=3.4)
    for d in dims:
        ax.plot(eps, [srm.cap_fraction(d, float(e)) for e in eps], label=f"n = {d}")
    if epsilon is not None:
        epsilon = check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)
        ax.axvline(epsilon, color="k", ls=":", lw=1, label=f"ε = {epsilon:g}")
    ax.set_yscale("log")
    ax.set_ylim(1e-8, 1.5)
    ax.set_xlabel("ε (cone threshold; half-angle arccos ε)")
    ax.set_ylabel("C_n(ε): fraction of the sphere in a cone")
    ax.set_title("Isotropic baseline: the spherical-cap fraction")
    ax.legend(fontsize=8, loc="lower left")
    return fig


#: Activations offered by :func:`plot_srm_explorer`.
EXPLORER_ACTIVATIONS = ("identity", "tanh", "tanh(3x)", "relu", "leaky_relu", "isotropic tanh")


@functools.lru_cache(maxsize=8)
def _explorer_data(activation: str, n: int, n_samples: int, seed: int) -> torch.Tensor:
    z = torch.randn(n_samples, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if activation == "identity":
        return z
    if activation == "tanh":
        return torch.tanh(z)
    if activation == "tanh(3x)":
        return torch.tanh(3 * z)
    if activation == "relu":
        return torch.relu(z)
    if activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(z, 0.01)
    return activations.isotropic_tanh(z)


def explorer_data(activation: str = "tanh", n: int = 6, n_samples: int = 6000, seed: int = 0) -> torch.Tensor:
    """Gaussian samples ``N(0, I_n)`` pushed through ``activation`` (one of :data:`EXPLORER_ACTIVATIONS`); cached."""
    activation = check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    n = check_int("n", n, minimum=2)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    return _explorer_data(activation, n, n_samples, seed).clone()


def plot_srm_explorer(
    activation: str = "tanh",
    epsilon: float = 0.6,
    plane: str = "b1 → b2",
    theta: float = 0.8,
    signed: bool = False,
    n: int = 6,
) -> Figure:
    """Notebook 02's widget: the spotlight in one plane, and the SRM curve it traces.

    ``n``-dimensional Gaussian samples go through ``activation``; the plane is
    ``"b{i} → b{j}"`` of the standard basis (the probe starts at ``b_i``).
    Left: every normalised sample projected onto the plane (inside the unit
    disc). A sample is inside the cone around the probe at angle ``theta``
    exactly when its projection onto the probe direction is at least
    ``epsilon``: the points beyond the chord (highlighted). Right: the SRM
    curve of this plane, the mean over all planes and the isotropic level;
    the marker is the current ``theta``.
    """
    activation = check_choice("activation", activation, EXPLORER_ACTIVATIONS)
    epsilon = check_float("epsilon", epsilon, minimum=-1.0, maximum=1.0)
    theta = check_float("theta", theta)
    signed = check_bool("signed", signed)
    n = check_int("n", n, minimum=2)
    try:
        i, j = (int(p.strip().lstrip("b")) - 1 for p in str(plane).split("→"))
    except ValueError:
        raise ValueError(f"plane must look like 'b1 → b2', got {plane!r}") from None
    if not (0 <= i < n and 0 <= j < n and i != j):
        raise ValueError(f"plane {plane!r} needs two different basis vectors among b1..b{n}")
    x = explorer_data(activation, n)
    basis = torch.eye(n, dtype=torch.float64)
    res = srm.spotlight_resonance(x, basis, epsilon, 72, "perm", signed)
    row = res.pairs.tolist().index([i, j])
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-300)
    u, v = xn[:, i].numpy(), xn[:, j].numpy()
    s = np.array([math.cos(theta), math.sin(theta)])
    proj = u * s[0] + v * s[1]
    inside = proj >= epsilon
    inside_neg = -proj >= epsilon
    fig, (ax0, ax1) = figure(2, width=9.0, height=3.9)
    shown = slice(0, 1500)
    ax0.scatter(u[shown], v[shown], s=3, color="lightgrey", label="samples (projected)")
    ax0.scatter(u[shown][inside[shown]], v[shown][inside[shown]], s=5, color=COLORS[3], label="inside the cone")
    if signed:
        ax0.scatter(
            u[shown][inside_neg[shown]],
            v[shown][inside_neg[shown]],
            s=5,
            color=COLORS[0],
            label="inside the opposite cone (−1)",
        )
    ax0.add_patch(Circle((0, 0), 1.0, fill=False, color="k", lw=0.6))
    ax0.annotate("", xy=tuple(s), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.5})
    t = np.array([-s[1], s[0]])
    if abs(epsilon) < 1:
        half = math.sqrt(1 - epsilon**2)
        p0, p1 = epsilon * s - half * t, epsilon * s + half * t
        ax0.plot([p0[0], p1[0]], [p0[1], p1[1]], color=COLORS[3], lw=1.2, label="cone edge: projection = ε")
    ax0.text(1.04, 0.0, f"b{i + 1}", fontsize=9, va="center")
    ax0.text(0.0, 1.04, f"b{j + 1}", fontsize=9, ha="center")
    ax0.set_aspect("equal")
    ax0.set_xlim(-1.25, 1.25)
    ax0.set_ylim(-1.25, 1.25)
    ax0.set_xlabel(f"component along b{i + 1}")
    ax0.set_ylabel(f"component along b{j + 1}")
    ax0.set_title(f"{activation}: probe at θ = {theta:.2f}, {inside.mean():.3f} inside", fontsize=10)
    ax0.legend(loc="lower left", fontsize=6.5)
    theta_c = np.append(res.angles.numpy(), 2 * math.pi)

    def closed(vals):
        vals = vals.numpy()
        return np.append(vals, vals[0])

    ax1.plot(
        theta_c,
        closed(res.values.mean(0)),
        color=COLORS[0],
        lw=1,
        alpha=0.7,
        label=f"mean of {res.values.shape[0]} planes",
    )
    ax1.plot(theta_c, closed(res.values[row]), color=COLORS[3], lw=1.8, label=f"plane b{i + 1} → b{j + 1}")
    value_now = float(inside.mean() - (inside_neg.mean() if signed else 0.0))
    ax1.plot([theta % (2 * math.pi)], [value_now], "o", color=COLORS[3])
    if signed:
        ax1.axhline(0, color=COLORS[2], ls="--", lw=1, label="isotropic level (0)")
    else:
        ax1.axhline(srm.cap_fraction(n, epsilon), color=COLORS[2], ls="--", lw=1, label="isotropic level C_n(ε)")
    _pi_axis(ax1)
    ax1.set_ylabel("signed SRM" if signed else "fraction in cone")
    ax1.set_title(f"SRM, n = {n}, ε = {epsilon:g}", fontsize=10)
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=7)
    return fig


def plot_benchmark(seconds: Mapping[str, float], *, title: str = "SRM run time") -> Figure:
    """Horizontal bars of run times (log scale), each labelled with its value and its speed-up over the first."""
    if not isinstance(seconds, Mapping) or not seconds:
        raise TypeError("seconds must be a non-empty dict {method: seconds}")
    names = list(seconds)
    vals = [check_float(f"seconds[{k!r}]", seconds[k], minimum=0.0, strict_minimum=True) for k in names]
    fig, ax = figure(width=6.4, height=0.55 * len(names) + 1.2)
    y = np.arange(len(names))[::-1]
    ax.barh(y, vals, color=[COLORS[k % len(COLORS)] for k in range(len(names))])
    ax.set_yticks(y, names)
    ax.set_xscale("log")
    for yy, v in zip(y, vals):
        ax.text(
            v * 1.08,
            yy,
            f"{v:.3g} s ({vals[0] / v:.0f}× faster)" if v != vals[0] else f"{v:.3g} s",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(min(vals) / 2, max(vals) * 20)
    ax.set_xlabel("wall time (s, log scale)")
    ax.set_title(title, fontsize=10)
    return fig


#: Dark background, bright blobs: close to the look of the author's panels.
PPPM_CMAP = "magma"


def _density_arg(density) -> _pppm.PPPMDensity:
    if not isinstance(density, _pppm.PPPMDensity):
        raise TypeError(
            f"density must be an isodl.symmetry.pppm.PPPMDensity (from pppm.pppm_density), got {type(density).__name__}"
        )
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
    """One PPPM density image (see :func:`isodl.symmetry.pppm.pppm_density`)."""
    fig, ax = figure(1, 1, width=4.2, height=3.6)
    draw_pppm_density(ax, density, title=title)
    return fig


def plot_pppm_row(
    densities: Mapping[str, _pppm.PPPMDensity],
    *,
    title: str | None = None,
    ncols: int | None = None,
    caption: str | None = None,
    vmax: float | None = None,
    share: str = "all",
) -> Figure:
    """PPPM densities side by side on a shared colour scale, with a colour bar.

    ``share="all"``: every panel uses one colour range (``vmax``: by default the
    largest of the panels' 99.9 % quantiles) and the figure has one colour bar,
    so equal colours mean equal density everywhere. ``share="row"``: each row of
    ``ncols`` panels has its own range and colour bar (for rows that compare a
    latent with its null, whose densities differ in scale from the next row's);
    ``share="panel"``: one range and colour bar per panel. ``vmax`` is used only with ``"all"``. To share the axis range too, compute the densities
    with the same ``extent`` (:func:`isodl.symmetry.pppm.pppm_density`).
    ``caption`` (one sentence on what to look for) is printed under the panels.
    """
    if not isinstance(densities, Mapping) or not densities:
        raise TypeError("densities must be a non-empty dict {panel title: PPPMDensity}")
    share = check_choice("share", share, ("all", "row", "panel"))
    ds = {name: _density_arg(d) for name, d in densities.items()}
    n = len(ds)
    ncols = n if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    tops = [max(float(np.quantile(d.image.numpy(), 0.999)), 1e-12) if d.normalised else 1.0 for d in ds.values()]
    if share == "all":
        top = max(tops) if vmax is None else check_float("vmax", vmax, minimum=0.0, strict_minimum=True)
        row_top = [top] * nrows
    elif share == "row":
        row_top = [max(tops[r * ncols : (r + 1) * ncols]) for r in range(nrows)]
    extra = (0.35 if title else 0.0) + (0.35 if caption else 0.0)
    width = min((2.1 if share != "panel" else 2.7) * ncols + (1.0 if share == "all" else 1.4), 13.6)
    fig, axes = figure(ncols, nrows, width=width, height=2.3 * nrows + extra)
    axes = np.atleast_1d(axes).ravel()
    ims = []
    for k, (ax, (name, d)) in enumerate(zip(axes, ds.items())):
        top_k = tops[k] if share == "panel" else row_top[k // ncols]
        ims.append(draw_pppm_density(ax, d, title=str(name), colorbar=share == "panel", vmax=top_k))
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
        if k % ncols:
            ax.set_ylabel("")  # the axis names are the same in every panel: label the first column only
        if k < n - ncols:
            ax.set_xlabel("")
    for ax in axes[n:]:
        ax.axis("off")
    normalised = all(d.normalised for d in ds.values())
    label = "density / isotropic" if normalised else "density (max = 1)"
    if share == "all":
        cb = fig.colorbar(ims[-1], ax=list(axes[:n]), fraction=0.025, pad=0.02)
        cb.set_label(label + " (one scale)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    elif share == "row":
        for r in range(nrows):
            row = list(axes[r * ncols : min((r + 1) * ncols, n)])
            cb = fig.colorbar(ims[min((r + 1) * ncols, n) - 1], ax=row, fraction=0.04, pad=0.02)
            cb.set_label(label, fontsize=7)
            cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    if caption:
        chars = int(13 * fig.get_figwidth())  # about 13 characters per inch at 8 pt
        fig.supxlabel(textwrap.fill(caption, chars), fontsize=8, style="italic")
    return fig


def plot_unit_diagnostics(diagnostics: Mapping[str, _rep.UnitDiagnostics], *, title: str | None = None) -> Figure:
    """Per-unit mean ± sd of the latent coordinates, one panel per run; stuck units drawn in red.

    ``diagnostics`` maps a panel title to a :class:`isodl.symmetry.representations.UnitDiagnostics`.
    A unit whose bar stays on one side of 0 is stuck: every sample has the same sign there.
    """
    if not isinstance(diagnostics, Mapping) or not diagnostics:
        raise TypeError("diagnostics must be a non-empty dict {panel title: UnitDiagnostics}")
    for name, d in diagnostics.items():
        if not isinstance(d, _rep.UnitDiagnostics):
            raise TypeError(f"diagnostics[{name!r}] must be a UnitDiagnostics, got {type(d).__name__}")
    n = len(diagnostics)
    fig, axes = figure(n, 1, width=min(2.8 * n + 0.6, 13.6), height=2.9 + (0.3 if title else 0.0))
    axes = np.atleast_1d(axes).ravel()
    lo = min(float((d.mean - d.sd).min()) for d in diagnostics.values())
    hi = max(float((d.mean + d.sd).max()) for d in diagnostics.values())
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    for ax, (name, d) in zip(axes, diagnostics.items()):
        k = np.arange(d.mean.numel())
        colors = [COLORS[3] if bool(s) else COLORS[0] for s in d.stuck]
        for x, m, sd, c in zip(k, d.mean.tolist(), d.sd.tolist(), colors):
            ax.errorbar([x], [m], yerr=[sd], fmt="none", ecolor=c, elinewidth=2, capsize=3)
        ax.scatter(k, d.mean.numpy(), c=colors, s=20, zorder=3)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(k)
        ax.set_xlabel("unit (coordinate)")
        ax.set_title(f"{name}\n{d.n_stuck} of {d.mean.numel()} stuck (red)", fontsize=9)
    axes[0].set_ylabel("pre-activation: mean ± sd")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_against_null(
    groups: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str = "statistic on the null",
    ylabel: str = "statistic on the trained latent",
    title: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Figure:
    """Each run's statistic (y) against the same statistic on its null (x), one colour per group, with y = x.

    ``groups`` maps a label to ``(null values, trained values)`` (one pair per
    run). Points on the diagonal: the null explains the statistic. Below it
    (for an entropy): more clustered than the null.
    """
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError("groups must be a non-empty dict {label: (null values, trained values)}")
    fig, ax = figure(1, 1, width=5.2, height=4.2)
    allv = []
    for k, (name, (xs, ys)) in enumerate(groups.items()):
        x = np.asarray(xs, dtype=float)
        y = np.asarray(ys, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"groups[{name!r}]: null and trained values must have the same length")
        ok = np.isfinite(x) & np.isfinite(y)
        marker = "os^vDP*X"[k % 8]
        ax.scatter(
            x[ok], y[ok], color=COLORS[k % len(COLORS)], marker=marker, s=26, alpha=0.85, label=f"{name} ({ok.sum()})"
        )
        allv += list(x[ok]) + list(y[ok])
    if limits is None:
        lo, hi = (min(allv), max(allv)) if allv else (0.0, 1.0)
        pad = 0.04 * (hi - lo if hi > lo else 1.0)
        limits = (lo - pad, hi + pad)
    ax.plot(limits, limits, color="0.4", lw=1, ls="--", label="y = x (null explains it)")
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
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

    ``snapshots`` maps epochs to latents (:attr:`isodl.symmetry.autoencoder.AERun.snapshots`);
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
        raise ValueError(
            f"activation must be one of {list(runs) if isinstance(runs, Mapping) else []}, got {activation!r}"
        )
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
    show_pppm: bool = True,
) -> Figure:
    """SRM (enrichment of the mean curve) and PPPM (at ``pppm_epsilon``) of one model's latent in one basis, side by side.

    ``latents`` maps a model name to its bottleneck ``[N, n]``; ``bases`` maps a
    basis name to a ``[K, n]`` basis. The title gives the four-fold harmonic
    :func:`isodl.symmetry.representations.srm_harmonic` of the mean curve.
    ``show_pppm=False`` draws the SRM panel alone (for notebook 03, which comes
    before PPPM is introduced).
    """
    show_pppm = check_bool("show_pppm", show_pppm)
    if model not in latents:
        raise ValueError(f"model must be one of {list(latents)}, got {model!r}")
    if basis not in bases:
        raise ValueError(f"basis must be one of {list(bases)}, got {basis!r}")
    eps = check_float("epsilon", epsilon, minimum=-1.0, maximum=0.99)
    z = latents[model]
    b = bases[basis]
    res = srm.spotlight_resonance(z, b, eps, n_angles)
    level = srm.cap_fraction(z.shape[1], eps)
    mean = res.mean()
    h4 = _rep.srm_harmonic(mean, res.angles)
    if show_pppm:
        fig, (ax0, ax1) = figure(2, 1, width=8.6, height=3.5)
    else:
        fig, ax0 = figure(1, 1, width=5.4, height=3.5)
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
    if show_pppm:
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


def plot_purity(
    groups: Mapping[str, Sequence[float]], chance: float, *, title: str = "Class purity of the top samples"
) -> Figure:
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


def plot_graded_control(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    trained: Mapping[str, float] | None = None,
    threshold: float | None = None,
    xlabel: str = "noise added to the clusters (fraction of each unit's sd)",
    ylabel: str = "statistic",
    title: str | None = None,
) -> Figure:
    """A statistic on graded positive controls (one line per group) beside each group's trained value.

    ``curves`` maps a label to ``(noise levels, statistic)``: the same
    statistic on a latent with real clusters, blurred more and more. ``trained``
    (optional) maps the same labels to the trained latent's value, drawn as a
    dashed line in the group's colour. ``threshold`` (optional) draws the level
    below which the test calls a cloud clustered, so the crossing of each
    curve is its detection limit.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty dict {label: (noise levels, values)}")
    if threshold is not None:
        threshold = check_float("threshold", threshold)
    fig, ax = figure(1, 1, width=6.2, height=3.6)
    for k, (name, (xs, ys)) in enumerate(curves.items()):
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"curves[{name!r}]: noise levels and values must be 1-D of the same length")
        color = COLORS[k % len(COLORS)]
        ax.plot(x, y, marker="os^vDP*X"[k % 8], color=color, lw=1.4, ms=4, label=f"{name}: control")
        if trained is not None and name in trained and math.isfinite(float(trained[name])):
            ax.axhline(float(trained[name]), color=color, lw=1, ls="--", alpha=0.8)
    if threshold is not None:
        ax.axhline(threshold, color="k", lw=1.2, ls=":", label=f"detection threshold ({threshold:g})")
    if trained:
        ax.plot([], [], color="0.4", ls="--", lw=1, label="trained latent (same colour)")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig
