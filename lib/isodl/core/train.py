"""Notebooks 00, 03-07, 09, 11, 13 (00, 03, 04, 05, 06, 07, 09, 11, 13): the one training loop, evaluation and accuracy.

The course's one training loop, built in layers, each on the one below::

    optimise(model, optimizer, batches)            one optimiser step per (inputs, targets) batch
    train_epoch(model, optimizer, x, y)            one pass over a random permutation of (x, y)
    train_steps(model, optimizer, x, y, steps=n)   a budget of n steps: permutations one after another
    fit(model, data, epochs=n)                     n epochs, train and test sets evaluated after each

::

    isodl.set_seed(0)
    model = MLP([64, 32, 10])
    history = fit(model, isodl.core.data.digits(), epochs=20, lr=3e-3)
    history.final()   # {'epoch': 20, 'train_loss': ..., 'test_loss': ..., 'test_accuracy': ...}

Every experiment driver of the course (``topology.schedules``,
``normalisation.experiments``, ``recurrent.tasks``) trains through these
functions, so they share one contract:

* **Randomness.** Shuffling draws one ``torch.randperm`` per epoch from the
  ``generator`` you pass (``fit``: a generator seeded by ``seed``), so the same
  generator state and the same initial model give the same run.
* **Divergence.** Training stops at the first batch whose loss is not finite,
  *before* that batch's optimiser step, so the model keeps the parameters the
  last step left (the last finite ones, unless that step itself overflowed
  them). Nothing is raised: the record says where it stopped, as a
  :class:`Divergence` ``(epoch, batch, loss)`` in ``.diverged`` (``None`` when
  training finished). Drivers that return dicts carry the same record under
  ``"diverged"``.
* **Records.** Every optimiser step's training loss is kept (:class:`StepRecord`,
  ``History.step_loss``); everything comes back as plain data that notebooks
  can plot, assert on and compare.
* **Accuracy.** :func:`accuracy`, :func:`evaluate` and :func:`correct` count a
  sample as right when its largest logit is its label *and* all its logits are
  finite: a sample with a ``nan`` or infinite logit counts as wrong.

Two hooks cover what the drivers add to plain backpropagation: ``penalty()``
(a term added to every batch's loss, e.g. the psi decay of notebooks 05-09) and
``gradient(model, inputs, targets)`` (computes the gradients itself, e.g.
forward sensitivity in notebook 13). A tqdm bar shows :func:`fit`'s progress in
JupyterLab; headless runs stay quiet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from isodl.core.config import is_headless
from isodl.core.init import linear
from isodl.core.validate import (
    check_choice,
    check_float,
    check_generator,
    check_int,
    check_tensor,
    check_widths,
)

__all__ = [
    "TASKS",
    "OPTIMIZERS",
    "ACTIVATIONS",
    "MLP",
    "Divergence",
    "StepRecord",
    "History",
    "make_optimizer",
    "optimise",
    "train_epoch",
    "train_steps",
    "fit",
    "predict",
    "correct",
    "accuracy",
    "evaluate",
]

TASKS = ("classify", "autoencode")
OPTIMIZERS = ("sgd", "adam", "adamw")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


class MLP(nn.Module):
    """A plain multilayer perceptron: Linear layers with an elementwise activation between them.

    ``widths = [d_in, h_1, ..., d_out]``; no activation after the last layer.
    Later notebooks swap the activation for isotropic ones; this is the baseline.
    The weights have ``nn.Linear``'s default initialisation, drawn from
    ``generator`` (:func:`isodl.core.init.linear`; ``None``: the global state
    that :func:`isodl.set_seed` seeds).
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str = "tanh",
        bias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        widths = check_widths(widths)
        act = check_choice("activation", activation, ACTIVATIONS)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(linear(a, b, bias=bias, generator=generator))
            if i < len(widths) - 2:
                layers.append(ACTIVATIONS[act]())
        self.net = nn.Sequential(*layers)
        self.widths = widths
        self.activation = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Divergence:
    """Where training stopped: the first batch whose loss was not finite.

    ``epoch`` counts from 1 and ``batch`` from 0 within that epoch; ``loss`` is
    the value that was not finite (``nan``, ``inf`` or ``-inf``). That batch's
    optimiser step was not taken, so the model keeps the parameters with which
    the loss was computed: those of the last step taken. They are finite
    unless that step itself overflowed them (a finite loss whose update is too
    large to represent: then the very next loss is not finite).
    """

    epoch: int
    batch: int
    loss: float

    def __str__(self) -> str:
        return f"training diverged at epoch {self.epoch}, batch {self.batch}: the loss became {self.loss}"


