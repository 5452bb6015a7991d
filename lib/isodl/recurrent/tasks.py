"""Notebook 13: the delayed-recall task and its training driver.

A long-term dependency to learn online. :func:`recall_task` shows a symbol at
step 0 and asks for it at step ``T`` (the targets are
:data:`isodl.recurrent.models.IGNORE_INDEX` elsewhere); :func:`recall_loss` is its
masked cross-entropy, which decomposes exactly over steps, so every gradient
method of :mod:`isodl.recurrent.sensitivity` accepts it. :func:`train_recall`
trains a fresh :class:`isodl.recurrent.models.TanhRNN` with one of
:data:`RECALL_METHODS` (exact forward sensitivity, exact BPTT, chunked truncated
BPTT), the three on the same data for the same seed.

The task and its protocol are the course's own (Bird & Polivoda, arXiv
2103.15589, motivates them); none of it reproduces numbers from the paper.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from isodl.core.train import Divergence, correct, optimise
from isodl.core.validate import check_bool, check_choice, check_float, check_int, check_ints, check_tensor
from isodl.recurrent.models import IGNORE_INDEX, TanhRNN
from isodl.recurrent.sensitivity import forward_sensitivity_steps, truncated_bptt_gradients

__all__ = [
    "recall_task",
    "recall_loss",
    "RECALL_METHODS",
    "RecallRun",
    "train_recall",
    "recall_stream",
    "OnlineRun",
    "train_online",
]


# --------------------------------------------------------------------------- #
# Recall task
# --------------------------------------------------------------------------- #


def recall_task(
    T: int,
    n_symbols: int,
    seed: int = 0,
    *,
    batch: int | None = None,
    noise: float = 0.0,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A long-term dependency: report at step ``T`` the symbol shown at step 0.

    The sequence has ``T + 1`` steps, ``t = 0 ... T``, and ``n_symbols + 1``
    input channels. Step 0 carries the symbol one-hot in the first
    ``n_symbols`` channels; step ``T`` raises the last channel (the "recall
    now" cue); the steps in between are blank, plus Gaussian noise of
    standard deviation ``noise`` on every channel at every step if ``noise >
    0``. Targets are class indices: the symbol at step ``T`` and
    :data:`IGNORE_INDEX` elsewhere, so with :func:`recall_loss` the loss sits
    at step ``T`` only.

    Returns ``(inputs, targets)``: ``[T+1, n_symbols+1]`` and ``[T+1]``, or
    ``[T+1, B, n_symbols+1]`` and ``[T+1, B]`` with ``batch=B``. The draw uses
    its own generator seeded with ``seed``.
    """
    T = check_int("T", T, minimum=1)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    noise = check_float("noise", noise, minimum=0.0)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    gen = torch.Generator().manual_seed(seed)
    B = 1 if batch is None else batch
    symbols = torch.randint(0, n_symbols, (B,), generator=gen)
    inputs = torch.zeros(T + 1, B, n_symbols + 1, dtype=torch.float64)
    inputs[0, torch.arange(B), symbols] = 1.0
    inputs[T, :, n_symbols] = 1.0
    if noise > 0:
        inputs += noise * torch.randn(inputs.shape, generator=gen, dtype=torch.float64)
    targets = torch.full((T + 1, B), IGNORE_INDEX, dtype=torch.long)
    targets[T] = symbols
    inputs = inputs.to(dtype)
    if batch is None:
        return inputs[:, 0], targets[:, 0]
    return inputs, targets


