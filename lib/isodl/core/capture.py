"""Researchers (no notebook): capture one layer's activations from any torch model, for SRM and PPPM on your own network.

The notebooks build their own models and read activations off them directly.
To apply the Spotlight Resonance Method (:mod:`isodl.symmetry.srm`) or PPPM
(:mod:`isodl.symmetry.pppm`) to a layer of *your* network, you need that
layer's activations as an ``[N, n]`` array, one sample per row.
:func:`capture_activations` gets them with a forward hook, without changing
the model::

    from isodl.core.capture import capture_activations
    acts = capture_activations(model, "encoder.act3", test_loader, max_samples=5000)
    result = srm.spotlight_resonance(acts, torch.eye(acts.shape[1]), epsilon=0.8)

What is captured
----------------
* ``when="post"`` (the default): the module's *output*. Name the activation
  module (``nn.ReLU``, ``nn.Tanh``, ...) to get post-activations; name the
  ``nn.Linear`` before it to get pre-activations.
* ``when="pre"``: the module's *input* (its first positional argument, or the
  one ``index`` picks), via a forward pre-hook.

``layer`` is a dotted name as in ``model.named_modules()`` (``"features.3"``,
``"head.fc1"``; ``""`` is the model itself) or the module object. Only the
first call of the module in each forward pass is captured, and the rest of
that forward pass is skipped (nothing after the layer is needed).

Shapes
------
A layer output ``[B, ...]`` gives one row per example. With ``flatten=True``
(the default) every other dimension is flattened: a conv feature map
``[B, C, H, W]`` becomes ``[B, C*H*W]`` (one long vector per image, each
``(channel, position)`` a coordinate). With ``channels=True`` each spatial
position is a sample of its ``C`` channels instead: ``[B, C, H, W]`` becomes
``[B*H*W, C]`` (rows ordered image by image, then position by position). The
second is the natural reading for SRM on conv channels: the privileged basis
of an elementwise activation is the channel basis, shared by every position.
``flatten=False`` keeps ``[N, ...]`` as the layer produced it.

Memory
------
``max_samples`` caps the rows (after reshaping, so in ``channels`` mode it
counts positions); iteration over ``data`` stops as soon as it is reached and
only the kept rows are stored (the last batch is cut). Captured rows are
copied to ``to`` (the CPU by default) in ``dtype`` while the model runs on its
own device.

The model runs under :func:`torch.no_grad` in eval mode; every module's own
training flag is restored afterwards, and the hook is always removed, also
when an error is raised.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from isodl.core.validate import check_bool, check_choice, check_dtype, check_int

__all__ = ["WHEN", "capture_activations", "find_layer"]

#: What :func:`capture_activations` captures: the module's output ("post") or its input ("pre").
WHEN = ("post", "pre")


class _Full(BaseException):
    """Raised by the hook to end a forward pass once the layer has been captured (never escapes)."""


def find_layer(model: nn.Module, layer) -> tuple[str, nn.Module]:
    """``(name, module)`` of ``layer`` in ``model``: a dotted name from ``model.named_modules()`` or the module.

    Raises ``ValueError`` naming a few available (and the closest) names when
    there is no such layer, and when a module object is not part of ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = dict(model.named_modules(remove_duplicate=False))
    if isinstance(layer, str):
        if layer in named:
            return layer, named[layer]
        names = [n for n in named if n]
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else "."
        shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(
            f"layer {layer!r} is not a module of {type(model).__name__}{hint} "
            f"Available names ({len(names)}, as in model.named_modules()): {shown or 'none (the model has no children)'}"
        )
    if isinstance(layer, nn.Module):
        for name, module in named.items():
            if module is layer:
                return name, module
        raise ValueError(
            f"layer is a {type(layer).__name__} that is not part of the model ({type(model).__name__}); "
            "pass a module of this model or its name from model.named_modules()"
        )
    raise TypeError(f"layer must be a module name (str) or a torch.nn.Module, got {type(layer).__name__}")