@dataclass
class StepRecord:
    """What a run of optimiser steps recorded: each step's training loss and batch size, and any divergence.

    ``losses[i]`` is the loss of step ``i`` (penalty included) computed before
    that step, on its batch of ``batch_sizes[i]`` samples (the length of the
    batch's first dimension; for sequences ``[T, B, ...]`` that is ``T``). ``diverged`` is
    ``None`` when every batch was trained on, else the :class:`Divergence` at
    which training stopped.
    """

    losses: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    diverged: Divergence | None = None

    @property
    def steps(self) -> int:
        """The number of optimiser steps taken."""
        return len(self.losses)

    @property
    def mean_loss(self) -> float:
        """Mean training loss per sample over the steps taken (each step weighted by its batch size); nan if none."""
        n = sum(self.batch_sizes)
        if n == 0:
            return math.nan
        return sum(loss * size for loss, size in zip(self.losses, self.batch_sizes)) / n

    def extend(self, other: StepRecord) -> None:
        """Append ``other``'s steps (a later run of the same training) and take over its divergence."""
        self.losses += other.losses
        self.batch_sizes += other.batch_sizes
        self.diverged = other.diverged

    def __repr__(self) -> str:
        end = f"diverged={self.diverged!r}" if self.diverged is not None else f"mean_loss={self.mean_loss:.4g}"
        return f"StepRecord(steps={self.steps}, {end})"


@dataclass
class History:
    """What :func:`fit` measured, one entry per evaluated epoch (epoch 0 = before training).

    ``step_loss`` holds the training loss of every optimiser step, in order.
    ``diverged`` is ``None`` when all epochs ran, else the :class:`Divergence`
    at which training stopped; the epoch it stopped in is then not evaluated
    (the lists end with the last completed epoch).
    """

    task: str
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    diverged: Divergence | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, list]:
        """Plain per-epoch lists, ready for plotting (:func:`isodl.core.plots.plot_history`) or JSON."""
        out = {"epoch": list(self.epoch), "train_loss": list(self.train_loss), "test_loss": list(self.test_loss)}
        if self.task == "classify":
            out["train_accuracy"] = list(self.train_accuracy)
            out["test_accuracy"] = list(self.test_accuracy)
        return out

    def final(self) -> dict[str, float]:
        """The last evaluated epoch's numbers."""
        if not self.epoch:
            raise ValueError("history is empty: fit() has not evaluated any epoch")
        return {k: v[-1] for k, v in self.to_dict().items() if v}

    def __repr__(self) -> str:
        if not self.epoch:
            return f"History(task={self.task!r}, empty)"
        f = self.final()
        parts = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items())
        if self.diverged is not None:
            parts += f", diverged={self.diverged!r}"
        return f"History({parts}, seconds={self.seconds:.1f})"


# --------------------------------------------------------------------------- argument checks


def make_optimizer(
    name: str, params, *, lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.0
) -> torch.optim.Optimizer:
    """Build SGD, Adam or AdamW by name."""
    name = check_choice("optimizer", name, OPTIMIZERS)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
    momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0)
    params = list(params)
    if not params:
        raise ValueError("the model has no parameters to optimise")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _check_optimizer(optimizer) -> torch.optim.Optimizer:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _check_callable(name: str, value, usage: str):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable as {usage} or None, got {type(value).__name__}")
    return value


def _check_hooks(loss_fn, penalty, gradient):
    _check_callable("loss_fn", loss_fn, "loss_fn(outputs, targets)")
    _check_callable("penalty", penalty, "penalty()")
    _check_callable("gradient", gradient, "gradient(model, inputs, targets)")
    if gradient is not None and penalty is not None:
        raise ValueError("give penalty or gradient, not both: a gradient hook computes the whole gradient itself")


