"""Every notebook: the shared matplotlib style and shared figures (histories, image grids, the notebook 00 ring).

The course's shared matplotlib style (:data:`STYLE`, :data:`COLORS`, applied by
:func:`use_style`), the figure factory :func:`figure` every part's ``plots``
module builds on, and the shared figures of notebook 00 (:func:`plot_history`,
:func:`image_grid`, :func:`signal_grid`, :func:`plot_elementwise_ring`).

Figures are kept light (PNG at a modest dpi) so committed notebooks stay small.
Every plotting function here is *pure*: it takes data and returns a
``matplotlib.figure.Figure`` without showing it, so widgets and tests can call
it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from isodl.core.validate import check_int, check_tensor

__all__ = [
    "label_axes",
    "COLORS",
    "STYLE",
    "use_style",
    "figure",
    "plot_history",
    "image_grid",
    "signal_grid",
    "rotation_2d",
    "elementwise_rotation_gap",
    "plot_elementwise_ring",
]

#: Colour cycle used throughout the course (colour-blind friendly).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.dpi": 80,
    "savefig.dpi": 80,
    "figure.figsize": (6.0, 3.6),
    "figure.autolayout": False,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
}


def use_style() -> None:
    """Apply the course style to matplotlib and, inside IPython, PNG inline output."""
    matplotlib.rcParams.update(STYLE)
    try:  # keep inline figures as light PNGs (not retina, not SVG)
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None and "IPKernelApp" in ip.config:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("png")
    except Exception:  # pragma: no cover - plain Python has no inline backend
        pass


def figure(ncols: int = 1, nrows: int = 1, *, width: float | None = None, height: float | None = None, **kwargs):
    """Create a figure and axes in the course style, sized per panel."""
    ncols = check_int("ncols", ncols, minimum=1)
    nrows = check_int("nrows", nrows, minimum=1)
    w = width if width is not None else min(3.4 * ncols, 10.0)
    h = height if height is not None else 2.8 * nrows
    with matplotlib.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, **kwargs)
    plt.close(fig)  # pure: the caller decides whether to show it
    if nrows == 1 and ncols == 1:
        return fig, axes[0, 0]
    return fig, axes.ravel()


def label_axes(ax, *, xlabel: str = "", ylabel: str = "", title: str = "", ylim=None, legend: bool = False):
    """Label one axes in the course's way: axis labels, title, optional y-limits and legend; returns ``ax``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if legend:
        ax.legend()
    return ax


def plot_history(
    history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None, *, title: str = "Training"
) -> Figure:
    """Plot training curves from :class:`isodl.core.train.History` or its ``to_dict()``.

    Losses share the left panel (log scale); accuracies, if any, go on the right.
    """
    data = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    if "epoch" not in data:
        raise ValueError("history must contain an 'epoch' list (pass isodl.core.train.History or its to_dict())")
    epochs = data["epoch"]
    keys = list(keys) if keys is not None else [k for k in data if k != "epoch" and len(data[k])]
    unknown = [k for k in keys if k not in data]
    if unknown:
        raise ValueError(f"keys {unknown} not in history; available: {[k for k in data if k != 'epoch']}")
    loss_keys = [k for k in keys if "loss" in k]
    acc_keys = [k for k in keys if "acc" in k]
    ncols = 2 if acc_keys else 1
    fig, axes = figure(ncols, width=3.6 * ncols + 0.6, height=2.9)
    ax_loss = axes[0] if ncols == 2 else axes
    for k in loss_keys:
        ax_loss.plot(epochs[: len(data[k])], data[k], label=k.replace("_", " "))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    if loss_keys and min(min(data[k]) for k in loss_keys) > 0:
        ax_loss.set_yscale("log")
    ax_loss.set_title(title)
    ax_loss.legend()
    if acc_keys:
        ax_acc = axes[1]
        for k in acc_keys:
            ax_acc.plot(epochs[: len(data[k])], data[k], label=k.replace("_", " "))
        label_axes(ax_acc, xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02), legend=True)
    return fig


