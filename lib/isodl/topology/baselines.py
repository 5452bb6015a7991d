"""Notebook 07: baselines for neuron removal (magnitude pruning in the native basis, and an elementwise-tanh control).

What does isotropy buy for removing neurons? An exact scaffold neuron also
works with elementwise tanh (``tanh(0) = 0``), so the difference lies in
*removal*: an isotropic layer can be rotated into its SVD basis first, where the
weakest direction carries almost nothing. The baselines here remove neurons
without that rotation:

* :func:`magnitude_prune` -- remove the neurons with the smallest incoming
  weight norm ``|W_k[j, :]|`` in the basis the network was trained in. For an
  :class:`~isodl.topology.network.IsotropicMLP` with the same ``o``/psi
  compensation as neurodegeneration
  (:meth:`~isodl.topology.network.IsotropicMLP.prune_by_magnitude`); for an
  :class:`~isodl.topology.network.ElementwiseTanhMLP` with *mean replacement*:
  the removed neuron's output is replaced by its mean over reference inputs,
  folded into the next bias (the usual best constant for an elementwise unit).
* :func:`compare_removals` -- the function change
  (:func:`isodl.topology.schedules.function_change`) of SVD neurodegeneration
  and of these baselines, for several removal counts.

Science: ``shared/science/isotropic_topologies.md`` (G. Bird, arXiv 2602.23405);
the baselines are the course's own controls.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from isodl.core.train import predict
from isodl.core.validate import check_generator, check_int, check_tensor
from isodl.topology.network import ElementwiseTanhMLP, IsotropicMLP
from isodl.topology.schedules import function_change

__all__ = ["magnitude_prune", "compare_removals", "REMOVAL_METHODS"]

#: The methods of :func:`compare_removals`, in the order they are reported.
REMOVAL_METHODS = ("svd", "svd_uncompensated", "magnitude", "random_basis", "elementwise")


@torch.no_grad()
def _hidden(model: ElementwiseTanhMLP, x: torch.Tensor, layer: int) -> torch.Tensor:
    h = x
    for k in range(layer + 1):
        h = torch.tanh(F.linear(h, model.weights[k], model.biases[k]))
    return h


@torch.no_grad()
def magnitude_prune(model, layer: int, count: int, *, x_reference: torch.Tensor | None = None) -> list[float]:
    """Remove the ``count`` neurons of hidden layer ``layer`` with the smallest incoming weight norm, one at a time,
    in the network's own basis; returns the removed norms.

    * :class:`IsotropicMLP`: each removal is
      :meth:`~IsotropicMLP.remove_neuron` (``o += b_j^2``, ``psi_k += b_j W_(k+1)[:, j]``);
    * :class:`ElementwiseTanhMLP`: needs ``x_reference`` (inputs ``[N, w_0]``);
      the neuron's mean output ``m_j`` over them is added back as
      ``b_(k+1) += m_j W_(k+1)[:, j]``.
    """
    if not isinstance(model, (IsotropicMLP, ElementwiseTanhMLP)):
        raise TypeError(f"model must be an IsotropicMLP or an ElementwiseTanhMLP, got {type(model).__name__}")
    k = check_int("layer", layer, minimum=0, maximum=model.n_hidden - 1)
    width = model.weights[k].shape[0]
    count = check_int("count", count, minimum=1, maximum=width - 1)
    elementwise = isinstance(model, ElementwiseTanhMLP)
    if elementwise:
        if x_reference is None:
            raise ValueError(
                "x_reference (inputs [N, w_0]) is needed for the mean replacement of an elementwise network"
            )
        x_reference = check_tensor("x_reference", x_reference, ndim=2, floating=True, finite=True)
        if x_reference.shape[1] != model.widths[0] or x_reference.shape[0] == 0:
            raise ValueError(f"x_reference must have shape [N >= 1, {model.widths[0]}], got {list(x_reference.shape)}")
        x_reference = x_reference.to(model.dtype)
    if not elementwise:
        return model.prune_by_magnitude(k, count)
    removed = []
    for _ in range(count):
        norms = torch.linalg.vector_norm(model.weights[k].detach(), dim=1)
        j = int(norms.argmin())
        removed.append(float(norms[j]))
        mean = _hidden(model, x_reference, k)[:, j].mean()
        model.biases[k + 1].data.add_(mean * model.weights[k + 1][:, j])
        keep = [i for i in range(model.weights[k].shape[0]) if i != j]
        model.weights[k] = torch.nn.Parameter(model.weights[k].detach()[keep].clone())
        model.biases[k] = torch.nn.Parameter(model.biases[k].detach()[keep].clone())
        model.weights[k + 1] = torch.nn.Parameter(model.weights[k + 1].detach()[:, keep].clone())
    return removed


def compare_removals(
    isotropic: IsotropicMLP,
    elementwise: ElementwiseTanhMLP,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    x_reference: torch.Tensor,
    *,
    layer: int = 1,
    counts: Sequence[int] = (8, 16),
    generator: torch.Generator | None = None,
) -> dict[str, dict[int, dict[str, float]]]:
    """Function change of removing ``count`` neurons from hidden layer ``layer``, by method (copies; inputs untouched).

    ``"svd"``: :meth:`IsotropicMLP.neurodegeneration` (fresh SVD per neuron,
    ``o``/psi compensation); ``"svd_uncompensated"``: the same without the
    ``o`` and psi compensation (does the compensation matter on a trained
    layer?); ``"magnitude"``: :func:`magnitude_prune` of the
    same isotropic network in its native basis; ``"random_basis"``: the same
    after an exact random rotation of the layer (``generator``), so the
    neurons are ranked in a basis neither trained nor chosen; ``"elementwise"``:
    :func:`magnitude_prune` of the elementwise network (mean replacement from
    ``x_reference``). Returns ``{method: {count: function_change(...)}}``
    measured on ``x_test`` with labels ``y_test``.
    """
    if not isinstance(isotropic, IsotropicMLP):
        raise TypeError(f"isotropic must be an IsotropicMLP, got {type(isotropic).__name__}")
    if not isinstance(elementwise, ElementwiseTanhMLP):
        raise TypeError(f"elementwise must be an ElementwiseTanhMLP, got {type(elementwise).__name__}")
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Sequence) or not counts:
        raise TypeError(f"counts must be a non-empty sequence of removal counts, got {counts!r}")
    counts = [check_int(f"counts[{i}]", c, minimum=1) for i, c in enumerate(counts)]
    gen = check_generator(generator) or torch.Generator().manual_seed(0)
    iso_before = predict(isotropic, x_test.to(isotropic.dtype))
    el_before = predict(elementwise, x_test.to(elementwise.dtype))
    out: dict[str, dict[int, dict[str, float]]] = {m: {} for m in REMOVAL_METHODS}
    for c in counts:
        m = copy.deepcopy(isotropic)
        m.neurodegeneration(layer, c)
        out["svd"][c] = function_change(iso_before, predict(m, x_test.to(m.dtype)), y_test)
        m = copy.deepcopy(isotropic)
        m.neurodegeneration(layer, c, compensate_o=False, compensate_psi=False)
        out["svd_uncompensated"][c] = function_change(iso_before, predict(m, x_test.to(m.dtype)), y_test)
        m = copy.deepcopy(isotropic)
        magnitude_prune(m, layer, c)
        out["magnitude"][c] = function_change(iso_before, predict(m, x_test.to(m.dtype)), y_test)
        m = copy.deepcopy(isotropic)
        n = m.weights[layer].shape[0]
        q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        m.rotate_layer(layer, q * torch.sign(torch.diagonal(r)))
        magnitude_prune(m, layer, c)
        out["random_basis"][c] = function_change(iso_before, predict(m, x_test.to(m.dtype)), y_test)
        m = copy.deepcopy(elementwise)
        magnitude_prune(m, layer, c, x_reference=x_reference)
        out["elementwise"][c] = function_change(el_before, predict(m, x_test.to(m.dtype)), y_test)
    return out