def _check_samples(x, y, task: str):
    """``x`` ``[N, ...]`` (floating, N >= 1) and, for classifiers, labels ``y`` ``[N]``."""
    x = check_tensor("x", x, floating=True)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    if task == "classify":
        if y is None:
            raise ValueError("y (class labels) is required when task='classify'")
        y = check_tensor("y", y, ndim=1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    return x, y


def _default_loss(task: str) -> Callable:
    return F.cross_entropy if task == "classify" else F.mse_loss


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# --------------------------------------------------------------------------- the loop


def optimise(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable,
    *,
    loss_fn: Callable | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    gradient: Callable | None = None,
    max_steps: int | None = None,
    epoch: int = 1,
    first_batch: int = 0,
) -> StepRecord:
    """One optimiser step per ``(inputs, targets)`` batch of ``batches``: the loop every driver shares.

    For each batch, in order:

    1. clear the gradients (``optimizer.zero_grad(set_to_none=True)``);
    2. without ``gradient``: ``loss = loss_fn(model(inputs), targets)``, plus
       ``penalty()`` if given, then ``loss.backward()`` (backpropagation);
       with ``gradient``: ``loss = gradient(model, inputs, targets)``, a hook
       that leaves every parameter's gradient in its ``.grad`` by any other
       method (forward sensitivity, truncated BPTT) and returns the loss;
    3. if the loss is not finite, record a :class:`Divergence` ``(epoch,
       first_batch + index, loss)`` and stop *without* the step;
    4. ``optimizer.step()``.

    It stops after ``max_steps`` steps (``None``: when ``batches`` runs out)
    and returns the :class:`StepRecord`. The model is put in training mode.
    Batches are not checked one by one: the functions that build them
    (:func:`train_epoch`, the drivers) check the data once.
    """
    model = _check_model(model)
    optimizer = _check_optimizer(optimizer)
    if not isinstance(batches, Iterable):
        raise TypeError(f"batches must be an iterable of (inputs, targets) pairs, got {type(batches).__name__}")
    _check_hooks(loss_fn, penalty, gradient)
    if gradient is None and loss_fn is None:
        raise ValueError("give loss_fn (for backpropagation) or gradient (a hook that computes the gradients)")
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, minimum=0)
    epoch = check_int("epoch", epoch, minimum=1)
    first_batch = check_int("first_batch", first_batch, minimum=0)
    return _optimise(model, optimizer, batches, loss_fn, penalty, gradient, max_steps, epoch, first_batch)


def _optimise(model, optimizer, batches, loss_fn, penalty, gradient, max_steps, epoch, first_batch) -> StepRecord:
    """:func:`optimise` without the argument checks."""
    record = StepRecord()
    if max_steps == 0:
        return record
    model.train()
    for index, (inputs, targets) in enumerate(batches, start=first_batch):
        optimizer.zero_grad(set_to_none=True)
        if gradient is None:
            loss = loss_fn(model(inputs), targets)
            if penalty is not None:
                loss = loss + penalty()
        else:
            loss = gradient(model, inputs, targets)
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)  # the step's one host sync
        if not math.isfinite(value):
            record.diverged = Divergence(epoch=epoch, batch=index, loss=value)
            break
        if gradient is None:
            loss.backward()
        optimizer.step()
        record.losses.append(value)
        record.batch_sizes.append(inputs.shape[0])
        if max_steps is not None and len(record.losses) >= max_steps:
            break
    return record


def _epoch_batches(x, y, order: torch.Tensor, batch_size: int, task: str, drop_single: bool):
    """The mini-batches ``(inputs, targets)`` of one epoch, in the order of the permutation ``order``."""
    n = order.shape[0]
    if drop_single and n % batch_size == 1:
        order = order[: n - 1]  # BatchNorm cannot normalise a last batch of one sample: it is left out
    for idx in order.split(batch_size):
        inputs = x[idx]
        yield inputs, (y[idx] if task == "classify" else inputs)


