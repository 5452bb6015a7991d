"""Notebooks 05-09 (05, 06, 07, 08, 09): training drivers for isotropic networks, function-change measures, width and task schedules.

Training and measuring the networks of :mod:`isodl.topology.network`:

* :func:`fit_classifier` -- train a classifier with AdamW (the paper's defaults)
  and record test accuracy every epoch (notebooks 05-09). The mini-batch order
  comes from ``seed``, so two models trained with the same seed see the same
  batches; ``after_epoch`` may change the topology between epochs (notebook 07).
* :func:`function_change` -- how much an operation changed a network's outputs
  (worst and mean relative change, KL divergence, argmax agreement, accuracy
  change): the measure that diagonalisation (notebook 06), neurogenesis and
  neurodegeneration (notebook 07) and sparsification (notebook 09) leave the
  function in place.
* :func:`width_schedule` and :func:`run_width_schedule` -- neuroabundance: hidden
  widths that follow a schedule over the epochs, the optimiser state carried
  through every resize (notebook 07).
* :func:`grow_shrink_grid` -- pretrain at one width, grow or shrink to
  another, keep training; against static isotropic and elementwise networks
  of the target width (notebook 08 and ``scripts/grow_shrink_grid.py``).
* :func:`training_after_rotation` -- does training continue as if nothing
  happened after an exact rotation, when the optimiser state is rotated too?
  (exactly for SGD with momentum, not for AdamW; notebook 06).
* :func:`run_task_schedule` -- scheduled task adaptation: tasks appended and
  dropped over the epochs, with the buffer rule
  :meth:`isodl.topology.network.IsotropicMLP.auto_adapt` (notebook 07).

Training here is a set of thin drivers over the course's one loop,
:func:`isodl.core.train.train_epoch` (with the model's psi penalty as its
``penalty`` hook); predictions and accuracy are :func:`isodl.core.train.predict`
and :func:`isodl.core.train.accuracy`. No driver raises when training
diverges: each returns a ``"diverged"`` entry, ``None`` or the
:class:`isodl.core.train.Divergence` (epoch, batch, loss) at which it stopped.

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, *Isotropic
Activation Functions Enable Deindividuated Neurons and Adaptive Topologies*,
arXiv 2602.23405).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isodl.core.train import accuracy, correct, predict, train_epoch
from isodl.core.validate import check_bool, check_dtype, check_float, check_generator, check_int, check_tensor
from isodl.topology.network import IsotropicMLP

__all__ = [
    "function_change",
    "fit_classifier",
    "width_schedule",
    "run_width_schedule",
    "run_task_schedule",
    "training_after_rotation",
    "random_rotation",
    "OPTIMIZERS",
    "grow_shrink_grid",
    "grid_differences",
    "load_grow_shrink_grid",
    "GRID_RESULTS",
]

#: The committed results of ``scripts/grow_shrink_grid.py`` (notebook 08).
GRID_RESULTS = Path(__file__).resolve().parents[3] / "scripts" / "results" / "grow_shrink_grid.json"

#: Optimisers of :func:`training_after_rotation`.
OPTIMIZERS = ("sgd", "adamw")


# --------------------------------------------------------------------------- training and metrics


def _penalty(model: nn.Module):
    """The model's own loss term (:meth:`IsotropicMLP.penalty`, the psi decay), or ``None`` if it has none."""
    return getattr(model, "penalty", None)