def _model_device(model: nn.Module) -> torch.device | None:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


def _pick(value, index, what: str, name: str) -> torch.Tensor:
    """The tensor in a layer's output or input: ``value`` itself, or ``value[index]`` for a tuple/list/dict."""
    if isinstance(value, torch.Tensor):
        if index is not None:
            raise ValueError(f"index={index!r} was given but the {what} of layer {name!r} is a single tensor")
        return value
    if isinstance(value, (tuple, list, Mapping)):
        kinds = (
            ", ".join(f"{k!r}: {type(v).__name__}" for k, v in value.items())
            if isinstance(value, Mapping)
            else ", ".join(type(v).__name__ for v in value)
        )
        what_kind = f"a {type(value).__name__} of {len(value)} items ({kinds})"
        if index is None:
            pick = "a key" if isinstance(value, Mapping) else "a position, e.g. index=0"
            raise TypeError(f"the {what} of layer {name!r} is {what_kind}; pass index= ({pick}) to choose one")
        try:
            item = value[index]
        except (IndexError, KeyError, TypeError):
            raise ValueError(f"index={index!r} does not select an item of the {what} of layer {name!r}: {what_kind}")
        if not isinstance(item, torch.Tensor):
            raise TypeError(f"item {index!r} of the {what} of layer {name!r} is a {type(item).__name__}, not a tensor")
        return item
    raise TypeError(f"the {what} of layer {name!r} is a {type(value).__name__}, not a tensor (or a tuple of them)")


def _rows(t: torch.Tensor, flatten: bool, channels: bool, name: str) -> torch.Tensor:
    if t.ndim == 0:
        raise ValueError(f"layer {name!r} gave a scalar (shape []); it needs a batch dimension to give rows")
    if channels:
        if t.ndim <= 2:
            return t.reshape(t.shape[0], -1)
        return t.movedim(1, -1).reshape(-1, t.shape[1])  # [B, C, *S] -> [B * prod(S), C]
    if flatten:
        return t.reshape(t.shape[0], -1)
    return t


def _batches(data, batch_size: int):
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise ValueError("data is a scalar tensor; pass a batch [B, ...] or an iterable of batches")
        yield from torch.split(data, batch_size)
        return
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise TypeError(
            f"data must be a tensor of inputs or an iterable of batches (a DataLoader, a list), got {type(data).__name__}"
        )
    for batch in data:
        if isinstance(batch, (tuple, list)):
            if not batch:
                raise ValueError("data gave an empty batch (an empty tuple or list)")
            yield batch[0]  # (inputs, targets, ...): the model gets the inputs
        else:
            yield batch


