"""Notebooks 11-13 (11, 12, 13): the plain-SGD comparison of normalisation methods and the batch-size experiment.

Notebook 12's experiments: normalisers against the affine-like layer, under plain SGD.

Notebook 12 (``12_normalisation_experiments.ipynb``) uses everything here (notebook 11 its
data split, :func:`build_mlp` and :func:`train_run` for the initialisation pitfall):

* :func:`build_mlp` -- the same MLP with ``"none"``, ``"batchnorm"``,
  ``"layernorm"``, ``"rmsnorm"``, ``"l2"`` or ``"affine_like"`` layers, plus
  the optimiser-side control ``"rescaled_grad"`` (:class:`RescaledGradLinear`);
* :func:`train_run` -- one run of plain SGD (no momentum, no weight decay, no
  clipping, no schedule) for a fixed number of *steps*, on a
  train/validation/test :class:`Split` (:func:`split_data`); the steps are
  :func:`isodl.core.train.train_steps`, the course's one training loop, and
  the accuracy is :func:`isodl.core.train.accuracy`;
* :func:`compare_methods` and :func:`summarise` -- learning rate tuned per
  method on a grid (chosen by *validation* accuracy), several seeds, mean and
  spread of the test accuracy at the chosen rate;
* :func:`batch_size_sweep` and :func:`batch_size_slopes` -- the batch-size test
  at a fixed sample budget with the rate scaled with ``B`` (or with fixed
  steps or epochs, to show the confounds); :func:`slope_differences`,
  :func:`paired_difference` and :func:`mean_ci` -- paired statistics over seeds;
* :func:`effective_step_ratios` -- per-sample ``|dz| / (lr |dL/dz|)`` at the
  first layer after one training step (the histogram test);
* :func:`scale_ablation` -- each method at its chosen rate on inputs scaled
  by ``c``; :func:`activation_spread` and :func:`affine_inputs` -- what the
  affine layers see and output;
* :func:`best_lrs`, :func:`batch_size_table` and :func:`markdown_table` --
  tables of the result rows.

The layers come from :mod:`isodl.normalisation.layers`; the figures of these
results are drawn by :mod:`isodl.normalisation.plots`.

All results are plain lists of dicts, so the notebook can print, plot and
assert on them. A run that diverges stops at its first non-finite loss; its
row carries ``"diverged"``: the :class:`isodl.core.train.Divergence` (epoch,
batch, loss), or ``None`` for a run that finished. Randomness comes only from
explicit generators seeded by ``seed`` (the model's initial weights, the
mini-batch order); the global random state is not touched. Everything here is the course's experiment design; the paper's
own protocol, datasets and numbers are not used.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isodl.core.init import linear
from isodl.core.train import accuracy, train_steps
from isodl.core.validate import check_choice, check_float, check_generator, check_int, check_tensor, check_widths
from isodl.normalisation.layers import AffineLike, L2Norm, RMSNorm

__all__ = [
    "METHODS",
    "CONTROL",
    "ALL_METHODS",
    "LABELS",
    "RescaledGradLinear",
    "build_mlp",
    "first_affine",
    "Split",
    "split_data",
    "steps_for_epochs",
    "train_sgd",
    "train_run",
    "compare_methods",
    "summarise",
    "best_lrs",
    "markdown_table",
    "batch_size_sweep",
    "batch_size_table",
    "batch_size_slopes",
    "paired_difference",
    "mean_ci",
    "slope_differences",
    "is_blown_up",
    "rescore",
    "describe_difference",
    "L2_NO_BIAS",
    "LR_CENTRES",
    "PAPER_RESULTS",
    "lr_grid",
    "load_paper_results",
    "COURSE_RESULTS",
    "results_path",
    "holm_adjusted",
    "tune_lr",
    "batch_tuned_sweep",
    "effective_step_ratios",
    "activation_spread",
    "affine_inputs",
    "scale_ablation",
]

#: The comparison set of notebook 12.
METHODS = ("none", "batchnorm", "layernorm", "rmsnorm", "l2", "affine_like")
#: The optimiser-side control: plain affine forward, each sample's weight gradient divided by |x|^2 + 1.
CONTROL = "rescaled_grad"
#: L2 pre-normalisation with bias-free linear maps: factor exactly 1, and the norm is still discarded.
L2_NO_BIAS = "l2_nobias"
ALL_METHODS = METHODS + (CONTROL, L2_NO_BIAS)
#: Names for tables and legends.
LABELS = {
    "none": "none (plain affine)",
    "batchnorm": "BatchNorm",
    "layernorm": "LayerNorm",
    "rmsnorm": "RMSNorm",
    "l2": "L2 pre-norm",
    "affine_like": "affine-like",
    "rescaled_grad": "rescaled-gradient control",
    "l2_nobias": "L2 pre-norm, no bias",
}


#: The centre of each method's learning-rate grid (near its optimum at course scale); :func:`lr_grid` spreads by 4.
LR_CENTRES = {
    "none": 0.4,
    "batchnorm": 0.2,
    "layernorm": 0.2,
    "rmsnorm": 0.2,
    "l2": 2.0,
    "l2_nobias": 8.0,
    "affine_like": 8.0,
    "rescaled_grad": 8.0,
}

#: Where ``scripts/normalisation_experiments.py`` writes its committed paper-scale results (notebook 12 reads them).
PAPER_RESULTS = Path(__file__).resolve().parents[3] / "scripts" / "results" / "normalisation_experiments_paper.json"
#: The same script's course-scale results (``--scale course``): notebook 12 reads its learning-rate tuning.
COURSE_RESULTS = PAPER_RESULTS.with_name("normalisation_experiments_course.json")


def lr_grid(method: str, points: int) -> list[float]:
    """A factor-4 log grid of ``points`` learning rates around :data:`LR_CENTRES` ``[method]`` (lower side first)."""
    method = check_choice("method", method, ALL_METHODS)
    points = check_int("points", points, minimum=1)
    lo = -(points // 2)
    return [LR_CENTRES[method] * 4.0 ** (lo + i) for i in range(points)]


def results_path(scale: str) -> Path:
    """The committed results file of ``scripts/normalisation_experiments.py`` for ``scale`` ("course" or "paper").

    Notebook 12 reads the file of the scale it runs at (:data:`COURSE_RESULTS` or :data:`PAPER_RESULTS`).
    """
    scale = check_choice("scale", scale, ("course", "paper"))
    return COURSE_RESULTS if scale == "course" else PAPER_RESULTS


def load_paper_results(path=None) -> dict | None:
    """The committed results of ``scripts/normalisation_experiments.py`` (``None`` if the file is missing).

    ``path`` defaults to :data:`PAPER_RESULTS`. Notebook 12 plots them beside its own small live run.
    """
    import json

    p = PAPER_RESULTS if path is None else Path(path)
    if not p.exists():
        return None
    return json.loads(p.read_text())


# --------------------------------------------------------------------------- the control layer


class _RescaledLinearFunction(torch.autograd.Function):
    """``x W^T + b`` whose weight and bias gradients divide each sample's term by ``|x|^2 + 1``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_out @ weight  # the true gradient flows on to earlier layers
        x2 = x.reshape(-1, x.shape[-1])
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        scaled = g2 / ((x2 * x2).sum(dim=1, keepdim=True) + 1.0)
        return grad_x, scaled.T @ x2, scaled.sum(dim=0)


