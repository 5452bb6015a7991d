"""Notebooks 05-09 (05, 06, 07, 08, 09): exercise checks (isotropic tanh with length, rotate neurons, remove the last neuron, buffer change, alternating fraction).

One check per notebook. Each compares the learner's function with the library's
reference on random inputs through :func:`isodl.exercises.compare_functions`,
with hints for the usual mistakes, and is registered with
:func:`isodl.exercises.register_check`:

* notebook 05: :func:`check_isotropic_tanh_with_length` --
  ``isotropic_tanh(z, o)`` with the intrinsic length ``o`` of
  :func:`isodl.topology.network.isotropic_tanh_gain`;
* notebook 06: :func:`check_rotate_neurons` -- ``(q^T w_in, q^T b, w_out q)``,
  as :meth:`isodl.topology.network.IsotropicMLP.rotate_layer` rotates a layer
  (the exercise: diagnose a draft with two mistakes and fix it; the hints name
  the step of the derivation each mistake breaks);
* notebook 07: :func:`check_remove_last_neuron` -- the compensation of
  :meth:`isodl.topology.network.IsotropicMLP.neurodegeneration` (``o`` and psi);
* notebook 08: :func:`check_buffer_change` -- the width change of one layer
  under the buffer rule :meth:`isodl.topology.network.IsotropicMLP.auto_adapt`;
* notebook 09: :func:`check_alternating_fraction` -- the non-zero fraction of
  ``W_1..W_M`` in ``[n] * (M + 3)`` after alternating diagonalisation, derived
  by the learner, against :func:`isodl.topology.sparsity.sparsity_limit`.
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
    "ALTERNATING_FRACTION_HINTS",
    "check_alternating_fraction",
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


def _rotate_neurons_is_draft(got, expected, inputs) -> bool:
    w_in, b, w_out, q = inputs
    return matches(got[0], q.T @ w_in) and matches(got[1], b) and matches(got[2], w_out @ q.T)


ROTATE_NEURONS_HINTS = (
    (
        _rotate_neurons_is_draft,
        "this is the draft unchanged: it breaks step 1 (the bias) and step 3 (the next layer); "
        "follow z' = Q^T z through to the next layer's input",
    ),
    (
        _rotate_neurons_q_not_transposed,
        "step 1 breaks: the new pre-activation must be Q^T z = Q^T W_in h + ..., so the incoming weights become Q^T W_in",
    ),
    (
        _rotate_neurons_bias,
        "step 1 breaks: W_in' h + b' must equal Q^T (W_in h + b) for every h, so the bias becomes Q^T b as well",
    ),
    (
        _rotate_neurons_out_side,
        "step 3 breaks: the next layer now reads h' = Q^T h, and W_out' Q^T h = W_out h for every h needs "
        "W_out' = W_out Q (Q^T Q = I), not W_out Q^T",
    ),
)


@exercise_check(_rotate_neurons_reference, _rotate_neurons_inputs, rtol=1e-10, atol=1e-12, hints=ROTATE_NEURONS_HINTS)
def check_rotate_neurons(fn, *, n_trials: int = 5, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-06 exercise ``rotate_neurons(w_in, b, w_out, q)`` -> ``(q^T w_in, q^T b, w_out q)``.

    The notebook gives a draft with two mistakes (bias unrotated, outgoing weights
    times ``q^T``); the learner finds which step of the derivation each breaks and fixes it.

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


def _alternating_fraction_reference(n, m):
    from isodl.topology import sparsity

    return sparsity.sparsity_limit(int(m), int(n), construction="alternating")


def _alternating_fraction_inputs(gen: torch.Generator, trial: int):
    """(n, m): widths 2..40; even M in even trials, odd M >= 3 in odd ones, M = 1 in trial 2; M up to 12."""
    n = int(torch.randint(2, 41, (1,), generator=gen))
    if trial == 2:
        return (n, 1)
    m = 2 * int(torch.randint(1, 7, (1,), generator=gen)) + (trial % 2)
    return (n, min(m, 12))


def _af_swapped(got, expected, inputs) -> bool:
    n, m = inputs
    return abs(float(got) - (((m + 1) // 2) * n * n + (m // 2) * n) / (m * n * n)) < 1e-12


def _af_no_parity(got, expected, inputs) -> bool:
    n, m = inputs
    return m % 2 == 1 and abs(float(got) - (1 + 1 / n) / 2) < 1e-12


def _af_no_diagonal(got, expected, inputs) -> bool:
    n, m = inputs
    return abs(float(got) - (m // 2) / m) < 1e-12


def _af_saved(got, expected, inputs) -> bool:
    return abs(float(got) - (1.0 - float(expected))) < 1e-12


def _af_count(got, expected, inputs) -> bool:
    n, m = inputs
    return abs(float(got) - float(expected) * m * n * n) < 1e-9


def _af_arguments_swapped(got, expected, inputs) -> bool:
    n, m = inputs
    return abs(float(got) - _alternating_fraction_reference(m, n)) < 1e-12


ALTERNATING_FRACTION_HINTS = (
    (_af_count, "return a fraction of the M n^2 hidden-to-hidden weights, not the number of non-zeros"),
    (_af_saved, "return the fraction that stays non-zero, not the fraction that becomes zero"),
    (
        _af_swapped,
        "W_1, W_3, W_5, ... are the diagonal ones: of M matrices ceil(M/2) are diagonal and floor(M/2) dense, not the reverse",
    ),
    (
        _af_no_parity,
        "for odd M the diagonal matrices outnumber the dense ones by one: count them with (M + 1) // 2 and M // 2",
    ),
    (_af_no_diagonal, "a diagonal n x n matrix still keeps its n singular values: count them as non-zeros"),
    (_af_arguments_swapped, "the arguments are (n, m): the width first, then the number of matrices"),
)


@exercise_check(
    _alternating_fraction_reference,
    _alternating_fraction_inputs,
    rtol=1e-12,
    atol=1e-12,
    hints=ALTERNATING_FRACTION_HINTS,
)
def check_alternating_fraction(fn, *, n_trials: int = 8, seed: int = 0, verbose: bool = True) -> CheckResult:
    """Check the notebook-09 exercise ``alternating_fraction(n, m)``: the fraction of the hidden-to-hidden weights
    ``W_1..W_M`` of ``[n] * (M + 3)`` left non-zero after diagonalising ``W_1, W_3, ...``, against
    :func:`isodl.topology.sparsity.sparsity_limit` on random widths and depths (odd and even ``M``)."""