def recall_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the steps with a target, averaged over sequences.

    ``outputs`` ``[T, C]`` or ``[T, B, C]`` (logits), ``targets`` ``[T]`` or
    ``[T, B]`` with :data:`IGNORE_INDEX` where there is no loss. It
    decomposes exactly over steps (a step without a target adds 0), so it
    works with every gradient method of this module.
    """
    outputs = check_tensor("outputs", outputs, ndim=(2, 3), floating=True)
    targets = check_tensor("targets", targets, ndim=outputs.ndim - 1)
    if tuple(targets.shape) != tuple(outputs.shape[:-1]):
        raise ValueError(
            f"targets must have shape {list(outputs.shape[:-1])} (outputs without the class dimension), "
            f"got {list(targets.shape)}"
        )
    n_seq = 1 if outputs.ndim == 2 else outputs.shape[1]
    total = F.cross_entropy(
        outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1).long(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return total / n_seq


#: Gradient methods :func:`train_recall` can train with.
RECALL_METHODS = ("forward", "bptt", "tbptt")


@dataclass(frozen=True)
class RecallRun:
    """One run of :func:`train_recall`: the trained model, its initial weights, the test curve, any divergence.

    ``curve`` is the pair ``(updates, accuracies)``: the update counts at which
    the test accuracy was measured and the accuracies. ``diverged`` is
    ``None``, or the :class:`~isodl.core.train.Divergence` at which training
    stopped (``epoch`` 1, ``batch`` the update). A run unpacks and indexes
    like the triple ``(model, initial, curve)``::

        net, initial, (updates, accuracies) = train_recall("bptt", 0)
    """

    model: TanhRNN
    initial: dict[str, torch.Tensor]
    curve: tuple[list[int], list[float]]
    diverged: Divergence | None = None

    def _triple(self) -> tuple:
        return (self.model, self.initial, self.curve)

    def __iter__(self) -> Iterator:
        return iter(self._triple())

    def __getitem__(self, index):
        return self._triple()[index]

    def __len__(self) -> int:
        return 3


def _set_gradients(model, grads: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        p.grad = grads[name]


def _forward_sensitivity_gradient(model, inputs, targets) -> torch.Tensor:
    """Gradient hook: exact gradients by forward sensitivity into ``.grad``; returns the loss."""
    last = None
    for last in forward_sensitivity_steps(model, inputs, targets, recall_loss, time_reduction="sum"):
        pass  # the sensitivity runs forward in time; the last step holds the gradient of the whole loss
    _set_gradients(model, last.gradients)
    return last.loss


def _chunked_tbptt_gradient(k: int):
    """Gradient hook: chunked truncated BPTT with window ``k`` into ``.grad``; returns the (untruncated) loss."""

    def gradient(model, inputs, targets) -> torch.Tensor:
        _set_gradients(model, truncated_bptt_gradients(model, inputs, targets, recall_loss, k, variant="chunked"))
        with torch.no_grad():
            return recall_loss(model(inputs), targets)

    return gradient


def train_recall(
    method: str,
    seed: int,
    *,
    updates: int = 300,
    delay: int = 20,
    n_symbols: int = 3,
    hidden_size: int = 16,
    batch: int = 16,
    lr: float = 0.02,
    k: int = 7,
    eval_every: int = 25,
    test_batch: int = 300,
    zero_symbol_columns: bool = False,
    recurrent_gain: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> RecallRun:
    """Train a fresh :class:`TanhRNN` on :func:`recall_task` with one gradient method (notebook 13).

    ``method`` is ``"forward"`` (exact forward sensitivity), ``"bptt"`` (exact,
    backward: autograd's ``loss.backward()``, the loop's default) or
    ``"tbptt"`` (chunked truncated BPTT with window ``k``). Training is the
    course's one loop, :func:`isodl.core.train.optimise`: ``"bptt"`` is its
    default backpropagation of :func:`recall_loss`, ``"forward"`` and
    ``"tbptt"`` enter it as a ``gradient`` hook that fills each parameter's
    ``.grad``; the gradient is handed to Adam (``lr``). Every update draws a
    fresh batch of sequences, seeded by ``seed`` and the update number, so the
    three methods see exactly the same data for the same seed. The model's
    initial weights come from a generator seeded with ``seed`` (the global
    random state is not used).

    Returns a :class:`RecallRun`, which unpacks as ``(model, initial_weights,
    (updates_evaluated, test_accuracies))``: the test accuracy (on
    ``test_batch`` held-out sequences, answer at the last step, by the rule of
    :func:`isodl.core.train.correct`) is recorded every ``eval_every`` updates
    and at the end. ``zero_symbol_columns=True`` sets the columns of ``W_xh``
    that read the symbol to zero at initialisation, so the network starts
    with no trace of the symbol at all and only a gradient that reaches step 0
    can build one (truncated BPTT with ``k <= delay`` never does).
    ``recurrent_gain`` is passed to :class:`TanhRNN`. If a loss stops being finite, training stops before that
    update, the accuracy of the last finite weights closes the curve, and
    ``run.diverged`` says where.
    """
    method = check_choice("method", method, RECALL_METHODS)
    seed = check_int("seed", seed, minimum=0)
    updates = check_int("updates", updates, minimum=0)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    delay, hidden_size, batch, k, eval_every = check_ints(
        minimum=1, delay=delay, hidden_size=hidden_size, batch=batch, k=k, eval_every=eval_every
    )
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    test_batch = check_int("test_batch", test_batch, minimum=1)
    zero_symbol_columns = check_bool("zero_symbol_columns", zero_symbol_columns)
    net = TanhRNN(
        n_symbols + 1,
        hidden_size,
        n_symbols,
        recurrent_gain=recurrent_gain,
        dtype=dtype,
        generator=torch.Generator().manual_seed(seed),
    )
    if zero_symbol_columns:
        with torch.no_grad():
            net.W_xh[:, :n_symbols] = 0.0
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    x_test, y_test = recall_task(delay, n_symbols, seed=10_000 * seed + 9_999, batch=test_batch, dtype=dtype)
    gradient = {"forward": _forward_sensitivity_gradient, "bptt": None, "tbptt": _chunked_tbptt_gradient(k)}[method]

    def batches(start: int, stop: int):
        for update in range(start, stop):
            yield recall_task(delay, n_symbols, seed=10_000 * seed + update, batch=batch, dtype=dtype)

    evaluated, accuracies = [], []

    def evaluate(done: int) -> None:
        with torch.no_grad():
            evaluated.append(done)
            accuracies.append(float(correct(net(x_test)[-1], y_test[-1]).double().mean()))

    done, diverged = 0, None
    evaluate(0)
    while done < updates and diverged is None:
        record = optimise(
            net,
            optimiser,
            batches(done, min(done + eval_every, updates)),
            loss_fn=recall_loss,
            gradient=gradient,
            first_batch=done,
        )
        done, diverged = done + record.steps, record.diverged
        if done > evaluated[-1]:
            evaluate(done)
    return RecallRun(net, initial, (evaluated, accuracies), diverged)


# --------------------------------------------------------------------------- #
# Learning online, inside one long sequence
# --------------------------------------------------------------------------- #


def recall_stream(
    episodes: int, delay: int, n_symbols: int, seed: int = 0, *, batch: int = 16, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``episodes`` recall tasks (:func:`recall_task`) back to back: one long sequence per stream, no reset between them.

    Returns ``(inputs, targets)`` of shapes ``[episodes * (delay + 1), batch, n_symbols + 1]`` and
    ``[episodes * (delay + 1), batch]``; a target sits at every cue. Episode ``e`` is drawn from seed
    ``100_000 * seed + e``.
    """
    episodes = check_int("episodes", episodes, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    parts = [recall_task(delay, n_symbols, seed=100_000 * seed + e, batch=batch, dtype=dtype) for e in range(episodes)]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


@dataclass(frozen=True)
class OnlineRun:
    """One run of :func:`train_online`: the accuracy at every cue (mean over streams) and the updates made during the stream."""

    accuracies: list[float]
    updates_during_stream: int
    model: TanhRNN


def train_online(
    method: str,
    seed: int,
    *,
    episodes: int = 60,
    delay: int = 7,
    n_symbols: int = 2,
    hidden_size: int = 16,
    batch: int = 16,
    lr: float = 0.02,
    k: int = 4,
    dtype: torch.dtype = torch.float64,
) -> OnlineRun:
    """Learn the recall task *during* one long stream of episodes (:func:`recall_stream`), never resetting the state.

    * ``"forward"``: forward sensitivity (RTRL) runs along the stream; at every cue the gradient of that cue's loss
      (the increment of the running gradient) goes to Adam at once, and the next steps use the new weights (the
      sensitivity carries on across the update, as in RTRL);
    * ``"tbptt"``: online truncated BPTT: the state is detached every ``k`` steps and after every update; an update at
      every cue, the same rate;
    * ``"bptt"``: exact BPTT needs the whole stream before its first update, so the weights do not change during it.

    The symbol-reading columns of ``W_xh`` start at zero (as :func:`train_recall` with ``zero_symbol_columns=True``).
    The accuracy at each cue is measured *before* that cue's update. Notebook 13.
    """
    method = check_choice("method", method, RECALL_METHODS)
    seed = check_int("seed", seed, minimum=0)
    k = check_int("k", k, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    x, y = recall_stream(episodes, delay, n_symbols, seed, batch=batch, dtype=dtype)
    net = TanhRNN(n_symbols + 1, hidden_size, n_symbols, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        net.W_xh[:, :n_symbols] = 0.0
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    cue = y[:, 0] != IGNORE_INDEX
    accuracies, updates = [], 0
    if method == "forward":
        previous = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
        for step in forward_sensitivity_steps(net, x, y, recall_loss, time_reduction="sum"):
            if not cue[step.t]:
                continue
            with torch.no_grad():
                logits = net.readout(step.state, dict(net.named_parameters()))
                accuracies.append(float(correct(logits, y[step.t]).double().mean()))
            for name, p in net.named_parameters():
                p.grad = step.gradients[name] - previous[name]  # this cue's loss only
            previous = {name: g.clone() for name, g in step.gradients.items()}
            optimiser.step()
            updates += 1
    elif method == "tbptt":
        params = dict(net.named_parameters())
        h = net.initial_state(batch)
        for t in range(x.shape[0]):
            if t % k == 0:
                h = h.detach()
            h = net.cell(h, x[t], params)
            if cue[t]:
                logits = net.readout(h, params)
                accuracies.append(float(correct(logits.detach(), y[t]).double().mean()))
                optimiser.zero_grad()
                F.cross_entropy(logits, y[t]).backward()
                optimiser.step()
                updates += 1
                h = h.detach()
    else:
        with torch.no_grad():
            logits = net(x)[cue]
        accuracies = [float(correct(lg, yy).double().mean()) for lg, yy in zip(logits, y[cue])]
    return OnlineRun(accuracies=accuracies, updates_during_stream=updates, model=net)