class RescaledGradLinear(nn.Linear):
    """A plain ``nn.Linear`` forward with an optimiser-side correction in its backward pass.

    The gradient sent to the weights and bias is ``sum_n g_n x~_n^T / |x~_n|^2``
    instead of ``sum_n g_n x~_n^T``: each sample's contribution is divided by
    its own divergence factor ``|x_n|^2 + 1``. At batch size 1 one SGD step
    then moves ``z`` by exactly ``-lr g`` (the ideal step), like the
    affine-like layer, while the function the network computes is the plain
    MLP's. The gradient passed back to the input is the true one. This is the
    course's control that separates "update geometry" from "architecture"
    (notebook 12); it always has a bias. ``device`` and ``dtype`` are passed
    to ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, *, device=None, dtype=None):
        super().__init__(
            check_int("in_features", in_features, minimum=1),
            check_int("out_features", out_features, minimum=1),
            device=device,
            dtype=dtype,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor("x", x, floating=True)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have {self.in_features} features in its last dimension, got shape {tuple(x.shape)}"
            )
        return _RescaledLinearFunction.apply(x, self.weight, self.bias)


# --------------------------------------------------------------------------- models


def _check_widths(widths) -> list[int]:
    return check_widths(widths, example="[40, 128, 10]")


def build_mlp(
    method: str,
    widths: Sequence[int] = (40, 128, 128, 128, 10),
    *,
    init: str | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """The comparison MLP, ``widths = [d_in, h_1, ..., d_out]``, ReLU between layers.

    ``method`` (placement in brackets):

    * ``"none"``: ``Linear -> ReLU -> ... -> Linear`` (PyTorch's default init);
    * ``"batchnorm"``, ``"layernorm"``, ``"rmsnorm"``: ``Linear -> Norm -> ReLU``
      in every hidden layer, the norms with their learnable gain (and shift,
      except RMSNorm), as commonly used;
    * ``"l2"``: ``L2Norm -> Linear`` for every layer (the normaliser the
      derivation asks for, directly before each affine map, including the
      first); weights ``N(0, 1)``, bias 0, like the affine-like layer;
    * ``"affine_like"``: every Linear replaced by :class:`~isodl.normalisation.layers.AffineLike`
      (output layer included, no other normaliser); ``init`` ``"normal"``
      (default, ``N(0, 1)``, bias 0) or ``"linear"`` (nn.Linear's, the pitfall);
    * ``"rescaled_grad"``: every Linear replaced by :class:`RescaledGradLinear`;
    * ``"l2_nobias"``: like ``"l2"`` but every Linear without a bias, so the
      factor is exactly 1 (not 2) while the input's norm is still discarded.

    ``generator``: draw the initial weights from this ``torch.Generator``
    (layer by layer, the same distributions and order as without it, so a
    generator seeded with ``s`` reproduces ``torch.manual_seed(s)``); ``None``
    draws them from the global random state as PyTorch does. Normalisers
    start at gain 1 and shift 0 either way.
    """
    method = check_choice("method", method, ALL_METHODS)
    widths = _check_widths(widths)
    generator = check_generator(generator)
    if init is not None:
        if method != "affine_like":
            raise ValueError(f"init can only be chosen for method='affine_like', not {method!r}")
        init = check_choice("init", init, ("normal", "linear"))
    layers: list[nn.Module] = []
    n_layers = len(widths) - 1
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        hidden = i < n_layers - 1
        if method == "affine_like":
            layers.append(AffineLike(a, b, init=init or "normal", generator=generator))
        elif method == "rescaled_grad":
            layers.append(linear(a, b, generator=generator, cls=RescaledGradLinear))
        elif method in ("l2", "l2_nobias"):
            with_bias = method == "l2"
            dense = linear(a, b, bias=with_bias, generator=generator)  # drawn, then replaced: nn.Linear's stream
            nn.init.normal_(dense.weight, 0.0, 1.0, generator=generator)
            if with_bias:
                nn.init.zeros_(dense.bias)
            layers += [L2Norm(), dense]
        else:
            layers.append(linear(a, b, generator=generator))
        if hidden:
            if method == "batchnorm":
                layers.append(nn.BatchNorm1d(b))
            elif method == "layernorm":
                layers.append(nn.LayerNorm(b))
            elif method == "rmsnorm":
                layers.append(RMSNorm(b))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def first_affine(model: nn.Module) -> nn.Module:
    """The first ``nn.Linear`` or :class:`~isodl.normalisation.layers.AffineLike` module of ``model`` (its input is the data)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for module in model.modules():
        if isinstance(module, (nn.Linear, AffineLike)):
            return module
    raise ValueError("model has no nn.Linear or AffineLike layer")


# --------------------------------------------------------------------------- data and training


class _threads:
    """Run a block with ``n`` PyTorch CPU threads (``None``: leave the setting alone), then restore it."""

    def __init__(self, n: int | None):
        self.n = None if n is None else check_int("threads", n, minimum=1)

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)
        return False


@dataclass
class Split:
    """Train, validation and test tensors; the validation part picks learning rates, the test part is reported."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def scaled(self, factor: float) -> Split:
        """The same split with every input multiplied by ``factor`` (the input-scale ablation)."""
        factor = check_float("factor", factor, minimum=0.0, strict_minimum=True)
        return Split(
            self.x_train * factor, self.y_train, self.x_val * factor, self.y_val, self.x_test * factor, self.y_test
        )

    def __repr__(self) -> str:
        return (
            f"Split(train={list(self.x_train.shape)}, val={list(self.x_val.shape)}, test={list(self.x_test.shape)}, "
            f"dtype={self.x_train.dtype})"
        )


def split_data(data, n_val: int = 500, seed: int = 0) -> Split:
    """Hold out ``n_val`` training samples (chosen with ``seed``) as a validation set; the test set is kept as is.

    ``data`` is an :class:`isodl.core.data.Dataset` (for example ``data.mnist1d()``).
    """
    if not hasattr(data, "x_train"):
        raise TypeError(f"data must be an isodl.core.data.Dataset, got {type(data).__name__}")
    n = data.x_train.shape[0]
    n_val = check_int("n_val", n_val, minimum=1, maximum=n - 1)
    seed = check_int("seed", seed, minimum=0)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return Split(
        data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val], data.x_test, data.y_test
    )


def steps_for_epochs(n_train: int, batch_size: int, epochs: int) -> int:
    """How many optimiser steps ``epochs`` passes over ``n_train`` samples take at ``batch_size`` (last batch kept)."""
    n_train = check_int("n_train", n_train, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    epochs = check_int("epochs", epochs, minimum=0)
    return epochs * math.ceil(n_train / batch_size)


def train_sgd(model: nn.Module, x, y, *, lr: float, batch_size: int, steps: int, seed: int = 0) -> dict:
    """Plain SGD (``p <- p - lr * grad`` on the mean cross-entropy) for ``steps`` mini-batches.

    The steps are :func:`isodl.core.train.train_steps`: batches walk through
    random permutations of the training set drawn from a generator seeded
    with ``seed``, one epoch after another, and the budget may end mid-epoch.
    With BatchNorm a last batch of a single sample is left out (it is not a
    step). Training stops at the first non-finite loss, before that step.

    Returns ``{"steps", "train_loss", "losses", "diverged"}``: the steps taken,
    the mean training loss of the last 50 of them, every step's loss, and
    ``None`` or the :class:`~isodl.core.train.Divergence` at which training
    stopped. The model is trained in place.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_tensor("x", x, ndim=2, floating=True)
    y = check_tensor("y", y, ndim=1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    steps = check_int("steps", steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and batch_size == 1:
        raise ValueError("batch_size must be >= 2 for a model with BatchNorm (it normalises over the batch)")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.0)
    gen = torch.Generator().manual_seed(seed)
    record = train_steps(model, opt, x, y, steps=steps, batch_size=batch_size, generator=gen)
    recent = record.losses[-50:]
    return {
        "steps": record.steps,
        "train_loss": float(np.mean(recent)) if recent else float("nan"),
        "losses": record.losses,
        "diverged": record.diverged,
    }


def train_run(
    method: str,
    split: Split,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    seed: int = 0,
    widths: Sequence[int] | None = None,
    init: str | None = None,
    return_model: bool = False,
    threads: int | None = 1,
) -> dict:
    """Build ``method``'s MLP from a generator seeded with ``seed``, train it with :func:`train_sgd`, evaluate it.

    Returns one result row: ``method, lr, batch_size, steps, seed, val_accuracy,
    test_accuracy, train_loss, diverged, seconds`` (and ``model`` when
    ``return_model``). ``diverged`` is ``None`` or the
    :class:`~isodl.core.train.Divergence` at which training stopped (truthy,
    so ``sum(bool(r["diverged"]) for r in rows)`` counts diverged runs); a
    diverged run scores chance accuracy (1 / number of classes: it has learnt
    nothing), although its model keeps the parameters of its last finite
    step. ``blown_up`` (:func:`is_blown_up`) also flags runs that stayed
    finite but ended with a training loss above chance level. ``steps`` is the
    budget asked for. The default widths are ``[d_in, 128, 128, 128,
    n_classes]``. The initial weights come from
    ``build_mlp(..., generator=torch.Generator().manual_seed(seed))`` and the
    batches from :func:`train_sgd`'s own generator: the global random state is
    not used.

    ``threads``: CPU threads while this run trains (default 1, restored after).
    These models are far too small to gain from intra-op parallelism, and a
    single thread does not slow to a crawl when other processes keep the
    cores busy (two threads can be many times slower then). ``None`` keeps
    the current setting, e.g. for a GPU or a large model.
    """
    if not isinstance(split, Split):
        raise TypeError(
            f"split must be an isodl.normalisation.experiments.Split (from split_data), got {type(split).__name__}"
        )
    seed = check_int("seed", seed, minimum=0)
    widths = (
        [split.x_train.shape[1], 128, 128, 128, int(split.y_train.max()) + 1]
        if widths is None
        else _check_widths(widths)
    )
    if widths[0] != split.x_train.shape[1]:
        raise ValueError(f"widths[0] must be the input size {split.x_train.shape[1]}, got {widths[0]}")
    start = time.perf_counter()
    with _threads(threads):
        model = build_mlp(method, widths, init=init, generator=torch.Generator().manual_seed(seed))
        model = model.to(split.x_train.dtype)
        trained = train_sgd(model, split.x_train, split.y_train, lr=lr, batch_size=batch_size, steps=steps, seed=seed)
        diverged = trained["diverged"] is not None
        chance = 1.0 / (int(split.y_train.max()) + 1)
        val_acc = chance if diverged else accuracy(model, split.x_val, split.y_val)
        test_acc = chance if diverged else accuracy(model, split.x_test, split.y_test)
    row = {
        "method": check_choice("method", method, ALL_METHODS),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "steps": int(steps),
        "seed": seed,
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "train_loss": trained["train_loss"],
        "diverged": trained["diverged"],
        "seconds": time.perf_counter() - start,
    }
    row["blown_up"] = is_blown_up(row, int(split.y_train.max()) + 1)
    if return_model:
        row["model"] = model
    return row


# --------------------------------------------------------------------------- the method comparison


def _check_methods(methods) -> list[str]:
    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
        raise TypeError(
            f"methods must be a non-empty sequence of method names from {list(ALL_METHODS)}, got {methods!r}"
        )
    return [check_choice("method", m, ALL_METHODS) for m in methods]


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise TypeError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    return [check_int(f"seeds[{i}]", s, minimum=0) for i, s in enumerate(seeds)]


def _check_lrs(lrs, seeds) -> tuple[list[str], list[int]]:
    """Check ``lrs`` (``{method: lr}``) and ``seeds``; return the methods and the seeds."""
    if not isinstance(lrs, Mapping) or not lrs:
        raise TypeError(f"lrs must be a non-empty dict {{method: lr}}, got {lrs!r}")
    return _check_methods(list(lrs)), _check_seeds(seeds)


def compare_methods(
    split: Split,
    lr_grid: Mapping[str, Sequence[float]],
    *,
    seeds: Sequence[int],
    epochs: int,
    batch_size: int = 32,
    widths: Sequence[int] | None = None,
    keep_models: bool = False,
) -> list[dict]:
    """Train every method of ``lr_grid`` (``{method: [lr, ...]}``) at every rate and seed; return the result rows.

    All runs use the same number of steps (``epochs`` passes at
    ``batch_size``). ``keep_models`` keeps each run's trained model in its row.
    """
    if not isinstance(lr_grid, Mapping) or not lr_grid:
        raise TypeError(f"lr_grid must be a non-empty dict {{method: [lr, ...]}}, got {lr_grid!r}")
    methods = _check_methods(list(lr_grid))
    seeds = _check_seeds(seeds)
    steps = steps_for_epochs(split.x_train.shape[0], batch_size, epochs)
    run = functools.partial(train_run, split=split, batch_size=batch_size, steps=steps, widths=widths)
    rows = []
    for method in methods:
        rates = lr_grid[method]
        if isinstance(rates, (str, bytes)) or not isinstance(rates, Sequence) or not rates:
            raise TypeError(f"lr_grid[{method!r}] must be a non-empty list of learning rates, got {rates!r}")
        for lr in rates:
            lr = check_float(f"lr_grid[{method!r}] entry", lr, minimum=0.0, strict_minimum=True)
            rows += [run(method, lr=lr, seed=seed, return_model=keep_models) for seed in seeds]
    return rows


def summarise(rows: Sequence[Mapping], chosen: Mapping[str, float] | None = None) -> list[dict]:
    """Mean and standard deviation over seeds for every (method, lr); marks each method's best rate.

    The best rate is the one with the highest mean *validation* accuracy (ties:
    the smaller rate); the test accuracy is only reported. ``chosen``
    (``{method: lr}``, e.g. picked earlier on fewer seeds) overrides that
    choice. Returns rows ``method, lr, n, val_mean, val_sd, test_mean,
    test_sd, loss_mean, diverged, best``.
    """
    groups: dict[tuple[str, float], list[Mapping]] = {}
    for r in rows:
        groups.setdefault((r["method"], float(r["lr"])), []).append(r)
    out = []
    for (method, lr), rs in groups.items():
        val = np.array([r["val_accuracy"] for r in rs])
        test = np.array([r["test_accuracy"] for r in rs])
        out.append(
            {
                "method": method,
                "lr": lr,
                "n": len(rs),
                "val_mean": float(val.mean()),
                "val_sd": float(val.std(ddof=1)) if len(rs) > 1 else 0.0,
                "test_mean": float(test.mean()),
                "test_sd": float(test.std(ddof=1)) if len(rs) > 1 else 0.0,
                "loss_mean": float(np.mean([r["train_loss"] for r in rs])),
                "diverged": int(sum(bool(r["diverged"]) for r in rs)),
                "best": False,
            }
        )
    for method in dict.fromkeys(r["method"] for r in out):
        mine = [r for r in out if r["method"] == method]
        if chosen is not None and method in chosen:
            picked = [r for r in mine if r["lr"] == float(chosen[method])]
            if not picked:
                raise ValueError(f"chosen[{method!r}] = {chosen[method]} is not a learning rate of the rows")
            picked[0]["best"] = True
        else:
            max(mine, key=lambda r: (r["val_mean"], -r["lr"]))["best"] = True
    return out


def best_lrs(summary: Sequence[Mapping]) -> dict[str, float]:
    """``{method: best learning rate}`` from :func:`summarise`'s rows."""
    return {r["method"]: r["lr"] for r in summary if r["best"]}


def markdown_table(
    rows: Sequence[Mapping],
    columns: Sequence[str],
    headers: Sequence[str] | None = None,
    formats: Mapping[str, str] | None = None,
) -> str:
    """A Markdown table of ``rows`` (dicts), one column per key in ``columns``, with optional per-column formats."""
    headers = list(columns) if headers is None else list(headers)
    if len(headers) != len(columns):
        raise ValueError(f"headers must name every column ({len(columns)}), got {len(headers)}")
    formats = dict(formats or {})
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v = r[c]
            cells.append(format(v, formats[c]) if c in formats else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the batch-size test


def batch_size_sweep(
    split: Split,
    lrs: Mapping[str, float],
    batch_sizes: Sequence[int],
    *,
    seeds: Sequence[int],
    steps: int | None = None,
    epochs: int | None = None,
    samples: int | None = None,
    lr_scaling: str = "none",
    reference_batch: int = 32,
    widths: Sequence[int] | None = None,
) -> list[dict]:
    """Train each method of ``lrs`` (``{method: lr}``) at every batch size and seed.

    Give exactly one of ``steps`` (every batch size takes the same number of
    updates, so larger batches see more samples), ``epochs`` (the
    fixed-epoch protocol) or ``samples`` (a fixed *sample budget*: ``samples
    // B`` steps at batch size ``B``, so every batch size sees the same data;
    the fair protocol for the batch-size prediction). ``lr_scaling`` sets the
    rate at batch size ``B`` from the method's rate ``lr`` at
    ``reference_batch``: ``"none"`` (the same rate), ``"sqrt"`` (``lr *
    sqrt(B / reference_batch)``) or ``"linear"`` (``lr * B /
    reference_batch``, which keeps ``lr / B`` fixed). Rows as
    :func:`train_run`, plus ``protocol`` and ``lr_scaling``.
    """
    if sum(v is not None for v in (steps, epochs, samples)) != 1:
        raise ValueError(
            "give exactly one of steps (fixed steps), epochs (fixed epochs) or samples (fixed sample budget)"
        )
    lr_scaling = check_choice("lr_scaling", lr_scaling, ("none", "sqrt", "linear"))
    reference_batch = check_int("reference_batch", reference_batch, minimum=1)
    methods, seeds = _check_lrs(lrs, seeds)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of ints, got {batch_sizes!r}")
    sizes = [
        check_int(f"batch_sizes[{i}]", b, minimum=1, maximum=split.x_train.shape[0]) for i, b in enumerate(batch_sizes)
    ]
    if steps is not None:
        steps = check_int("steps", steps, minimum=1)
    elif epochs is not None:
        epochs = check_int("epochs", epochs, minimum=1)
    else:
        samples = check_int("samples", samples, minimum=max(sizes))
    scale = {
        "none": lambda b: 1.0,
        "sqrt": lambda b: math.sqrt(b / reference_batch),
        "linear": lambda b: b / reference_batch,
    }
    protocol = "steps" if steps is not None else "epochs" if epochs is not None else "samples"
    rows = []
    for method in methods:
        base = check_float(f"lrs[{method!r}]", lrs[method], minimum=0.0, strict_minimum=True)
        for b in sizes:
            if method == "batchnorm" and b == 1:
                continue  # BatchNorm needs at least 2 samples per batch
            if protocol == "steps":
                n_steps = steps
            elif protocol == "epochs":
                n_steps = steps_for_epochs(split.x_train.shape[0], b, epochs)
            else:
                n_steps = samples // b
            lr = base * scale[lr_scaling](b)
            for seed in seeds:
                row = train_run(method, split, lr=lr, batch_size=b, steps=n_steps, seed=seed, widths=widths)
                row["protocol"] = protocol
                row["lr_scaling"] = lr_scaling
                rows.append(row)
    return rows


def tune_lr(
    method: str,
    split: Split,
    *,
    batch_size: int,
    samples: int,
    centre: float,
    seeds: Sequence[int],
    factor: float = 2.0,
    points: int = 5,
    max_widen: int = 4,
    widths: Sequence[int] | None = None,
) -> dict:
    """Tune ``method``'s learning rate at one batch size by *validation* accuracy, widening the grid at an edge.

    The grid starts as ``points`` rates spaced by ``factor`` around ``centre``;
    every rate is trained on every tuning seed for ``samples // batch_size``
    steps (a fixed sample budget). The chosen rate has the highest mean
    validation accuracy over ``seeds`` (ties: the smaller rate). While it is
    the grid's smallest or largest rate, one more rate is added beyond that edge
    (at most ``max_widen`` times). Returns ``{"method", "batch_size", "grid",
    "chosen", "at_edge", "widened", "rows"}``: ``at_edge`` is True when the
    chosen rate is still an end point of the final grid (the optimum may lie
    outside it).
    """
    method = check_choice("method", method, ALL_METHODS)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=split.x_train.shape[0])
    samples = check_int("samples", samples, minimum=batch_size)
    centre = check_float("centre", centre, minimum=0.0, strict_minimum=True)
    factor = check_float("factor", factor, minimum=1.0, strict_minimum=True)
    points = check_int("points", points, minimum=3)
    max_widen = check_int("max_widen", max_widen, minimum=0)
    seeds = _check_seeds(seeds)
    steps = samples // batch_size
    lo = -(points // 2)
    grid = [centre * factor ** (lo + i) for i in range(points)]
    rows: list[dict] = []

    def train(lr):
        for seed in seeds:
            row = train_run(method, split, lr=lr, batch_size=batch_size, steps=steps, seed=seed, widths=widths)
            row["protocol"] = "tuned"
            rows.append(row)

    def best():
        means = {lr: np.mean([r["val_accuracy"] for r in rows if r["lr"] == lr]) for lr in grid}
        return max(grid, key=lambda lr: (means[lr], -lr))

    for lr in grid:
        train(lr)
    widened = 0
    chosen = best()
    while chosen in (grid[0], grid[-1]) and widened < max_widen:
        new = grid[0] / factor if chosen == grid[0] else grid[-1] * factor
        grid = sorted([*grid, new])
        train(new)
        widened += 1
        chosen = best()
    return {
        "method": method,
        "batch_size": batch_size,
        "grid": grid,
        "chosen": float(chosen),
        "at_edge": chosen in (grid[0], grid[-1]),
        "widened": widened,
        "rows": rows,
    }


def batch_tuned_sweep(
    split: Split,
    centres: Mapping[str, float],
    batch_sizes: Sequence[int],
    *,
    tune_seeds: Sequence[int],
    eval_seeds: Sequence[int],
    samples: int,
    reference_batch: int = 32,
    widths: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
    **tune_kwargs,
) -> dict:
    """The batch-size test with the learning rate tuned per (method, batch size) at a fixed sample budget.

    For every method of ``centres`` (``{method: rate at reference_batch}``) and
    batch size ``B``, :func:`tune_lr` searches around ``centre * sqrt(B /
    reference_batch)`` on ``tune_seeds``; the chosen rate is then trained on
    ``eval_seeds`` (kept apart from the tuning seeds, so the test accuracy is not
    the one the choice was made on). Returns ``{"tuning": [tune_lr results
    without rows], "tuning_rows", "rows"}``: ``rows`` (the evaluation runs,
    as :func:`batch_size_sweep`'s, protocol ``"tuned"``) feed
    :func:`batch_size_slopes` and :func:`slope_differences`. ``progress`` is
    called with one line per (method, B).
    """
    if not isinstance(centres, Mapping) or not centres:
        raise TypeError(f"centres must be a non-empty dict {{method: lr}}, got {centres!r}")
    methods = _check_methods(list(centres))
    tune_seeds, eval_seeds = _check_seeds(tune_seeds), _check_seeds(eval_seeds)
    if set(tune_seeds) & set(eval_seeds):
        raise ValueError(
            f"tune_seeds and eval_seeds must not overlap, both hold {sorted(set(tune_seeds) & set(eval_seeds))}"
        )
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of ints, got {batch_sizes!r}")
    sizes = [
        check_int(f"batch_sizes[{i}]", b, minimum=2, maximum=split.x_train.shape[0]) for i, b in enumerate(batch_sizes)
    ]
    samples = check_int("samples", samples, minimum=max(sizes))
    reference_batch = check_int("reference_batch", reference_batch, minimum=1)
    tuning, tuning_rows, rows = [], [], []
    for method in methods:
        base = check_float(f"centres[{method!r}]", centres[method], minimum=0.0, strict_minimum=True)
        for b in sizes:
            start = time.perf_counter()
            t = tune_lr(
                method,
                split,
                batch_size=b,
                samples=samples,
                centre=base * math.sqrt(b / reference_batch),
                seeds=tune_seeds,
                widths=widths,
                **tune_kwargs,
            )
            tuning_rows += t.pop("rows")
            tuning.append(t)
            for seed in eval_seeds:
                row = train_run(
                    method, split, lr=t["chosen"], batch_size=b, steps=samples // b, seed=seed, widths=widths
                )
                row["protocol"] = "tuned"
                rows.append(row)
            if progress is not None:
                mine = [r["test_accuracy"] for r in rows[-len(eval_seeds) :]]
                edge = " AT EDGE" if t["at_edge"] else ""
                progress(
                    f"{method} B={b}: lr {t['chosen']:.4g} (grid {t['grid'][0]:.3g}-{t['grid'][-1]:.3g}, "
                    f"widened {t['widened']}){edge}; test {np.mean(mine):.3f}; {time.perf_counter() - start:.0f} s"
                )
    return {"tuning": tuning, "tuning_rows": tuning_rows, "rows": rows}


def batch_size_table(rows: Sequence[Mapping]) -> list[dict]:
    """Mean and standard deviation of the test accuracy per (method, batch size): rows ``method, batch_size, n, mean, sd``."""
    groups: dict[tuple[str, int], list[Mapping]] = {}
    for r in rows:
        groups.setdefault((r["method"], int(r["batch_size"])), []).append(r)
    out = []
    for (m, b), rs in groups.items():
        v = [float(r["test_accuracy"]) for r in rs]
        out.append(
            {
                "method": m,
                "batch_size": b,
                "lr": float(rs[0]["lr"]) if "lr" in rs[0] else float("nan"),
                "n": len(v),
                "mean": float(np.mean(v)),
                "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "train_loss_median": float(np.median([float(r["train_loss"]) for r in rs]))
                if all("train_loss" in r for r in rs)
                else float("nan"),
                "blown_up": int(sum(is_blown_up(r) for r in rs)) if all("train_loss" in r for r in rs) else 0,
            }
        )
    return out


def is_blown_up(row: Mapping, n_classes: int = 10) -> bool:
    """Whether a training run failed to train: it diverged, or its final training loss is above ``ln(n_classes)``.

    ``ln(n_classes)`` is the cross-entropy of a uniform guess, so a run that
    ends above it has learnt less than nothing on its own training data (its
    rate was too large), whatever its test accuracy.
    """
    n_classes = check_int("n_classes", n_classes, minimum=2)
    if not isinstance(row, Mapping) or "train_loss" not in row:
        raise TypeError("row must be a result row (a dict with 'train_loss' and 'diverged')")
    loss = float(row["train_loss"])
    return bool(row.get("diverged")) or not math.isfinite(loss) or loss > math.log(n_classes)


def rescore(rows: Sequence[Mapping], n_classes: int = 10) -> list[dict]:
    """Copies of result rows with diverged runs scored at chance (``1 / n_classes``) and a ``blown_up`` flag.

    For results written before :func:`train_run` scored diverged runs at
    chance (they carry 0 accuracy). The input rows are not changed.
    """
    n_classes = check_int("n_classes", n_classes, minimum=2)
    out = []
    for r in rows:
        r = dict(r)
        if r.get("diverged"):
            r["test_accuracy"] = 1.0 / n_classes
            if "val_accuracy" in r:
                r["val_accuracy"] = 1.0 / n_classes
        r["blown_up"] = is_blown_up(r, n_classes)
        out.append(r)
    return out


def describe_difference(label: str, d: Mapping, digits: int = 4) -> str:
    """One sentence for a paired difference (:func:`paired_difference`): its interval and what it says.

    "significantly below 0", "significantly above 0" or "not significantly
    different from 0", decided by the interval alone, so a verdict printed
    with it cannot disagree with the numbers.
    """
    if not isinstance(label, str):
        raise TypeError(f"label must be a string, got {type(label).__name__}")
    if not isinstance(d, Mapping) or not {"mean", "lo", "hi"} <= set(d):
        raise TypeError("d must be a paired difference (a dict with 'mean', 'lo', 'hi')")
    digits = check_int("digits", digits, minimum=1)
    if d["hi"] < 0:
        word = "significantly below 0"
    elif d["lo"] > 0:
        word = "significantly above 0"
    else:
        word = "not significantly different from 0"
    n = f", {d['n']} seeds" if "n" in d else ""
    return f"{label}: {d['mean']:+.{digits}f} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}]{n}, {word}"


def batch_size_slopes(rows: Sequence[Mapping], trained_only: bool = False) -> dict[str, dict]:
    """Least-squares slope of test accuracy against ``log2(batch size)`` per method, one slope per seed.

    Returns ``{method: {"mean", "sd", "n", "slopes"}}``: the slope is the
    accuracy change per doubling of the batch size. ``trained_only`` leaves
    out the runs that blew up (:func:`is_blown_up`); a seed keeps a slope
    while at least two of its batch sizes trained.
    """
    by: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for r in _kept(rows, trained_only):
        by.setdefault(r["method"], {}).setdefault(int(r["seed"]), []).append(
            (math.log2(int(r["batch_size"])), float(r["test_accuracy"]))
        )
    out = {}
    for method, per_seed in by.items():
        slopes = []
        for points in per_seed.values():
            if len(points) >= 2:
                xs, ys = np.array(points).T
                slopes.append(float(np.polyfit(xs, ys, 1)[0]))
        arr = np.array(slopes)
        out[method] = {
            "mean": float(arr.mean()) if len(arr) else float("nan"),
            "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "n": len(arr),
            "slopes": slopes,
        }
    return out


def mean_ci(values, confidence: float = 0.95) -> dict:
    """Mean, standard error and Student-t confidence interval of ``values`` (one number per seed).

    Returns ``{"mean", "se", "lo", "hi", "n"}``; with one value the standard
    error is NaN and the interval is unbounded.
    """
    from scipy import stats

    confidence = check_float("confidence", confidence, minimum=0.0, strict_minimum=True)
    if not confidence < 1:
        raise ValueError(f"confidence must be below 1, got {confidence}")
    v = np.asarray(list(values), dtype=float)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("values must be a non-empty list of finite numbers")
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "se": float("nan"), "lo": -math.inf, "hi": math.inf, "n": 1}
    se = float(v.std(ddof=1) / math.sqrt(v.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * se
    return {"mean": mean, "se": se, "lo": mean - half, "hi": mean + half, "n": int(v.size)}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> dict:
    """``a - b`` paired by seed (``{seed: value}`` each), with :func:`mean_ci`'s mean, standard error and interval.

    Only seeds present in both count. Adds ``"significant"``: whether the
    interval excludes 0.
    """
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise TypeError("a and b must be dicts {seed: value}")
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("a and b share no seed, so there is nothing to pair")
    out = mean_ci([float(a[s]) - float(b[s]) for s in common], confidence)
    out["significant"] = bool(out["lo"] > 0 or out["hi"] < 0)
    out["seeds"] = common
    return out


def holm_adjusted(diffs: Mapping[str, Mapping]) -> dict[str, float]:
    """Holm-adjusted two-sided p-values of several paired differences (:func:`paired_difference` results).

    Each p-value is the paired t test's (``mean / se`` with ``n - 1`` degrees
    of freedom); Holm's step-down correction controls the chance of any false
    "significant" over the whole family. Returns ``{name: adjusted p}``.
    """
    from scipy import stats

    if not isinstance(diffs, Mapping) or not diffs:
        raise TypeError("diffs must be a non-empty dict {name: paired_difference}")
    raw = {}
    for name, d in diffs.items():
        if not isinstance(d, Mapping) or not {"mean", "se", "n"} <= set(d):
            raise TypeError(f"diffs[{name!r}] must be a paired difference (a dict with 'mean', 'se', 'n')")
        n, se = int(d["n"]), float(d["se"])
        if n < 2 or not se > 0:
            raw[name] = 1.0 if not se > 0 and float(d["mean"]) == 0 else (0.0 if n >= 2 else 1.0)
        else:
            raw[name] = float(2 * stats.t.sf(abs(float(d["mean"]) / se), n - 1))
    order = sorted(raw, key=raw.get)
    out, running = {}, 0.0
    for k, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * raw[name]))
        out[name] = running
    return {name: out[name] for name in diffs}


def _kept(rows: Sequence[Mapping], trained_only: bool) -> list[Mapping]:
    if not isinstance(trained_only, bool):
        raise TypeError(f"trained_only must be True or False, got {trained_only!r}")
    return [r for r in rows if not (trained_only and is_blown_up(r))]


def slope_differences(
    rows: Sequence[Mapping], reference: str, confidence: float = 0.95, trained_only: bool = False
) -> dict[str, dict]:
    """Per-seed slope (accuracy per doubling of B) of every method minus ``reference``'s, paired by seed.

    ``rows`` as :func:`batch_size_sweep`. Returns ``{method: paired_difference}``
    for every method but ``reference``; a negative mean says the method gains
    less from (or loses more to) larger batches than ``reference``.
    ``trained_only`` leaves out the runs that blew up (:func:`is_blown_up`):
    each seed's slope is then fitted over the batch sizes at which it trained
    (at least two), and only seeds with a slope for both methods are paired.
    """
    by: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for r in _kept(rows, trained_only):
        by.setdefault(r["method"], {}).setdefault(int(r["seed"]), []).append(
            (math.log2(int(r["batch_size"])), float(r["test_accuracy"]))
        )
    if reference not in by:
        raise ValueError(f"reference {reference!r} is not a method of the rows: {sorted(by)}")

    def per_seed(method):
        return {s: float(np.polyfit(*np.array(p).T, 1)[0]) for s, p in by[method].items() if len(p) >= 2}

    ref = per_seed(reference)
    out = {}
    for m in by:
        if m != reference:
            mine = per_seed(m)
            if set(mine) & set(ref):
                out[m] = paired_difference(mine, ref, confidence)
    return out


# --------------------------------------------------------------------------- the effective-step histogram


def effective_step_ratios(
    model: nn.Module, x, y, *, lr: float, batch_size: int, n_batches: int = 8, seed: int = 0
) -> np.ndarray:
    """Per-sample ``|dz_m| / (lr |dL/dz_m|)`` at ``model``'s first affine layer after one SGD step on a mini-batch.

    ``L`` is the batch's mean cross-entropy, so ``dL/dz_m = g_m / B`` and the
    ratio is the measured step over the ideal step ``(lr/B) |g_m|``. Each of
    ``n_batches`` random batches starts from a fresh copy of ``model``
    (which is not changed). The first affine layer's input is the data
    itself, so its output moves only through its own parameters and the
    ratio is exact. At batch size 1: ``|x|^2 + 1`` for a plain layer, 2 after
    L2 pre-normalisation, 1 for the affine-like layer and for the control.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_tensor("x", x, ndim=2, floating=True)
    y = check_tensor("y", y, ndim=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    n_batches = check_int("n_batches", n_batches, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    ratios = []
    for _ in range(n_batches):
        idx = torch.randperm(x.shape[0], generator=gen)[:batch_size]
        net = copy.deepcopy(model)
        net.train()
        layer = first_affine(net)
        seen = []
        handle = layer.register_forward_hook(lambda mod, inp, out: seen.append(out))
        try:
            loss = F.cross_entropy(net(x[idx]), y[idx])
            z = seen[-1]
            params = [p for p in net.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, params + [z])
            grad_z = grads[-1]
            with torch.no_grad():
                for p, gp in zip(params, grads[:-1]):
                    p.sub_(lr * gp)
                net(x[idx])
                dz = seen[-1] - z.detach()
        finally:
            handle.remove()
        num = torch.linalg.vector_norm(dz, dim=1)
        den = lr * torch.linalg.vector_norm(grad_z, dim=1)
        keep = den > 0
        ratios.append((num[keep] / den[keep]).detach().double().numpy())
    return np.concatenate(ratios)


def _affine_outputs(model: nn.Module, x: torch.Tensor, measure: Callable) -> list:
    """``measure(inputs, output)`` of every affine layer (``nn.Linear``, ``AffineLike``) of ``model`` on ``x``, in order.

    One forward pass in evaluation mode; the hooks are removed and the model's
    mode restored afterwards.
    """
    seen = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: seen.append(measure(inp, out)))
        for m in model.modules()
        if isinstance(m, (nn.Linear, AffineLike))
    ]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return seen


@torch.no_grad()
def activation_spread(model: nn.Module, x) -> list[float]:
    """How much each affine layer's output varies between the samples of ``x``, layer by layer.

    For every ``nn.Linear`` or ``AffineLike`` module of ``model``, in order:
    the root mean square over output units of the standard deviation across
    samples (the input-dependent part of the activation; a constant offset
    such as the bias does not count). Notebook 11 uses it to show the
    initialisation pitfall: with ``nn.Linear``'s default scale, affine-like
    layers shrink this spread layer after layer until the bias swamps it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_tensor("x", x, ndim=2, floating=True)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 samples to measure a spread, got shape {tuple(x.shape)}")
    return _affine_outputs(model, x, lambda inp, out: float(out.var(dim=0, unbiased=False).mean().sqrt()))


@torch.no_grad()
def affine_inputs(model: nn.Module, x) -> list[torch.Tensor]:
    """The input of every affine layer (``nn.Linear``, ``AffineLike``) of ``model`` on ``x``, in order (eval mode).

    The divergence factor of a plain affine layer on sample ``m`` is
    ``|a_m|^2 + 1`` for its input ``a_m`` (notebook 10), so these inputs tell
    how sample-dependent each layer's step is.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_tensor("x", x, ndim=2, floating=True)
    return _affine_outputs(model, x, lambda inp, out: inp[0].detach().clone())


def scale_ablation(
    split: Split,
    lrs: Mapping[str, float],
    scales: Sequence[float],
    *,
    seeds: Sequence[int],
    epochs: int,
    batch_size: int = 32,
    widths: Sequence[int] | None = None,
    reuse: Sequence[Mapping] | None = None,
) -> list[dict]:
    """Train each method of ``lrs`` at its fixed rate on inputs multiplied by each ``c`` in ``scales``.

    Rows as :func:`train_run` plus ``input_scale``. Runs at ``c = 1`` that are
    already in ``reuse`` (same method, rate, seed, batch size and steps, e.g.
    from :func:`compare_methods`) are taken from there instead of retrained.
    """
    methods, seeds = _check_lrs(lrs, seeds)
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise TypeError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    scales = [check_float(f"scales[{i}]", c, minimum=0.0, strict_minimum=True) for i, c in enumerate(scales)]
    steps = steps_for_epochs(split.x_train.shape[0], batch_size, epochs)
    rows = []
    for method in methods:
        lr = float(lrs[method])
        for c in scales:
            for seed in seeds:
                old = None
                if c == 1.0 and reuse is not None:
                    old = next(
                        (
                            r
                            for r in reuse
                            if r["method"] == method
                            and float(r["lr"]) == lr
                            and r["seed"] == seed
                            and r["batch_size"] == batch_size
                            and r["steps"] == steps
                        ),
                        None,
                    )
                row = (
                    {k: v for k, v in old.items() if k != "model"}
                    if old is not None
                    else train_run(
                        method, split.scaled(c), lr=lr, batch_size=batch_size, steps=steps, seed=seed, widths=widths
                    )
                )
                row["input_scale"] = c
                rows.append(row)
    return rows
