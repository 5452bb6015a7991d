"""Notebooks 00, 10, 11: layers with PyTorch's default initialisation, drawn from an explicit generator.

``nn.Linear(a, b)`` draws its initial weights from PyTorch's global random
state. The course's library draws every random number from a
``torch.Generator`` it is given, so models built here take a ``generator``:
:func:`linear` builds the layer without drawing (``torch.nn.utils.skip_init``)
and then draws the same distributions, in the same order, from the generator
(:func:`default_init_`). A generator seeded with ``s`` therefore gives the
weights that ``torch.manual_seed(s)`` followed by ``nn.Linear(a, b)`` gives.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from isodl.core.validate import check_bool, check_generator, check_int

__all__ = ["default_init_", "linear"]


@torch.no_grad()
def default_init_(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int, generator=None) -> None:
    """PyTorch's default initialisation of ``nn.Linear`` and ``nn.Conv2d``, in place, from ``generator``.

    ``weight``: ``kaiming_uniform_(a=sqrt(5))``, i.e. uniform in ``+-1/sqrt(fan_in)``; then
    ``bias`` (if not None) uniform in ``+-1/sqrt(fan_in)``. ``generator=None`` draws from the global state.
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a tensor, got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias must be a tensor or None, got {type(bias).__name__}")
    fan_in = check_int("fan_in", fan_in, minimum=1)
    generator = check_generator(generator)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound, generator=generator)


def linear(
    in_features: int,
    out_features: int,
    *,
    bias: bool = True,
    generator: torch.Generator | None = None,
    cls: type[nn.Linear] = nn.Linear,
    dtype: torch.dtype | None = None,
) -> nn.Linear:
    """``cls(in_features, out_features, bias=bias)`` with the default initialisation drawn from ``generator``.

    ``cls`` is ``nn.Linear`` or a subclass with the same constructor. Without a
    generator the layer is built as usual (the global random state).
    """
    in_features = check_int("in_features", in_features, minimum=1)
    out_features = check_int("out_features", out_features, minimum=1)
    bias = check_bool("bias", bias)
    generator = check_generator(generator)
    if not (isinstance(cls, type) and issubclass(cls, nn.Linear)):
        raise TypeError(f"cls must be nn.Linear or a subclass of it, got {cls!r}")
    options = {} if bias else {"bias": False}  # a subclass may not take a bias argument
    if dtype is not None:
        options["dtype"] = dtype
    if generator is None:
        return cls(in_features, out_features, **options)
    layer = torch.nn.utils.skip_init(cls, in_features, out_features, **options)
    default_init_(layer.weight, layer.bias, in_features, generator)
    return layer
