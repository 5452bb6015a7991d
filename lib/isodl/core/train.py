"""Every notebook that trains (00, 03-08, 10, 11): the one training loop, evaluation and accuracy.

A small, readable training loop for classifiers and autoencoders.

::

    isodl.set_seed(0)
    model = MLP([64, 32, 10])
    history = fit(model, isodl.core.data.digits(), epochs=20, lr=3e-3)
    history.final()   # {'epoch': 20, 'train_loss': ..., 'test_loss': ..., 'test_accuracy': ...}

Everything the loop records comes back as plain data (:class:`History`, whose
``to_dict()`` holds lists of floats), so notebooks can plot it, assert on it and
compare runs. Shuffling uses its own ``torch.Generator`` seeded by ``seed``, so
the same seed and the same initial model give the same history. A tqdm bar
shows progress in JupyterLab; headless runs stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from isodl.core.config import is_headless
from isodl.core.validate import check_choice, check_float, check_int, check_tensor, check_widths

__all__ = ["TASKS", "OPTIMIZERS", "ACTIVATIONS", "MLP", "History", "make_optimizer", "evaluate", "fit"]

TASKS = ("classify", "autoencode")
OPTIMIZERS = ("sgd", "adam", "adamw")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


class MLP(nn.Module):
    """A plain multilayer perceptron: Linear layers with an elementwise activation between them.

    ``widths = [d_in, h_1, ..., d_out]``; no activation after the last layer.
    Later notebooks swap the activation for isotropic ones; this is the baseline.
    """

    def __init__(self, widths: Sequence[int], activation: str = "tanh", bias: bool = True):
        super().__init__()
        widths = check_widths(widths)
        act = check_choice("activation", activation, ACTIVATIONS)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < len(widths) - 2:
                layers.append(ACTIVATIONS[act]())
        self.net = nn.Sequential(*layers)
        self.widths = widths
        self.activation = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class History:
    """What :func:`fit` measured, one entry per evaluated epoch (epoch 0 = before training)."""

    task: str
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, list]:
        """Plain lists, ready for plotting (:func:`isodl.core.plots.plot_history`) or JSON."""
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
        return f"History({parts}, seconds={self.seconds:.1f})"


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


def _unpack(data):
    """Accept an :class:`isodl.core.data.Dataset` or a tuple (x_train, y_train, x_test, y_test)."""
    if hasattr(data, "x_train"):
        return data.x_train, data.y_train, data.x_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return tuple(data)
    raise TypeError("data must be an isodl.core.data.Dataset or a tuple (x_train, y_train, x_test, y_test)")


def _default_loss(task: str) -> Callable:
    return nn.CrossEntropyLoss() if task == "classify" else nn.MSELoss()


@torch.no_grad()
def evaluate(
    model: nn.Module, x, y=None, *, task: str = "classify", loss_fn: Callable | None = None, batch_size: int = 1024
) -> dict:
    """Mean loss (and accuracy for classifiers) of ``model`` on ``x`` (targets ``y``; inputs for autoencoders)."""
    task = check_choice("task", task, TASKS)
    x = check_tensor("x", x, floating=True)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
    if task == "classify":
        if y is None:
            raise ValueError("y (class labels) is required when task='classify'")
        y = check_tensor("y", y, ndim=1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    loss_fn = loss_fn or _default_loss(task)
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, x.shape[0]
    for i in range(0, n, batch_size):
        xb = x[i : i + batch_size]
        target = y[i : i + batch_size] if task == "classify" else xb
        out = model(xb)
        total += float(loss_fn(out, target)) * xb.shape[0]
        if task == "classify":
            correct += int((out.argmax(dim=-1) == target).sum())
    model.train(was_training)
    result = {"loss": total / n}
    if task == "classify":
        result["accuracy"] = correct / n
    return result


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
    """Train ``model`` on ``data`` with mini-batches and return its :class:`History`.

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

    Epoch 0 in the history is the untrained model.
    """
    task = check_choice("task", task, TASKS)
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
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
        n = x_tr.shape[0]
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                xb = x_tr[idx]
                target = y_tr[idx] if task == "classify" else xb
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), target)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss became {loss.item()} at epoch {epoch}; lower lr (now {lr}) or check the data"
                    )
                loss.backward()
                opt.step()
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
