"""Every notebook: argument checks that give clear errors naming the argument.

Argument checks shared by every public function of :mod:`isodl` (numbers,
choices, tensors, layer widths, dtypes and generators).

Each helper raises a ``TypeError`` or ``ValueError`` whose message names the
argument and says what was expected, so a learner never gets silently wrong
numbers from a bad call.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "check_int",
    "check_ints",
    "check_float",
    "check_bool",
    "check_choice",
    "check_tensor",
    "check_widths",
    "check_dtype",
    "check_generator",
]


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``.

    Booleans are rejected (``True`` is an int to Python, never to a learner).
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_ints(*, minimum: int | None = None, maximum: int | None = None, **values) -> tuple[int, ...]:
    """:func:`check_int` on several arguments with the same bounds, named by keyword; returns them in order.

    ``hidden_size, T = check_ints(minimum=1, hidden_size=hidden_size, T=T)``.
    """
    return tuple(check_int(name, value, minimum=minimum, maximum=maximum) for name, value in values.items())


def check_float(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite float within bounds, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if strict_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not strict_minimum and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-insensitive), lower-cased."""
    choices = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {value!r} ({type(value).__name__})")
    key = value.strip().lower()
    if key not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
    return key


def check_tensor(
    name: str,
    value,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    floating: bool = False,
    finite: bool = False,
) -> torch.Tensor:
    """Return ``value`` as a tensor after checking its rank and shape.

    ``shape`` entries that are ``None`` match any size. NumPy arrays are
    converted with :func:`torch.as_tensor`; anything else raises.
    """
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(value.shape)}")
    if shape is not None:
        if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise ValueError(f"{name} must have shape {want}, got {list(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def check_widths(
    widths,
    *,
    minimum_length: int = 2,
    example: str = "[64, 32, 10]",
    layout: str = "an input and an output size",
    name: str = "widths",
) -> list[int]:
    """Return the layer sizes ``widths`` as a list of positive ints, or raise naming ``name``.

    Shared by every model constructor that takes ``widths = [d_in, ..., d_out]``
    (:class:`isodl.core.train.MLP`, :class:`isodl.symmetry.autoencoder.AutoEncoder`,
    :func:`isodl.normalisation.experiments.build_mlp`, the topology networks). ``layout`` says
    in words what the shortest valid list holds.
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of layer sizes like {example}, got {widths!r}")
    if len(widths) < minimum_length:
        raise ValueError(f"{name} needs at least {layout} ({minimum_length} sizes), got {list(widths)}")
    return [check_int(f"{name}[{i}]", w, minimum=1) for i, w in enumerate(widths)]


def check_dtype(dtype) -> torch.dtype:
    """Accept torch.float32 or torch.float64."""
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_generator(generator):
    """Accept a torch.Generator or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator
