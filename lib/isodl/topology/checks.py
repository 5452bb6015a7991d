"""Notebooks 05-09 (05, 06, 07, 08, 09): exercise checks (isotropic tanh with length, rotate neurons, remove the last neuron, buffer change, diagonal savings).

One check per notebook. Each compares the learner's function with the library's
reference on random inputs through :func:`isodl.exercises.compare_functions`,
with hints for the usual mistakes, and is registered with
:func:`isodl.exercises.register_check`:

* notebook 05: :func:`check_isotropic_tanh_with_length` --
  ``isotropic_tanh(z, o)`` with the intrinsic length ``o`` of
  :func:`isodl.topology.network.isotropic_tanh_gain`;
* notebook 06: :func:`check_rotate_neurons` -- ``(q^T w_in, q^T b, w_out q)``,
  as :meth:`isodl.topology.network.IsotropicMLP.rotate_layer` rotates a layer;
* notebook 07: :func:`check_remove_last_neuron` -- the compensation of
  :meth:`isodl.topology.network.IsotropicMLP.neurodegeneration` (``o`` and psi);
* notebook 08: :func:`check_buffer_change` -- the width change of one layer
  under the buffer rule :meth:`isodl.topology.network.IsotropicMLP.auto_adapt`;
* notebook 09: :func:`check_diagonal_savings` -- against
  :func:`isodl.topology.sparsity.expected_nonzero_reduction`.
"""

from __future__ import annotations

import torch

from isodl.exercises import CheckResult, exercise_check, matches

__all__ = [
    "ISO_LENGTH_HINTS",
    "check_isotropic_tanh_with_length",
    "ROTATE_NEURONS_HINTS",
    "check_rotate_neurons",
    "REMOVE_LAST_NEURON_HINTS",
    "check_remove_last_neuron",
    "BUFFER_CHANGE_HINTS",
    "check_buffer_change",
    "DIAGONAL_SAVINGS_HINTS",
    "check_diagonal_savings",
]

# --------------------------------------------------------------------------- notebooks 05-09
# (references: isodl.topology.network and isodl.topology.sparsity)


def _iso_length_reference(z, o):
    from isodl.topology import network

    return network.isotropic_tanh_gain(z, o).unsqueeze(-1) * z


def _iso_length_inputs(gen: torch.Generator, trial: int):
    """float64 batches [rows, n] with lengths 0.03..30; o is 0 in even trials, in (0.05, 3) in odd ones;
    every second even trial holds a zero row."""
    rows = int(torch.randint(4, 8, (1,), generator=gen))
    n = int(torch.randint(2, 6, (1,), generator=gen))
    lengths = 10.0 ** (torch.rand(rows, 1, generator=gen, dtype=torch.float64) * 3 - 1.5)
    z = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    z = z / torch.linalg.vector_norm(z, dim=1, keepdim=True) * lengths
    if trial % 2 == 1:
        o = 0.05 + 2.95 * float(torch.rand((), generator=gen, dtype=torch.float64))
    else:
        o = 0.0
        if trial % 4 == 2:
            z[int(torch.randint(0, rows, (1,), generator=gen))] = 0.0
    return (z, o)


def _iso_length_ignores_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and matches(got, _iso_length_reference(z, 0.0))


def _iso_length_squares_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and matches(got, _iso_length_reference(z, o * o))


def _iso_length_sqrt_o(got, expected, inputs) -> bool:
    z, o = inputs
    return o > 0 and matches(got, _iso_length_reference(z, o**0.5))


def _iso_length_elementwise(got, expected, inputs) -> bool:
    return matches(got, torch.tanh(inputs[0]))


def _iso_length_not_divided(got, expected, inputs) -> bool:
    z, o = inputs
    rho = torch.sqrt((z * z).sum(-1, keepdim=True) + o)
    return matches(got, torch.tanh(rho) * z)


def _iso_length_nonfinite(got, expected, inputs) -> bool:
    return not bool(torch.isfinite(torch.as_tensor(got)).all())


ISO_LENGTH_HINTS = (
    (
        _iso_length_nonfinite,
        "a zero row with o = 0 gives rho = 0 and tanh(0)/0 = 0/0; the gain's limit there is 1 (use torch.where with a safe rho)",
    ),
    (_iso_length_ignores_o, "o is missing: rho = sqrt(|z|^2 + o), the intrinsic length enters under the square root"),
    (_iso_length_squares_o, "o is already a squared length: add o itself, not o**2, to |z|^2"),
    (_iso_length_sqrt_o, "add o itself to |z|^2 (o is a squared length), not its square root"),
    (
        _iso_length_elementwise,
        "torch.tanh(z) acts on each coordinate; the isotropic map rescales each whole row by one gain",
    ),
    (_iso_length_not_divided, "tanh(rho) * z is too long: the gain is tanh(rho) / rho"),
)


@exercise_check(
    _iso_length_reference,
    _iso_length_inputs,
    label="isotropic_tanh (with intrinsic length)",
    rtol=1e-06,
    atol=1e-09,
    hints=ISO_LENGTH_HINTS,
)
def check_isotropic_tanh_with_length(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-05 exercise ``isotropic_tanh(z, o)`` (rows of ``z``, intrinsic length ``o``).

    Reference: ``g(rho) z`` with ``g = tanh(rho)/rho``, ``rho = sqrt(|z|^2 + o)``
    (:func:`isodl.topology.network.isotropic_tanh_gain`). Float64 batches with row
    lengths 0.03 to 30; ``o = 0`` (sometimes with a zero row, where the
    output must be 0) alternates with ``o`` between 0.05 and 3.
    """


def _rotate_neurons_reference(w_in, b, w_out, q):
    return q.T @ w_in, q.T @ b, w_out @ q


def _rotate_neurons_inputs(gen: torch.Generator):
    n = int(torch.randint(3, 7, (1,), generator=gen))
    m = int(torch.randint(2, 7, (1,), generator=gen))
    p = int(torch.randint(2, 6, (1,), generator=gen))
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    w_in = torch.randn(n, m, generator=gen, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    w_out = torch.randn(p, n, generator=gen, dtype=torch.float64)
    return (w_in, b, w_out, q)


def _rotate_neurons_q_not_transposed(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return matches(got[0], q @ w_in)


def _rotate_neurons_out_side(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return matches(got[2], w_out @ q.T)


def _rotate_neurons_bias(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return matches(got[1], b) or matches(got[1], q @ b)


ROTATE_NEURONS_HINTS = (
    (
        _rotate_neurons_q_not_transposed,
        "the new pre-activation is Q^T z, so the incoming weights become Q^T W_in (transpose Q)",
    ),
    (_rotate_neurons_bias, "the bias lives in the same space as z: it becomes Q^T b"),
    (
        _rotate_neurons_out_side,
        "the next layer must undo the rotation: W_out (Q Q^T) = (W_out Q) Q^T, so W_out becomes W_out Q",
    ),
)


@exercise_check(_rotate_neurons_reference, _rotate_neurons_inputs, rtol=1e-10, atol=1e-12, hints=ROTATE_NEURONS_HINTS)
def check_rotate_neurons(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-06 exercise ``rotate_neurons(w_in, b, w_out, q)`` -> ``(q^T w_in, q^T b, w_out q)``.

    The rotation the library applies in :meth:`isodl.topology.network.IsotropicMLP.rotate_layer`
    (psi terms aside), on random float64 shapes and orthogonal ``q``.
    """


def _remove_last_neuron_reference(w_in, b, w_out, psi, o):
    b_star = b[-1]
    w_star = w_out[:, -1]
    return w_in[:-1], b[:-1], w_out[:, :-1], psi + b_star * w_star, float(o + b_star**2)


def _remove_last_neuron_inputs(gen: torch.Generator):
    n = int(torch.randint(3, 7, (1,), generator=gen))
    m = int(torch.randint(2, 6, (1,), generator=gen))
    p = int(torch.randint(2, 6, (1,), generator=gen))
    w_in = torch.randn(n, m, generator=gen, dtype=torch.float64)
    w_in[-1] = 0.0  # a neuron with zero singular value, as after diagonalising
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    w_out = torch.randn(p, n, generator=gen, dtype=torch.float64)
    psi = torch.randn(p, generator=gen, dtype=torch.float64)
    o = float(torch.rand((), generator=gen, dtype=torch.float64))
    return (w_in, b, w_out, psi, o)


def _rln_no_o(got, expected, inputs) -> bool:
    return abs(float(got[4]) - inputs[4]) < 1e-12


def _rln_o_not_squared(got, expected, inputs) -> bool:
    b = inputs[1]
    return (
        abs(float(got[4]) - (inputs[4] + float(b[-1]))) < 1e-9
        or abs(float(got[4]) - (inputs[4] + abs(float(b[-1])))) < 1e-9
    )


def _rln_no_psi(got, expected, inputs) -> bool:
    return matches(got[3], inputs[3])


def _rln_psi_row(got, expected, inputs) -> bool:
    w_in, b, w_out, psi, o = inputs
    return got[3].shape == psi.shape and not matches(got[3], expected[3])


REMOVE_LAST_NEURON_HINTS = (
    (_rln_no_o, "o must absorb the removed neuron's share of |z|^2: o + b*^2"),
    (_rln_o_not_squared, "o is a squared length: add b*^2, not b*"),
    (_rln_no_psi, "psi must take over the neuron's constant output: psi + b* W_out[:, -1]"),
    (_rln_psi_row, "the neuron's outgoing weights are a column of W_out (W_out[:, -1]), scaled by its bias b* = b[-1]"),
)


@exercise_check(
    _remove_last_neuron_reference, _remove_last_neuron_inputs, rtol=1e-10, atol=1e-12, hints=REMOVE_LAST_NEURON_HINTS
)
def check_remove_last_neuron(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-07 exercise ``remove_last_neuron(w_in, b, w_out, psi, o)``.

    Expected: ``(w_in[:-1], b[:-1], w_out[:, :-1], psi + b[-1] * w_out[:, -1], o + b[-1]**2)``,
    the compensated removal of :meth:`isodl.topology.network.IsotropicMLP.neurodegeneration`.
    """


def _buffer_change_reference(strengths, threshold, buffer):
    """The width change :meth:`IsotropicMLP.auto_adapt` applies to one layer with these neuron strengths."""
    strengths = torch.as_tensor(strengths, dtype=torch.float64)
    weak = int((strengths <= threshold).sum())
    if weak < buffer:
        return buffer - weak
    return -min(weak - buffer, strengths.numel() - 1)


def _buffer_change_inputs(gen: torch.Generator, trial: int):
    """Strengths in [0, 2) with exact zeros (scaffolds) and, in some trials, values exactly at the threshold;
    trial 3 is a layer whose neurons are all weak with no buffer (the one-neuron floor applies)."""
    n = int(torch.randint(3, 12, (1,), generator=gen))
    s = 2.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    threshold = 0.95
    if trial % 2 == 1:
        s[: n // 3] = 0.0
    if trial % 3 == 0:
        s[-1] = threshold
    if trial == 3:
        s = 0.5 * s.clamp(max=1.0)
    buffer = 0 if trial == 3 else int(torch.randint(0, 6, (1,), generator=gen))
    return (s.sort(descending=True).values, threshold, buffer)


def _bc_strict(got, expected, inputs) -> bool:
    s, threshold, buffer = inputs
    return (
        int(got) == _buffer_change_reference(s[s != threshold], threshold, buffer)
        if bool((s == threshold).any())
        else False
    )


def _bc_sign(got, expected, inputs) -> bool:
    return int(expected) != 0 and int(got) == -int(expected)


def _bc_no_floor(got, expected, inputs) -> bool:
    s, threshold, buffer = inputs
    weak = int((s <= threshold).sum())
    return weak - buffer > s.numel() - 1 and int(got) == buffer - weak


BUFFER_CHANGE_HINTS = (
    (_bc_sign, "positive means neurons are added (too few weak ones), negative means the weakest are removed"),
    (_bc_strict, "a neuron is weak when its strength is at most the threshold (<=, not <)"),
    (_bc_no_floor, "a layer keeps at least one neuron: remove at most len(strengths) - 1"),
)


@exercise_check(_buffer_change_reference, _buffer_change_inputs, hints=BUFFER_CHANGE_HINTS)
def check_buffer_change(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-08 exercise ``buffer_change(strengths, threshold, buffer)``: the change in a layer's width
    under the buffer rule (``buffer - weak`` when too few neurons are weak, minus the excess, at most ``n - 1``)."""


def _diagonal_savings_reference(widths, layers):
    from isodl.topology import sparsity

    return sparsity.expected_nonzero_reduction(list(widths), list(layers))


def _diagonal_savings_inputs(gen: torch.Generator, trial: int):
    n_hidden = int(torch.randint(2, 7, (1,), generator=gen))
    if trial == 0:
        widths = [int(torch.randint(3, 9, (1,), generator=gen))] + [6] * n_hidden + [3]  # square hidden layers
    else:
        widths = [int(v) for v in torch.randint(2, 12, (n_hidden + 2,), generator=gen)]
    start = 1 + trial % 2 if n_hidden >= 3 else 1
    layers = list(range(start, n_hidden, 2))
    return (widths, layers)


def _ds_square_only(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(widths[k + 1] ** 2 - widths[k + 1] for k in layers)


def _ds_index_shift(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(widths[k] * widths[k - 1] - min(widths[k], widths[k - 1]) for k in layers)


def _ds_counts_remaining(got, expected, inputs) -> bool:
    widths, layers = inputs
    return int(got) == sum(min(widths[k], widths[k + 1]) for k in layers)


DIAGONAL_SAVINGS_HINTS = (
    (
        _ds_counts_remaining,
        "return how many weights become zero (n_out * n_in - min(n_out, n_in) per layer), not how many remain",
    ),
    (
        _ds_square_only,
        "hidden widths differ: W_k has shape widths[k+1] x widths[k], so it saves widths[k+1] * widths[k] - min of the two",
    ),
    (_ds_index_shift, "W_k maps widths[k] to widths[k+1] (it reads hidden layer k-1, whose width is widths[k])"),
)


@exercise_check(_diagonal_savings_reference, _diagonal_savings_inputs, hints=DIAGONAL_SAVINGS_HINTS)
def check_diagonal_savings(fn, *, n_trials: int = 6, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-09 exercise ``diagonal_savings(widths, layers)`` against
    :func:`isodl.topology.sparsity.expected_nonzero_reduction` on random widths (square and not)."""
