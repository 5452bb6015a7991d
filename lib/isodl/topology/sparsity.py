"""Notebooks 06, 09: exact non-zero counts after diagonalising alternating layers, and how far a matrix is from diagonal.

Fully diagonalising a hidden-to-hidden matrix of an
:class:`isodl.topology.network.IsotropicMLP`
(:meth:`~isodl.topology.network.IsotropicMLP.full_diagonalise`) leaves only its
diagonal, and the layers ``1, 3, 5, ...`` (:func:`alternating_layers`) can be
diagonalised together. Notebook 09 counts what that saves, exactly:

* :func:`parameter_count` -- the entries of a network with given widths, by kind;
* :func:`expected_nonzero_reduction` -- the exact drop in the number of non-zero
  weights when given layers are fully diagonalised;
* :func:`sparsity_limit` -- the fraction of hidden-to-hidden weights left when
  every other one of ``M`` matrices is diagonalised (``ceil(M/2)`` diagonal,
  ``floor(M/2)`` dense), or when the dense ones are made triangular by a QR
  rotation (:func:`triangular_count`);
* :func:`reparameterisation_bound` -- the least fraction any rotation of the
  hidden layers can reach (a dimension count);
* :func:`deep_limit` -- the ``M -> infinity`` limit of all of them at width
  ``n``, ``(1 + 1/n)/2`` (1/2 only as ``n -> infinity``);
* :func:`count_nonzero` -- the entries of a model with ``|value| > tol``, by kind
  (``tol=0`` for the exact claim; the paper's Experiment 5 uses ``1e-4``).

Notebook 06 shows a layer becoming diagonal with :func:`offdiagonal_fraction`
(``|off-diagonal part|_F / |matrix|_F``).

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, arXiv 2602.23405).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from isodl.core.validate import check_choice, check_float, check_int, check_tensor
from isodl.topology.network import (
    INTRINSIC_LENGTH_MODES,
    PSI_MODES,
    IsotropicMLP,
    OrthogonalMLP,
    check_layer_models,
    check_network_widths,
)

__all__ = [
    "alternating_layers",
    "parameter_count",
    "expected_nonzero_reduction",
    "CONSTRUCTIONS",
    "triangular_count",
    "sparsity_limit",
    "deep_limit",
    "reparameterisation_bound",
    "count_nonzero",
    "offdiagonal_fraction",
]


# --------------------------------------------------------------------------- counting (notebook 09)


def _widths_of(widths_or_model) -> list[int]:
    if isinstance(widths_or_model, OrthogonalMLP):
        return widths_or_model.widths
    return check_network_widths(widths_or_model)


def alternating_layers(widths) -> list[int]:
    """The hidden-to-hidden layers ``1, 3, 5, ... <= L-2`` that can be fully diagonalised together.

    ``widths`` is ``[w_0, ..., w_L]`` or a model. Adjacent layers cannot both
    stay diagonal (diagonalising ``k+1`` rotates the output side of ``W_k``).
    """
    widths = _widths_of(widths)
    return list(range(1, len(widths) - 2, 2))


def parameter_count(widths, *, intrinsic_length: str = "trainable", psi: str = "trainable+decay") -> dict[str, int]:
    """The number of entries of an :class:`IsotropicMLP` with these widths, by kind.

    ``weights`` (sum of ``w_(k+1) w_k``), ``biases``, ``psi`` (``psi_k`` has
    ``w_(k+2)`` entries; none unless psi is stored), ``o`` (one per hidden
    layer unless ``intrinsic_length='none'``) and ``total``.
    """
    widths = _widths_of(widths)
    o_mode = check_choice("intrinsic_length", intrinsic_length, INTRINSIC_LENGTH_MODES)
    psi_mode = check_choice("psi", psi, PSI_MODES)
    n_hidden = len(widths) - 2
    counts = {
        "weights": sum(a * b for a, b in zip(widths[:-1], widths[1:])),
        "biases": sum(widths[1:]),
        "psi": sum(widths[2:]) if psi_mode in ("constant", "trainable", "trainable+decay") else 0,
        "o": n_hidden if o_mode != "none" else 0,
    }
    counts["total"] = sum(counts.values())
    return counts


def expected_nonzero_reduction(widths, layers: Sequence[int] | None = None) -> int:
    """Exact drop in the number of non-zero weights when the layers ``layers`` are fully diagonalised.

    A dense ``n_out x n_in`` matrix becomes rectangular-diagonal with
    ``min(n_out, n_in)`` non-zeros, so each layer saves ``n_out n_in -
    min(n_out, n_in)`` (``n^2 - n`` for a square one). Defaults to
    :func:`alternating_layers`. Assumes the dense matrices had no exact zeros.
    """
    widths = _widths_of(widths)
    if layers is None:
        layers = alternating_layers(widths)
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of hidden-to-hidden layer indices, got {layers!r}")
    n_matrices = len(widths) - 1
    total = 0
    seen = set()
    for i, k in enumerate(layers):
        k = check_int(f"layers[{i}]", k, minimum=1, maximum=n_matrices - 2)
        if k in seen:
            raise ValueError(f"layers must not repeat, got {list(layers)}")
        if k - 1 in seen or k + 1 in seen:
            raise ValueError(
                f"layers {k - 1 if k - 1 in seen else k + 1} and {k} are adjacent: they cannot both be diagonal"
            )
        seen.add(k)
        n_in, n_out = widths[k], widths[k + 1]
        total += n_out * n_in - min(n_out, n_in)
    return total


CONSTRUCTIONS = ("alternating", "qr_chain", "alternating+qr")


def triangular_count(n_out: int, n_in: int) -> int:
    """Non-zeros of a generic upper-triangular (trapezoidal) ``n_out x n_in`` matrix: row ``i`` keeps ``n_in - i``."""
    n_out = check_int("n_out", n_out, minimum=1)
    n_in = check_int("n_in", n_in, minimum=1)
    return sum(n_in - i for i in range(min(n_out, n_in)))


def sparsity_limit(n_matrices: int, width: int | None = None, *, construction: str = "alternating") -> float:
    """Fraction of hidden-to-hidden weights left non-zero in a network of ``M`` square ``n x n`` matrices ``W_1..W_M``.

    ``construction``:

    * ``"alternating"`` (the paper's): ``W_1, W_3, ...`` (``ceil(M/2)`` of them)
      fully diagonal, the ``floor(M/2)`` between them dense:
      ``(floor(M/2) n^2 + ceil(M/2) n) / (M n^2)``; ``1/n`` at ``M = 1``,
      ``(1 + 1/n)/2`` for every even ``M``; for odd ``M`` it is
      ``(M-1)/(2M) + (M+1)/(2Mn)``, which rises towards the same
      ``(1 + 1/n)/2`` (:func:`deep_limit`) from below and is below 1/2 only
      while ``M < n - 1``.
    * ``"qr_chain"``: every ``W_k`` upper-triangular (one QR per hidden layer,
      :meth:`~isodl.topology.network.IsotropicMLP.triangularise`):
      ``(1 + 1/n)/2`` at every depth.
    * ``"alternating+qr"``: alternating, plus the last dense matrix made
      triangular when ``M`` is even (:meth:`~isodl.topology.network.IsotropicMLP.sparsify`);
      equal to :func:`reparameterisation_bound` at every depth.

    ``width=None`` gives the ``n -> infinity`` limit at fixed ``M``.
    """
    m = check_int("n_matrices", n_matrices, minimum=1)
    construction = check_choice("construction", construction, CONSTRUCTIONS)
    diagonal = (m + 1) // 2
    dense = m // 2
    if width is None:
        if construction == "qr_chain":
            return 0.5
        return (dense - (0.5 if construction == "alternating+qr" and m % 2 == 0 else 0.0)) / m
    n = check_int("width", width, minimum=1)
    tri = n * (n + 1) // 2
    if construction == "qr_chain":
        nonzero = m * tri
    else:
        nonzero = diagonal * n + dense * n * n
        if construction == "alternating+qr" and m % 2 == 0:
            nonzero += tri - n * n
    return nonzero / (m * n * n)


def reparameterisation_bound(n_matrices: int, width: int) -> float:
    """The smallest fraction of non-zero hidden-to-hidden weights any rotation of the hidden layers can reach generically.

    ``M`` square ``n x n`` matrices ``W_1..W_M`` sit between ``M + 1`` hidden
    layers; rotating layer ``k`` by ``R_k`` maps ``W_k -> R_k^T W_k R_(k-1)``.
    Those rotations have ``(M + 1) n (n - 1) / 2`` free parameters, and for
    generic weights each exact zero costs one of them, so at most that many
    zeros can be created: the fraction is at least
    ``1 - (M + 1)(n - 1) / (2 M n)`` (a dimension count, the course's derivation).
    It is below 1/2 only while ``M < n - 1`` and tends to ``(1 + 1/n)/2``
    (:func:`deep_limit`) as ``M`` grows.
    """
    m = check_int("n_matrices", n_matrices, minimum=1)
    n = check_int("width", width, minimum=1)
    return 1.0 - (m + 1) * (n - 1) / (2 * m * n)


def deep_limit(width: int | None = None) -> float:
    """The ``M -> infinity`` limit ``(1 + 1/n)/2`` of :func:`sparsity_limit` (every construction) and of
    :func:`reparameterisation_bound` for ``n x n`` matrices; ``width=None`` gives ``n -> infinity``, 1/2."""
    if width is None:
        return 0.5
    n = check_int("width", width, minimum=1)
    return 0.5 * (1.0 + 1.0 / n)


@torch.no_grad()
def count_nonzero(model, tol: float = 0.0) -> dict[str, int]:
    """Count the entries of a model with ``|value| > tol``, by kind (``weights``, ``biases``, ``psi``, ``o``, ``total``).

    ``tol=0`` counts exact non-zeros (the exact sparsification claim);
    the paper's Experiment 5 uses ``tol=1e-4``. ``o`` counts the intrinsic
    lengths themselves (``exp(lambda)`` when trainable).
    """
    check_layer_models(model)
    tol = check_float("tol", tol, minimum=0.0)

    def nz(tensors) -> int:
        return int(sum(int((t.detach().abs() > tol).sum()) for t in tensors))

    counts = {"weights": nz(model.weights), "biases": nz(model.biases), "psi": 0, "o": 0}
    if isinstance(model, IsotropicMLP):
        counts["psi"] = nz(model.psis) if model.has_psi else 0
        if model.o_mode != "none":
            counts["o"] = nz([model.intrinsic_length(k).reshape(1) for k in range(model.n_hidden)])
    counts["total"] = sum(counts.values())
    return counts


def offdiagonal_fraction(matrix) -> float:
    """``|off-diagonal part|_F / |matrix|_F``: 0 for a (rectangular-)diagonal matrix, near 1 for a dense one."""
    m = check_tensor("matrix", matrix, ndim=2, floating=True).detach().to(torch.float64)
    total = float(torch.linalg.matrix_norm(m))
    if total == 0.0:
        return 0.0
    r = min(m.shape)
    off = m.clone()
    off[torch.arange(r), torch.arange(r)] = 0.0
    return float(torch.linalg.matrix_norm(off)) / total