def _check_training(model, optimizer, x, y, task, batch_size, generator, loss_fn, penalty, gradient):
    """The checks :func:`train_epoch` and :func:`train_steps` share.

    Returns ``run_epoch(max_steps, epoch)``: one epoch of training on the
    checked values (``loss_fn`` resolved), returning its :class:`StepRecord`.
    """
    model = _check_model(model)
    optimizer = _check_optimizer(optimizer)
    task = check_choice("task", task, TASKS)
    x, y = _check_samples(x, y, task)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    generator = check_generator(generator)
    _check_hooks(loss_fn, penalty, gradient)
    if x.shape[0] == 1 and _has_batchnorm(model):
        raise ValueError("a model with BatchNorm needs at least 2 training samples (it normalises over the batch)")
    loss_fn = loss_fn or _default_loss(task)

    def run_epoch(max_steps: int | None, epoch: int) -> StepRecord:
        order = torch.randperm(x.shape[0], generator=generator)
        batches = _epoch_batches(x, y, order, batch_size, task, _has_batchnorm(model))
        return _optimise(model, optimizer, batches, loss_fn, penalty, gradient, max_steps, epoch, 0)

    return run_epoch


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x,
    y=None,
    *,
    task: str = "classify",
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    loss_fn: Callable | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    gradient: Callable | None = None,
    max_steps: int | None = None,
    epoch: int = 1,
) -> StepRecord:
    """One epoch of mini-batch training with an optimiser you keep; returns its :class:`StepRecord`.

    Draws one permutation of the ``N`` samples from ``generator``
    (``torch.randperm``; ``None`` uses the global generator) and walks it in
    batches of ``batch_size`` (the last batch may be smaller), one
    :func:`optimise` step each. ``task="classify"`` trains ``loss_fn(logits,
    y)`` (default cross-entropy), ``"autoencode"`` ``loss_fn(model(x), x)``
    (default mean squared error; ``y`` is ignored). ``penalty``, ``gradient``
    and ``max_steps`` are passed to :func:`optimise`; ``epoch`` is the number
    recorded in a :class:`Divergence`.

    With BatchNorm layers in the model a last batch of a single sample is left
    out (BatchNorm normalises over the batch). Because the optimiser is yours,
    structural operations can run between epochs (notebooks 06 and 07).
    """
    run_epoch = _check_training(model, optimizer, x, y, task, batch_size, generator, loss_fn, penalty, gradient)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, minimum=0)
    epoch = check_int("epoch", epoch, minimum=1)
    return run_epoch(max_steps, epoch)


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x,
    y=None,
    *,
    steps: int,
    task: str = "classify",
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    loss_fn: Callable | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    gradient: Callable | None = None,
) -> StepRecord:
    """A fixed budget of ``steps`` optimiser steps: epochs of :func:`train_epoch` one after another.

    Each epoch draws a new permutation from ``generator`` only when the
    previous one is used up, so the budget may end mid-epoch (the protocol of
    notebook 11, where every run takes the same number of updates whatever its
    batch size). Stops early at a divergence. The :class:`StepRecord` covers
    all epochs; a :class:`Divergence` names the epoch it happened in.
    """
    run_epoch = _check_training(model, optimizer, x, y, task, batch_size, generator, loss_fn, penalty, gradient)
    steps = check_int("steps", steps, minimum=0)
    record, epoch = StepRecord(), 0
    while record.steps < steps and record.diverged is None:
        epoch += 1
        record.extend(run_epoch(steps - record.steps, epoch))
    return record


# --------------------------------------------------------------------------- predictions and accuracy


@torch.no_grad()
def predict(model: nn.Module, x, *, batch_size: int = 4096) -> torch.Tensor:
    """The model's outputs (logits) for ``x`` ``[N, ...]``: evaluation mode, no gradient, in batches.

    The model's training/evaluation mode is restored afterwards.
    """
    model = _check_model(model)
    x = check_tensor("x", x, floating=True)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(xb) for xb in x.split(batch_size)])
    finally:
        model.train(was_training)


def correct(logits, labels) -> torch.Tensor:
    """Per sample (a bool tensor ``[N]``): is the largest logit the label, with every logit finite?

    A sample whose logits are not all finite counts as wrong, whatever its
    argmax: a network that overflowed on it has not classified it. The one
    rule behind :func:`accuracy`, :func:`evaluate` and every driver's accuracy.
    """
    logits = check_tensor("logits", logits, ndim=2)
    labels = check_tensor("labels", labels, ndim=1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"logits and labels must have the same number of samples, got {logits.shape[0]} and {labels.shape[0]}"
        )
    return (logits.argmax(dim=-1) == labels) & torch.isfinite(logits).all(dim=-1)


@torch.no_grad()
def accuracy(model: nn.Module, x, y, *, batch_size: int = 4096) -> float:
    """Fraction of the samples of ``x`` whose largest logit is their label ``y`` (see :func:`correct`).

    Computed from :func:`predict` (evaluation mode, in batches). A sample whose
    logits are not all finite counts as wrong.
    """
    x, y = _check_samples(x, y, "classify")
    return float(correct(predict(model, x, batch_size=batch_size), y).double().mean())


@torch.no_grad()
def evaluate(
    model: nn.Module, x, y=None, *, task: str = "classify", loss_fn: Callable | None = None, batch_size: int = 1024
) -> dict:
    """Mean loss (and accuracy for classifiers) of ``model`` on ``x`` (targets ``y``; inputs for autoencoders).

    Evaluation mode, no gradient, in batches; the mode is restored afterwards.
    The accuracy follows :func:`correct` (non-finite logits count as wrong).
    """
    model = _check_model(model)
    task = check_choice("task", task, TASKS)
    x, y = _check_samples(x, y, task)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    _check_callable("loss_fn", loss_fn, "loss_fn(outputs, targets)")
    loss_fn = loss_fn or _default_loss(task)
    was_training = model.training
    model.eval()
    total, right, n = 0.0, 0, x.shape[0]
    try:
        for i in range(0, n, batch_size):
            xb = x[i : i + batch_size]
            target = y[i : i + batch_size] if task == "classify" else xb
            out = model(xb)
            total += float(loss_fn(out, target)) * xb.shape[0]
            if task == "classify":
                right += int(correct(out, target).sum())
    finally:
        model.train(was_training)
    result = {"loss": total / n}
    if task == "classify":
        result["accuracy"] = right / n
    return result


