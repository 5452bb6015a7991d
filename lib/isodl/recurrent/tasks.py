"""Notebook 11: the delayed-recall task and its training driver.

Exact online gradients for recurrent networks: forward sensitivity versus BPTT.

This module backs the course unit on Bird & Polivoda, "Backpropagation Through
Time For Networks With Long-Term Dependencies" (arXiv 2103.15589). Everything
below is the course's own derivation and code, checked against
``torch.autograd``; none of it reproduces numbers from the paper.

The recurrence and its sensitivity
----------------------------------
A recurrent model updates a state and reads an output from it::

    h_t = f(h_(t-1), x_t; theta_t),      y_t = g(h_t; theta_t),      h_(-1) = 0

(steps are numbered ``t = 0 ... T-1`` in the code). The sensitivity of the
state to the recurrent parameters, ``S_t = dh_t/dtheta`` (shape
``[state_size, n_recurrent_params]``, one per sequence in a batch), obeys the
discrete forward sensitivity equation::

    S_t = J_t S_(t-1) + F_t,   S_(-1) = 0,   J_t = df/dh_(t-1),   F_t = df/dtheta

and for a loss that is a sum of per-step terms ``L = sum_t l_t(y_t)``::

    dL/dtheta = sum_t (dl_t/dh_t) S_t      (+ the readout's own gradient).

Unrolled, ``S_t = sum_(tau <= t) J_t ... J_(tau+1) F_tau`` keeps every path
back to the first step, so the gradient is exact; it is the same algorithm as
real-time recurrent learning (RTRL, Williams & Zipser 1989). Because the sum
runs forward in time, the gradient of the loss seen so far is available after
every step, with no backward pass: :func:`forward_sensitivity_steps` yields it.

Costs (n = state size, P = recurrent parameters, about n^2): the product
``J_t S_(t-1)`` costs O(n P) = O(n^4) per step and S takes O(n P) = O(n^3)
memory whatever the sequence length T. BPTT costs O(P) per step but stores T
states. :func:`measure_cost` and ``benchmarks/bench_rnn.py`` measure both.

Design decisions
----------------
Loss decomposition
    Forward sensitivity and sliding-window truncated BPTT need the loss one
    step at a time. Any ``loss_fn(outputs, targets)`` that takes a tensor whose
    first dimension is time is accepted if it is the **sum** or the **mean**
    over steps of its values on single steps, i.e. if
    ``loss_fn(Y, tgt) == s * sum_t loss_fn(Y[t:t+1], tgt[t:t+1])`` with
    ``s = 1`` or ``s = 1/T``. ``nn.MSELoss``, ``nn.L1Loss``,
    ``nn.BCEWithLogitsLoss`` and ``nn.CrossEntropyLoss`` (on ``[T, C]``
    outputs) qualify with reduction ``'sum'`` or ``'mean'``, as do per-step
    masked losses such as :func:`recall_loss`. With the default
    ``time_reduction="auto"`` the functions check this on the model's actual
    outputs (and on a perturbed copy) and raise a ``ValueError`` otherwise; a
    loss that picks steps by indexing (``Y[-1]``), pools over time, or
    averages over only the unmasked positions (``ignore_index`` with
    ``reduction='mean'``) is rejected. Pass ``time_reduction="sum"`` or
    ``"mean"`` to skip the check (a fully online run with nothing computed
    ahead). Within one step, autograd differentiates the step's loss through
    the readout only (to get ``dl_t/dh_t`` and the readout gradient); nothing
    is ever propagated backward across steps.

Truncated BPTT
    :func:`truncated_bptt_gradients` implements two variants.
    ``variant="sliding"`` (default): the gradient of each loss term ``l_t``
    flows back through the last ``k`` state updates, ``h_t, h_(t-1), ...,
    h_(t-k+1)``; the state ``h_(t-k)`` is treated as a constant. So
    ``dl_t/dx_tau`` is exactly zero for ``tau <= t - k``, and TBPTT(k) equals
    the exact gradient when ``k >= T``. ``variant="chunked"``: the sequence is
    cut into consecutive chunks of ``k`` steps and the state is detached at
    every chunk boundary, so ``l_t`` reaches back only to the start of its own
    chunk (between 1 and k steps).

Parameters that change between steps (drift)
    Every model can add a fixed per-step increment ``Delta`` to any parameter:
    step ``t`` uses ``theta_t = theta + t * Delta`` (``t = 0`` for the first
    step, so the first step uses ``theta`` itself). Set it with
    :meth:`RecurrentModel.set_drift` or :meth:`RecurrentModel.random_drift`.
    Because ``d theta_t / d theta`` is the identity, the gradient with respect
    to the ``nn.Parameter`` ``theta`` is the gradient with respect to a shared
    offset added to every ``theta_t`` -- the quantity the forward sensitivity
    computes when it evaluates ``J_t`` and ``F_t`` at each step's own
    ``theta_t``. ``loss.backward()`` on the model is therefore the autograd
    reference, with no extra machinery.

Interacting loops
    :class:`CoupledTanhRNN` has two states that read each other. Its Jacobian
    is assembled from blocks, ``[[dA/dA, dA/dB], [dB/dA, dB/dB]]``, and its
    ``F`` is the stack ``[dA/dtheta; dB/dtheta]``. With
    ``coupling="same_step"`` loop B reads A's *new* state; the B row then
    uses the freshly updated ``S^A_t`` (see :meth:`CoupledTanhRNN.cell_jacobians`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from isodl.core.validate import check_choice, check_float, check_int, check_tensor
from isodl.recurrent.models import IGNORE_INDEX, TanhRNN
from isodl.recurrent.sensitivity import bptt_gradients, forward_sensitivity_gradients, truncated_bptt_gradients

__all__ = ["recall_task", "recall_loss", "RECALL_METHODS", "train_recall"]


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
    dtype: torch.dtype = torch.float64,
):
    """Train a fresh :class:`TanhRNN` on :func:`recall_task` with one gradient method (notebook 11).

    ``method`` is ``"forward"`` (exact forward sensitivity), ``"bptt"`` (exact,
    backward) or ``"tbptt"`` (chunked truncated BPTT with window ``k``). The
    gradient is handed to Adam (``lr``); every update draws a fresh batch of
    sequences, seeded by ``seed`` and the update number, so the three methods
    see exactly the same data for the same seed. The model's initial weights
    are fixed by ``seed`` as well.

    Returns ``(model, initial_weights, (updates_evaluated, test_accuracies))``:
    the test accuracy (on ``test_batch`` held-out sequences, answer at the
    last step) is recorded every ``eval_every`` updates and at the end.
    """
    method = check_choice("method", method, RECALL_METHODS)
    seed = check_int("seed", seed, minimum=0)
    updates = check_int("updates", updates, minimum=0)
    delay = check_int("delay", delay, minimum=1)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    k = check_int("k", k, minimum=1)
    eval_every = check_int("eval_every", eval_every, minimum=1)
    test_batch = check_int("test_batch", test_batch, minimum=1)
    torch.manual_seed(seed)
    net = TanhRNN(n_symbols + 1, hidden_size, n_symbols, dtype=dtype)
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    x_test, y_test = recall_task(delay, n_symbols, seed=10_000 * seed + 9_999, batch=test_batch, dtype=dtype)
    steps, accuracies = [], []
    for update in range(updates + 1):
        if update % eval_every == 0 or update == updates:
            with torch.no_grad():
                steps.append(update)
                accuracies.append(float((net(x_test)[-1].argmax(-1) == y_test[-1]).double().mean()))
        if update == updates:
            break
        x, y = recall_task(delay, n_symbols, seed=10_000 * seed + update, batch=batch, dtype=dtype)
        if method == "forward":
            grads = forward_sensitivity_gradients(net, x, y, recall_loss, time_reduction="sum")
        elif method == "bptt":
            grads = bptt_gradients(net, x, y, recall_loss)
        else:
            grads = truncated_bptt_gradients(net, x, y, recall_loss, k, variant="chunked")
        for name, p in net.named_parameters():
            p.grad = grads[name]
        optimiser.step()
    return net, initial, (steps, accuracies)