def function_change(before, after, labels=None) -> dict[str, float]:
    """How much an operation changed a network's outputs, from logits before and after.

    Returns a dict with

    * ``max_relative``: ``max_i |z_i' - z_i| / |z_i|`` (the worst sample);
    * ``eps_scaled``: ``100 * mean_i |z_i' - z_i| / |z_i|``, in percent (the paper's v2 metric);
    * ``kl``: mean ``KL(softmax z || softmax z')`` in nats;
    * ``argmax_agreement``: fraction of samples whose predicted class is unchanged;
    * with ``labels``: ``accuracy_before``, ``accuracy_after`` and
      ``delta_accuracy`` (in percentage points), by the rule of
      :func:`isodl.core.train.correct` (a sample with a non-finite logit is wrong).

    Computed in float64.
    """
    before = check_tensor("before", before, ndim=2, floating=True).detach().to(torch.float64)
    after = check_tensor("after", after, ndim=2, floating=True).detach().to(torch.float64)
    if before.shape != after.shape or before.shape[0] == 0:
        raise ValueError(
            f"before and after must be logits of the same non-empty shape, got {list(before.shape)} and {list(after.shape)}"
        )
    diff = torch.linalg.vector_norm(after - before, dim=-1)
    norm = torch.linalg.vector_norm(before, dim=-1).clamp_min(torch.finfo(torch.float64).tiny)
    rel = diff / norm
    logp = F.log_softmax(before, dim=-1)
    logq = F.log_softmax(after, dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(dim=-1).clamp_min(0.0)
    out = {
        "max_relative": float(rel.max()),
        "eps_scaled": float(100.0 * rel.mean()),
        "kl": float(kl.mean()),
        "argmax_agreement": float((before.argmax(-1) == after.argmax(-1)).double().mean()),
    }
    if labels is not None:
        labels = check_tensor("labels", labels, ndim=1)
        if labels.shape[0] != before.shape[0]:
            raise ValueError(f"labels must have one entry per sample ({before.shape[0]}), got {labels.shape[0]}")
        a0 = float(correct(before, labels).double().mean())
        a1 = float(correct(after, labels).double().mean())
        out.update(accuracy_before=a0, accuracy_after=a1, delta_accuracy=100.0 * (a1 - a0))
    return out


def _dataset_parts(data, dtype):
    if hasattr(data, "x_train"):
        parts = (data.x_train, data.y_train, data.x_test, data.y_test)
    elif isinstance(data, (tuple, list)) and len(data) == 4:
        parts = tuple(data)
    else:
        raise TypeError("data must be an isodl.core.data.Dataset or a tuple (x_train, y_train, x_test, y_test)")
    x_tr = check_tensor("x_train", parts[0], ndim=2, floating=True).to(dtype)
    x_te = check_tensor("x_test", parts[2], ndim=2, floating=True).to(dtype)
    y_tr = check_tensor("y_train", parts[1], ndim=1)
    y_te = check_tensor("y_test", parts[3], ndim=1)
    return x_tr, y_tr, x_te, y_te


def fit_classifier(
    model: nn.Module,
    data,
    *,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    batch_size: int = 48,
    seed: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    after_epoch: Callable | None = None,
) -> dict:
    """Train a classifier with AdamW (the paper's defaults) and record test accuracy every epoch.

    ``data`` is an :class:`isodl.core.data.Dataset` or a tuple ``(x_train,
    y_train, x_test, y_test)``; inputs are cast to the model's dtype. Each
    epoch is one :func:`isodl.core.train.train_epoch` with the model's
    ``penalty`` (the psi decay) added to the loss. The mini-batch order is
    drawn from ``seed``, so two models trained with the same seed see the same
    batches (paired comparisons, notebook 05). ``after_epoch(epoch, model,
    optimizer)`` runs after each epoch's evaluation and may change the model's
    topology with that optimiser (notebook 07).

    Returns ``{"epoch", "train_loss", "test_accuracy", "diverged",
    "optimizer"}``: epoch 0 is the untrained model (its train loss is
    ``nan``); ``train_loss`` is each epoch's mean training loss (penalty
    included). ``diverged`` is ``None``, or the
    :class:`~isodl.core.train.Divergence` at which training stopped: the lists
    then end with the last completed epoch.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = check_int("epochs", epochs, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    dtype = next(model.parameters()).dtype
    x_tr, y_tr, x_te, y_te = _dataset_parts(data, dtype)
    if optimizer is None:
        lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
        weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if after_epoch is not None and not callable(after_epoch):
        raise TypeError(
            f"after_epoch must be callable as after_epoch(epoch, model, optimizer) or None, got {after_epoch!r}"
        )
    gen = torch.Generator().manual_seed(seed)
    history = {"epoch": [0], "train_loss": [float("nan")], "test_accuracy": [accuracy(model, x_te, y_te)]}
    history["diverged"] = None
    for epoch in range(1, epochs + 1):
        steps = train_epoch(
            model, optimizer, x_tr, y_tr, batch_size=batch_size, generator=gen, penalty=_penalty(model), epoch=epoch
        )
        if steps.diverged is not None:
            history["diverged"] = steps.diverged
            break
        history["epoch"].append(epoch)
        history["train_loss"].append(steps.mean_loss)
        history["test_accuracy"].append(accuracy(model, x_te, y_te))
        if after_epoch is not None:
            after_epoch(epoch, model, optimizer)
    history["optimizer"] = optimizer
    return history


# --------------------------------------------------------------------------- adaptive topologies (notebook 07)


def width_schedule(start: int, target: int, *, warmup: int, adapt: int, settle: int) -> list[int]:
    """Hidden width at each epoch: ``start`` for ``warmup`` epochs, a linear integer ramp to
    ``target`` over ``adapt`` epochs (``np.rint(linspace)``), then ``target`` for ``settle`` epochs."""
    start = check_int("start", start, minimum=1)
    target = check_int("target", target, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    adapt = check_int("adapt", adapt, minimum=1)
    settle = check_int("settle", settle, minimum=0)
    ramp = [int(v) for v in np.rint(np.linspace(start, target, adapt + 1))[1:]]
    return [start] * warmup + ramp + [target] * settle


def run_width_schedule(
    data,
    widths: Sequence[int],
    schedule: Sequence[int] | Sequence[Sequence[int]],
    *,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    batch_size: int = 48,
    seed: int = 0,
    dtype=torch.float32,
) -> dict:
    """Train an :class:`IsotropicMLP` whose hidden widths follow ``schedule`` (neuroabundance, notebook 07).

    ``widths`` gives the starting network ``[w_0, h_1, ..., w_L]``;
    ``schedule[e]`` is the hidden width (one int: every hidden layer) or
    widths (a sequence) to use in epoch ``e``. At the start of each epoch the
    layers are resized to the schedule, last hidden layer first (so no psi
    entry created by an earlier layer's removal feeds a neuron removed later),
    with the AdamW state carried; then one :func:`isodl.core.train.train_epoch`
    (psi penalty included) runs. Returns per-epoch ``test_accuracy`` (after
    the epoch), ``widths``, for each epoch with a resize the accuracy just
    before and just after it (``resize_epoch``, ``acc_before``,
    ``acc_after``), the final ``model`` and ``diverged``: ``None``, or the
    :class:`~isodl.core.train.Divergence` at which the schedule stopped (its
    ``epoch`` is ``e + 1`` for ``schedule[e]``; the per-epoch lists end with
    the last completed epoch).
    """
    seed = check_int("seed", seed, minimum=0)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise TypeError(f"schedule must be a sequence of hidden widths, one entry per epoch, got {schedule!r}")
    gen = torch.Generator().manual_seed(seed)
    model = IsotropicMLP(widths, dtype=dtype, generator=gen)
    x_tr, y_tr, x_te, y_te = _dataset_parts(data, model.dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    out = {"test_accuracy": [], "widths": [], "resize_epoch": [], "acc_before": [], "acc_after": [], "diverged": None}
    for epoch, target in enumerate(schedule):
        targets = [target] * model.n_hidden if isinstance(target, (int, np.integer)) else list(target)
        if len(targets) != model.n_hidden:
            raise ValueError(f"schedule[{epoch}] must give {model.n_hidden} hidden widths, got {target!r}")
        if targets != model.widths[1:-1]:
            before = accuracy(model, x_te, y_te)
            for k in reversed(range(model.n_hidden)):
                model.resize_hidden(k, targets[k], optimizer=opt, generator=gen)
            out["resize_epoch"].append(epoch)
            out["acc_before"].append(before)
            out["acc_after"].append(accuracy(model, x_te, y_te))
        steps = train_epoch(
            model, opt, x_tr, y_tr, batch_size=batch_size, generator=gen, penalty=model.penalty, epoch=epoch + 1
        )
        if steps.diverged is not None:
            out["diverged"] = steps.diverged
            break
        out["test_accuracy"].append(accuracy(model, x_te, y_te))
        out["widths"].append(model.widths)
    out["model"] = model
    return out


def _make_optimizer(name: str, params, lr: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-3)


def training_after_rotation(
    model: IsotropicMLP,
    data,
    *,
    optimizer: str = "sgd",
    carry_state: bool = True,
    lr: float = 1e-2,
    warmup_epochs: int = 2,
    epochs: int = 1,
    batch_size: int = 48,
    seed: int = 0,
) -> dict[str, float]:
    """Train a copy of ``model`` ``warmup_epochs`` to build an optimiser state, then continue two copies for ``epochs``
    on the same batches: one as it is, one after left-partially diagonalising every hidden layer (an exact rotation).

    ``optimizer`` is ``"sgd"`` (momentum 0.9) or ``"adamw"`` (weight decay 1e-3);
    ``carry_state=True`` passes it to the rotation, which rotates its moments
    (exactly for first moments, approximately for Adam's second moments),
    ``False`` leaves them in the old basis. Returns the
    :func:`function_change` between the two continued copies on the test
    set (``max_relative``, ``eps_scaled``, ...) plus ``at_rotation``, the
    largest relative change of the rotation itself (round-off).
    """
    if not isinstance(model, IsotropicMLP):
        raise TypeError(f"model must be an IsotropicMLP, got {type(model).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    carry_state = check_bool("carry_state", carry_state)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    warmup_epochs = check_int("warmup_epochs", warmup_epochs, minimum=1)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    x_tr, y_tr, x_te, y_te = _dataset_parts(data, model.dtype)
    base = copy.deepcopy(model)
    opt = _make_optimizer(optimizer, base.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    for e in range(warmup_epochs):
        train_epoch(base, opt, x_tr, y_tr, batch_size=batch_size, generator=gen, penalty=base.penalty, epoch=e + 1)
    rotated = copy.deepcopy(base)
    opt_r = _make_optimizer(optimizer, rotated.parameters(), lr)
    opt_r.load_state_dict(copy.deepcopy(opt.state_dict()))  # load_state_dict would share the moment tensors
    before = predict(rotated, x_te)
    for k in range(rotated.n_hidden):
        rotated.left_partial_diagonalise(k, optimizer=opt_r if carry_state else None)
    at_rotation = function_change(before, predict(rotated, x_te))["max_relative"]
    state = gen.get_state()
    for model_, opt_ in ((base, opt), (rotated, opt_r)):
        g = torch.Generator()
        g.set_state(state)
        for e in range(epochs):
            train_epoch(
                model_, opt_, x_tr, y_tr, batch_size=batch_size, generator=g, penalty=model_.penalty, epoch=e + 1
            )
    out = function_change(predict(base, x_te), predict(rotated, x_te), y_te)
    out["at_rotation"] = at_rotation
    return out


def grow_shrink_grid(
    data,
    starts: Sequence[int],
    targets: Sequence[int],
    seeds: Sequence[int],
    *,
    warmup: int = 8,
    adapt: int = 8,
    settle: int = 8,
    lr: float = 3e-3,
    batch_size: int = 96,
) -> dict:
    """The grow/shrink experiment on a single hidden layer ``[w_0, m, n_classes]``.

    For every ``(start, target)`` and seed: train at ``start`` for ``warmup``
    epochs, move linearly to ``target`` over ``adapt`` epochs (neurogenesis or
    neurodegeneration, :func:`run_width_schedule`), then train ``settle``
    epochs. Controls for every target and seed, trained for the same number of
    epochs on the same batches: a static :class:`IsotropicMLP` and a static
    :class:`~isodl.topology.network.ElementwiseTanhMLP` of the target width.

    Returns ``{"epochs", "warmup", "adapt", "settle", "starts", "targets",
    "seeds", "adaptive": {"start->target": [[acc per epoch] per seed]},
    "static": {"target": ...}, "elementwise": {"target": ...}}`` (test
    accuracy after each epoch; JSON-ready).
    """
    from isodl.topology.network import ElementwiseTanhMLP

    starts = [check_int(f"starts[{i}]", v, minimum=1) for i, v in enumerate(starts)]
    targets = [check_int(f"targets[{i}]", v, minimum=1) for i, v in enumerate(targets)]
    seeds = [check_int(f"seeds[{i}]", v, minimum=0) for i, v in enumerate(seeds)]
    if not starts or not targets or not seeds:
        raise ValueError("starts, targets and seeds must each hold at least one value")
    x_tr, y_tr, x_te, y_te = _dataset_parts(data, torch.float32)
    n_in, n_out = x_tr.shape[1], int(max(int(y_tr.max()), int(y_te.max()))) + 1
    total = warmup + adapt + settle
    out = {
        "epochs": total,
        "warmup": warmup,
        "adapt": adapt,
        "settle": settle,
        "starts": starts,
        "targets": targets,
        "seeds": seeds,
        "adaptive": {},
        "static": {},
        "elementwise": {},
    }
    parts = (x_tr, y_tr, x_te, y_te)
    for start in starts:
        for target in targets:
            schedule = width_schedule(start, target, warmup=warmup, adapt=adapt, settle=settle)
            out["adaptive"][f"{start}->{target}"] = [
                run_width_schedule(parts, [n_in, start, n_out], schedule, lr=lr, batch_size=batch_size, seed=s)[
                    "test_accuracy"
                ]
                for s in seeds
            ]
    for target in targets:
        out["static"][str(target)] = [
            run_width_schedule(parts, [n_in, target, n_out], [target] * total, lr=lr, batch_size=batch_size, seed=s)[
                "test_accuracy"
            ]
            for s in seeds
        ]
        runs = []
        for s in seeds:
            model = ElementwiseTanhMLP([n_in, target, n_out], generator=torch.Generator().manual_seed(s))
            runs.append(
                fit_classifier(model, parts, epochs=total, lr=lr, batch_size=batch_size, seed=s)["test_accuracy"][1:]
            )
        out["elementwise"][str(target)] = runs
    return out


def random_rotation(n: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random ``n x n`` orthogonal matrix (float64): QR of a Gaussian matrix with the signs of ``R``'s diagonal."""
    n = check_int("n", n, minimum=1)
    generator = check_generator(generator)
    if generator is None:
        raise TypeError("generator must be a torch.Generator")
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def load_grow_shrink_grid(path: Path | str | None = None) -> dict:
    """Read the results of ``scripts/grow_shrink_grid.py`` (default :data:`GRID_RESULTS`)."""
    path = GRID_RESULTS if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python scripts/grow_shrink_grid.py` to create it")
    return json.loads(path.read_text())


def grid_differences(results: dict, epoch: int | None = None) -> dict[str, tuple[float, float, int]]:
    """Accuracy differences of the grid, paired by seed, as ``(mean, standard error, n)`` in percentage points.

    For every ``start -> target`` with ``start != target``: adapted minus the
    static isotropic network of the target width; and for every target:
    ``"elementwise t"``, static elementwise minus static isotropic. Measured
    after epoch ``epoch`` (1-based; ``None``: the last epoch).
    """
    out = {}
    total = int(results["epochs"])
    index = total - 1 if epoch is None else check_int("epoch", epoch, minimum=1, maximum=total) - 1

    def paired(a, b):
        d = 100.0 * (np.array([r[index] for r in a]) - np.array([r[index] for r in b]))
        se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
        return float(d.mean()), se, int(d.size)

    for key, runs in results["adaptive"].items():
        start, target = key.split("->")
        if start != target:
            out[key] = paired(runs, results["static"][target])
    for target, runs in results["elementwise"].items():
        out[f"elementwise {target}"] = paired(runs, results["static"][target])
    return out


def run_task_schedule(
    tasks: Sequence,
    schedule: Sequence[Sequence[int]],
    hidden: Sequence[int],
    *,
    adapt: bool = True,
    threshold: float = 0.95,
    buffer: int = 3,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    dtype=torch.float32,
    baseline: bool = False,
) -> dict:
    """Scheduled task adaptation (notebook 07): tasks are appended and dropped over the epochs.

    ``tasks`` are classification data sets with the same number of classes
    (:class:`isodl.core.data.Dataset` or 4-tuples); ``schedule[e]`` lists the tasks
    active in epoch ``e``. Each attached task owns an input block (its
    features, zeros elsewhere) and an output head. When a task becomes active
    its block and head are appended (:meth:`IsotropicMLP.add_inputs`,
    :meth:`~IsotropicMLP.add_outputs`: zero weights, so the other tasks'
    logits are unchanged); when it stops being active they are removed (the
    other tasks' inputs are zero there, so their logits are unchanged too).
    Each epoch trains on the active tasks (cross-entropy on each sample's own
    head, AdamW) and then, with ``adapt=True``, applies the buffer rule
    :meth:`~IsotropicMLP.auto_adapt` (last layer first). ``adapt=False`` is the
    static control (same initial state for the same ``seed``).

    Returns a dict of per-epoch lists: ``active``, ``widths`` (after
    adaptation), ``changes``, ``accuracy`` (per-task test accuracy after
    adaptation, ``nan`` for detached tasks), ``acc_before``/``acc_after``
    (mean test accuracy over the active tasks just before and after the
    adaptation step), ``adapt_change`` (:func:`function_change` of that step
    on the active tasks' test logits), ``attach_change`` (largest relative
    change of continuing tasks' logits caused by attaching or detaching
    tasks), ``strengths`` (neuron strengths per hidden layer) and ``psi_norm``;
    with ``baseline=True`` also ``baseline_change``: for each epoch whose
    adaptation removed neurons, the :func:`function_change` that removing the
    same number from each layer by magnitude
    (:meth:`~IsotropicMLP.prune_by_magnitude`, on a copy, last layer first)
    *after an exact random rotation of each pruned layer* would have caused,
    else ``None``. The rotation matters: the buffer rule's own steps leave the
    layers in last epoch's SVD basis, so the current basis is not a neutral
    one; the random rotations come from a separate generator (seeded by
    ``seed``), so the adaptive run itself is the same with or without the
    baseline;
    plus the final ``model`` and ``diverged``: ``None``, or the
    :class:`~isodl.core.train.Divergence` at which the schedule stopped (its
    ``epoch`` is ``e + 1`` for ``schedule[e]``; the per-epoch lists end with
    the last completed epoch).
    """
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence) or not tasks:
        raise TypeError("tasks must be a non-empty sequence of data sets")
    adapt = check_bool("adapt", adapt)
    baseline = check_bool("baseline", baseline)
    seed = check_int("seed", seed, minimum=0)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    dtype = check_dtype(dtype)
    parts = [_dataset_parts(t, dtype) for t in tasks]
    n_classes = {int(max(int(p[1].max()), int(p[3].max()))) + 1 for p in parts}
    if len(n_classes) != 1:
        raise ValueError(f"every task must have the same number of classes, got {sorted(n_classes)}")
    c = n_classes.pop()
    dims = [p[0].shape[1] for p in parts]
    sched = []
    for e, active in enumerate(schedule):
        active = [check_int(f"schedule[{e}] entry", t, minimum=0, maximum=len(tasks) - 1) for t in active]
        if not active or len(set(active)) != len(active):
            raise ValueError(f"schedule[{e}] must list at least one task, without repeats, got {active}")
        sched.append(active)
    if not sched:
        raise ValueError("schedule must have at least one epoch")
    hidden = [check_int(f"hidden[{i}]", h, minimum=1) for i, h in enumerate(hidden)]
    gen = torch.Generator().manual_seed(seed)
    rotation_gen = torch.Generator().manual_seed(seed + 104729)
    attached = list(sched[0])
    model = IsotropicMLP([sum(dims[t] for t in attached)] + hidden + [c * len(attached)], dtype=dtype, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def embed(t: int, split: int):
        x, y = parts[t][split], parts[t][split + 1]
        slot = attached.index(t)
        offset = sum(dims[u] for u in attached[:slot])
        full = x.new_zeros(x.shape[0], sum(dims[u] for u in attached))
        full[:, offset : offset + dims[t]] = x
        return full, y + c * slot

    def head_logits(ts):
        outs = []
        for t in ts:
            x, y = embed(t, 2)
            slot = attached.index(t)
            outs.append(predict(model, x)[:, c * slot : c * (slot + 1)])
        return torch.cat(outs)

    def task_accuracy(t):
        x, y = embed(t, 2)
        head = predict(model, x).view(-1, len(attached), c)[:, attached.index(t)]
        return float(correct(head, y % c).double().mean())

    def loss_fn(logits, y):
        heads = logits.view(logits.shape[0], -1, c)[torch.arange(y.shape[0]), y // c]
        return F.cross_entropy(heads, y % c)

    rec = {
        k: []
        for k in (
            "active",
            "widths",
            "changes",
            "accuracy",
            "acc_before",
            "acc_after",
            "adapt_change",
            "attach_change",
            "strengths",
            "psi_norm",
            "baseline_change",
        )
    }
    rec["initial_widths"] = model.widths
    rec["diverged"] = None
    for epoch, active in enumerate(sched, start=1):
        continuing = [t for t in attached if t in active]
        before = head_logits(continuing) if continuing else None
        for t in [t for t in attached if t not in active]:
            slot = attached.index(t)
            offset = sum(dims[u] for u in attached[:slot])
            model.remove_inputs(list(range(offset, offset + dims[t])), optimizer=opt)
            model.remove_outputs(list(range(c * slot, c * (slot + 1))), optimizer=opt)
            attached.remove(t)
        for t in [t for t in active if t not in attached]:
            model.add_inputs(dims[t], optimizer=opt)
            model.add_outputs(c, optimizer=opt)
            attached.append(t)
        attach_change = function_change(before, head_logits(continuing))["max_relative"] if continuing else 0.0
        xs, ys = zip(*(embed(t, 0) for t in active))
        steps = train_epoch(
            model,
            opt,
            torch.cat(xs),
            torch.cat(ys),
            batch_size=batch_size,
            generator=gen,
            loss_fn=loss_fn,
            penalty=model.penalty,
            epoch=epoch,
        )
        if steps.diverged is not None:
            rec["diverged"] = steps.diverged
            break
        rec["attach_change"].append(attach_change)
        before = head_logits(active)
        rec["acc_before"].append(float(np.mean([task_accuracy(t) for t in active])))
        reference = copy.deepcopy(model) if baseline else None
        changes = model.auto_adapt(threshold, buffer, optimizer=opt, generator=gen) if adapt else {}
        rec["adapt_change"].append(function_change(before, head_logits(active)))
        if baseline and any(v < 0 for v in changes.values()):
            adapted, model = model, reference
            for k in sorted(changes, reverse=True):
                if changes[k] < 0:
                    model.rotate_layer(k, random_rotation(model.weights[k].shape[0], rotation_gen))
                    model.prune_by_magnitude(k, -changes[k])
            rec["baseline_change"].append(function_change(before, head_logits(active)))
            model = adapted
        else:
            rec["baseline_change"].append(None)
        rec["acc_after"].append(float(np.mean([task_accuracy(t) for t in active])))
        rec["active"].append(list(active))
        rec["widths"].append(model.widths)
        rec["changes"].append(changes)
        rec["accuracy"].append([task_accuracy(t) if t in attached else float("nan") for t in range(len(tasks))])
        rec["strengths"].append([model.neuron_strengths(k).numpy() for k in range(model.n_hidden)])
        rec["psi_norm"].append(float(sum(float((p.detach() ** 2).sum()) for p in model.psis) ** 0.5))
    rec["model"] = model
    return rec