def image_grid(images, labels=None, *, ncols: int = 8, title: str | None = None, cmap: str = "gray_r") -> Figure:
    """Show a batch of images [N, H, W] (or [N, C, H, W] with C = 3) in a grid with their labels."""
    images = check_tensor("images", images, ndim=(3, 4))
    ncols = check_int("ncols", ncols, minimum=1)
    n = images.shape[0]
    if n == 0:
        raise ValueError("images must contain at least one image")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one entry per image ({n}), got {len(labels)}")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = figure(ncols, nrows, width=1.0 * ncols + 0.2, height=1.1 * nrows + (0.3 if title else 0))
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu().numpy()
        if img.ndim == 3:
            img = np.clip(np.transpose(img, (1, 2, 0)), 0, 1)
            ax.imshow(img)
        else:
            ax.imshow(img, cmap=cmap)
        if labels is not None:
            ax.set_title(str(int(labels[i]) if hasattr(labels[i], "__int__") else labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def signal_grid(signals, labels=None, *, t=None, ncols: int = 5, title: str | None = None) -> Figure:
    """Plot 1-D signals [N, L] (e.g. MNIST-1D) as small line plots with their labels."""
    signals = check_tensor("signals", signals, ndim=2)
    ncols = check_int("ncols", ncols, minimum=1)
    n, length = signals.shape
    if n == 0:
        raise ValueError("signals must contain at least one signal")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one entry per signal ({n}), got {len(labels)}")
    xs = np.arange(length) if t is None else np.asarray(t)
    if xs.shape != (length,):
        raise ValueError(f"t must have one position per sample point ({length}), got shape {xs.shape}")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = figure(ncols, nrows, width=1.6 * ncols, height=1.3 * nrows + (0.3 if title else 0), sharey=True)
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        ax.plot(xs, signals[i].detach().cpu().numpy(), color=COLORS[0], lw=1.2)
        ax.set_xticks([])
        if labels is not None:
            ax.set_title(f"label {int(labels[i])}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def rotation_2d(angle: float, dtype=torch.float64) -> torch.Tensor:
    """The 2 x 2 rotation matrix by ``angle`` radians (counter-clockwise)."""
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=dtype)


def elementwise_rotation_gap(gain: float, angle: float, n_points: int = 360, activation: str = "tanh") -> float:
    """How far an elementwise activation is from commuting with a rotation.

    Takes a ring of 2-D points of radius ``gain`` and returns
    ``max |sigma(R x) - R sigma(x)|`` over the ring, where sigma acts on each
    coordinate. It is zero (to rounding) for quarter turns, which only permute
    and flip coordinates, and positive for other angles: the function singles
    out the standard axes. Used by notebook 00's widget; notebook 01 derives it.
    """
    fn = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}.get(activation)
    if fn is None:
        raise ValueError(f"unknown activation {activation!r}; expected one of ['tanh', 'relu', 'sigmoid']")
    n_points = check_int("n_points", n_points, minimum=3)
    phi = torch.linspace(0, 2 * np.pi, n_points + 1, dtype=torch.float64)[:-1]
    ring = gain * torch.stack([torch.cos(phi), torch.sin(phi)], dim=1)
    rot = rotation_2d(angle)
    return float((fn(ring @ rot.T) - fn(ring) @ rot.T).norm(dim=1).max())


def plot_elementwise_ring(gain: float = 2.0, angle: float = 0.5, activation: str = "tanh") -> Figure:
    """Left: a ring of inputs and a marked point, before and after rotating by ``angle``.

    Right: the elementwise activation of the rotated ring, next to the
    rotated activation of the original ring. If the activation did not care
    about the axes the two would coincide.
    """
    if not np.isfinite(gain) or gain <= 0:
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    fn = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}.get(activation)
    if fn is None:
        raise ValueError(f"unknown activation {activation!r}; expected one of ['tanh', 'relu', 'sigmoid']")
    phi = torch.linspace(0, 2 * np.pi, 241, dtype=torch.float64)
    ring = gain * torch.stack([torch.cos(phi), torch.sin(phi)], dim=1)
    rot = rotation_2d(angle)
    rotated = ring @ rot.T
    act_then_rot = fn(ring) @ rot.T
    rot_then_act = fn(rotated)
    gap = elementwise_rotation_gap(gain, angle, activation=activation)
    fig, (ax0, ax1) = figure(2, width=7.4, height=3.5)
    colour = phi.numpy()
    ax0.plot(ring[:, 0], ring[:, 1], color=COLORS[7], lw=0.8, ls=":", label="input ring x")
    ax0.scatter(rotated[:, 0], rotated[:, 1], c=colour, cmap="twilight", s=6, label="rotated inputs Rx")
    ax0.set_title(f"inputs: radius {gain:.2g}, turned {np.degrees(angle):.0f} deg")
    ax1.scatter(rot_then_act[:, 0], rot_then_act[:, 1], c=colour, cmap="twilight", s=6, label=f"{activation}(Rx)")
    ax1.plot(act_then_rot[:, 0], act_then_rot[:, 1], color=COLORS[3], ls="--", lw=1.2, label=f"R {activation}(x)")
    ax1.set_title(f"outputs: largest gap {gap:.3f}")
    for ax in (ax0, ax1):
        ax.set_aspect("equal")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("coordinate 1")
        ax.set_ylabel("coordinate 2")
        ax.legend(loc="lower left", fontsize=7)
    lim = max(1.15, float(act_then_rot.abs().max()) * 1.15)
    ax1.set_xlim(-lim, lim)
    ax1.set_ylim(-lim, lim)
    return fig