# --------------------------------------------------------------------------- epochs with evaluation


def _unpack(data):
    """Accept an :class:`isodl.core.data.Dataset` or a tuple (x_train, y_train, x_test, y_test)."""
    if hasattr(data, "x_train"):
        return data.x_train, data.y_train, data.x_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return tuple(data)
    raise TypeError("data must be an isodl.core.data.Dataset or a tuple (x_train, y_train, x_test, y_test)")


def fit(
    model: nn.Module,
    data,
    *,
    task: str = "classify",
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str | torch.optim.Optimizer = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    seed: int = 0,
    loss_fn: Callable | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[int, nn.Module, History], None] | None = None,
) -> History:
    """Train ``model`` on ``data`` for ``epochs`` epochs of :func:`train_epoch`; return its :class:`History`.

    * ``task``: ``"classify"`` (cross-entropy, accuracy recorded) or
      ``"autoencode"`` (mean squared reconstruction error; labels ignored).
    * ``optimizer``: ``"sgd"``, ``"adam"``, ``"adamw"`` or an optimizer you built
      yourself (then ``lr``, ``weight_decay`` and ``momentum`` are not used).
    * ``seed`` fixes the order of mini-batches (the model's initial weights are
      fixed by :func:`isodl.set_seed` before you build it).
    * ``progress``: a tqdm bar over epochs; ``None`` means on in JupyterLab
      and off in headless runs.
    * ``on_epoch(epoch, model, history)`` is called after each epoch (for
      snapshots such as singular values); it must not change the model's shapes.

    Epoch 0 in the history is the untrained model; the train and test sets are
    evaluated after every epoch. If a loss stops being finite, training stops
    there (before that step) and ``history.diverged`` says where.
    """
    model = _check_model(model)
    task = check_choice("task", task, TASKS)
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    _check_callable("loss_fn", loss_fn, "loss_fn(outputs, targets)")
    _check_callable("on_epoch", on_epoch, "on_epoch(epoch, model, history)")
    x_tr, y_tr, x_te, y_te = _unpack(data)
    x_tr = check_tensor("x_train", x_tr, floating=True)
    x_te = check_tensor("x_test", x_te, floating=True)
    if x_tr.shape[0] == 0:
        raise ValueError("the training set is empty")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(f"train and test inputs differ in shape: {tuple(x_tr.shape[1:])} vs {tuple(x_te.shape[1:])}")
    if task == "classify":
        y_tr = check_tensor("y_train", y_tr, ndim=1)
        y_te = check_tensor("y_test", y_te, ndim=1)
        if y_tr.shape[0] != x_tr.shape[0]:
            raise ValueError(f"x_train and y_train must have the same length, got {x_tr.shape[0]} and {y_tr.shape[0]}")
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    loss_fn = loss_fn or _default_loss(task)
    if progress is None:
        progress = not is_headless()

    history = History(task=task)

    def record(epoch: int) -> None:
        tr = evaluate(model, x_tr, y_tr, task=task, loss_fn=loss_fn)
        te = evaluate(model, x_te, y_te, task=task, loss_fn=loss_fn)
        history.epoch.append(epoch)
        history.train_loss.append(tr["loss"])
        history.test_loss.append(te["loss"])
        if task == "classify":
            history.train_accuracy.append(tr["accuracy"])
            history.test_accuracy.append(te["accuracy"])

    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    record(0)
    bar = None
    if progress and epochs > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="training", unit="epoch", leave=True)
    try:
        for epoch in range(1, epochs + 1):
            steps = train_epoch(
                model, opt, x_tr, y_tr, task=task, batch_size=batch_size, generator=gen, loss_fn=loss_fn, epoch=epoch
            )
            history.step_loss += steps.losses
            if steps.diverged is not None:
                history.diverged = steps.diverged
                if bar is not None:
                    bar.set_postfix({"diverged": f"epoch {epoch}"})
                break
            record(epoch)
            if on_epoch is not None:
                on_epoch(epoch, model, history)
            if bar is not None:
                post = {"test_loss": f"{history.test_loss[-1]:.3g}"}
                if task == "classify":
                    post["test_acc"] = f"{history.test_accuracy[-1]:.3f}"
                bar.set_postfix(post)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    history.seconds = time.perf_counter() - start
    return history