def capture_activations(
    model: nn.Module,
    layer,
    data,
    *,
    when: str = "post",
    index: int | str | None = None,
    max_samples: int | None = None,
    flatten: bool = True,
    channels: bool = False,
    dtype: torch.dtype = torch.float32,
    device=None,
    to="cpu",
    batch_size: int = 256,
) -> torch.Tensor:
    """The activations of one layer of ``model`` over ``data``, one sample per row.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; it is run as ``model(inputs)`` for every batch.
    layer : str or torch.nn.Module
        The dotted name from ``model.named_modules()`` (``"features.3"``) or the module itself.
    data : tensor or iterable of batches
        A DataLoader or any iterable whose batches are an input tensor or an
        ``(inputs, targets, ...)`` tuple/list (the first item is passed to the
        model; other batch types are passed as they are). A single tensor is
        split into batches of ``batch_size`` rows.
    when : "post" or "pre"
        Capture the module's output (``"post"``) or its input (``"pre"``).
    index : int or str, optional
        Which item to take when the output (or, for ``"pre"``, the positional
        input tuple) holds several: a position for a tuple or list (an LSTM's
        ``(output, (h, c))`` needs ``index=0``), a key for a dict. ``"pre"``
        takes the first positional input when ``index`` is None.
    max_samples : int, optional
        Stop after this many rows (counted after reshaping); ``None`` keeps all.
    flatten : bool
        ``[B, ...]`` -> ``[B, prod(...)]`` (default); ``False`` keeps the layer's shape.
    channels : bool
        Treat each spatial position as a sample of ``C`` channels:
        ``[B, C, H, W]`` -> ``[B*H*W, C]`` (2-D outputs stay as they are).
        Cannot be combined with ``flatten=False``.
    dtype : torch.float32 or torch.float64
        The dtype of the returned rows.
    device : torch.device or str, optional
        Where input tensors are moved before the forward pass; ``None`` means
        the device of the model's first parameter (inputs stay where they are
        if the model has none).
    to : torch.device or str or None
        Where captured rows are stored (``"cpu"`` by default, so a GPU holds
        only one batch at a time); ``None`` keeps them on the device that produced them.
    batch_size : int
        Rows per forward pass when ``data`` is a single tensor.

    Returns
    -------
    torch.Tensor
        ``[N, n]`` (``[N, ...]`` with ``flatten=False``), a copy that later
        in-place operations of the model cannot change.
    """
    name, module = find_layer(model, layer)
    when = check_choice("when", when, WHEN)
    if index is not None and (isinstance(index, bool) or not isinstance(index, (int, str))):
        raise TypeError(f"index must be None, an int or a str, got {index!r} ({type(index).__name__})")
    if max_samples is not None:
        max_samples = check_int("max_samples", max_samples, minimum=1)
    flatten = check_bool("flatten", flatten)
    channels = check_bool("channels", channels)
    if channels and not flatten:
        raise ValueError("channels=True already returns [B*H*W, C] rows; it cannot be combined with flatten=False")
    dtype = check_dtype(dtype)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    try:
        device = _model_device(model) if device is None else torch.device(device)
        to = None if to is None else torch.device(to)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device and to must name torch devices (such as 'cpu' or 'cuda'): {err}") from None

    chunks: list[torch.Tensor] = []
    kept = 0
    state = {"called": False}
    what = "output" if when == "post" else "input"

    def store(value) -> None:
        nonlocal kept
        state["called"] = True
        rows = _rows(_pick(value, index, what, name).detach(), flatten, channels, name)
        if chunks and rows.shape[1:] != chunks[0].shape[1:]:
            raise ValueError(
                f"layer {name!r} gave rows of shape {list(rows.shape[1:])} after rows of shape "
                f"{list(chunks[0].shape[1:])}; use flatten=True with inputs of one size, or channels=True"
            )
        if max_samples is not None:
            rows = rows[: max_samples - kept]
        chunks.append(rows.to(device=to if to is not None else rows.device, dtype=dtype, copy=True))
        kept += rows.shape[0]
        raise _Full

    if when == "post":
        handle = module.register_forward_hook(lambda _m, _args, output: store(output))
    else:

        def pre_hook(_m, args):
            if index is None:
                if not args:
                    raise TypeError(
                        f"layer {name!r} was called without positional inputs; when='pre' captures the first one"
                    )
                store(args[0])
            else:
                store(args)

        handle = module.register_forward_pre_hook(pre_hook)

    modes = [(m, m.training) for m in model.modules()]
    n_batches = 0
    try:
        model.eval()
        with torch.no_grad():
            for inputs in _batches(data, batch_size):
                if isinstance(inputs, torch.Tensor) and device is not None:
                    inputs = inputs.to(device)
                state["called"] = False
                try:
                    model(inputs)
                except _Full:
                    pass
                n_batches += 1
                if not state["called"]:
                    raise RuntimeError(
                        f"layer {name!r} ({type(module).__name__}) did not run in the forward pass of "
                        f"{type(model).__name__}; is it used in forward()?"
                    )
                if max_samples is not None and kept >= max_samples:
                    break
    finally:
        handle.remove()
        for m, training in modes:
            m.training = training
    if n_batches == 0:
        raise ValueError("data gave no batches; nothing was captured")
    return torch.cat(chunks)
