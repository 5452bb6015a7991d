"""Notebooks 03-04 (03, 04): the digit autoencoders whose bottleneck activation is varied.

MLP autoencoders whose only difference is the activation function.

Used by notebooks 03 (alignment follows the basis) and 04 (quantised
representations). Science: ``shared/science/srm_and_quantisation.md`` (the
ablation of G. Bird, arXiv 2507.12070, and the course's small reproduction).

Architecture (``widths = [64, 32, 8]`` by default)::

    x -> Linear(64, 32) -> act -> Linear(32, 8) = z_pre -> act_B -> z_post
      -> Linear(8, 32) -> act -> Linear(32, 64) = reconstruction

* ``activation`` names the nonlinearity of *every* hidden layer, so an
  ablation changes nothing else: one of :data:`ACTIVATIONS`, i.e. an
  elementwise function (``"tanh"``, ``"leaky_relu"``, ...; anisotropic) or an
  isotropic one (``"isotropic_tanh"``, ...; computed by
  :func:`isodl.core.activations.isotropic`, the course's one implementation).
* ``basis`` (``[K, n_bottleneck]``, optional) makes the *bottleneck* activation
  elementwise in that basis, ``act_B(z) = (n / K) B^T sigma(B z)`` with unit
  rows (:func:`isodl.core.activations.elementwise`); the other hidden layers keep the
  standard basis (the course's Decision 7). A random rotation ``Q`` or a
  Thomson basis are the usual choices. Isotropic activations have no
  privileged basis, so a basis with them is an error.
* Initialisation: weights ``N(0, 1 / fan_in)``, drawn from the
  ``generator`` passed to :class:`AutoEncoder` (layer by layer, encoder then
  decoder), biases 0, then the encoder-to-bottleneck weights are multiplied by
  ``bottleneck_gain``. :func:`train_autoencoder` passes
  ``torch.Generator().manual_seed(seed)`` and touches no global random state. The
  course uses a gain of 6 so the bottleneck starts in tanh's saturated
  regime: **a departure from the paper** (whose initialisation is not known),
  meant to reach saturation in a small, short run; notebook 04 shows that it
  mainly leaves bottleneck units stuck at a constant sign.
* :meth:`AutoEncoder.bottleneck` returns the bottleneck pre-activation
  ``z_pre`` (the tensor the analyses use first) and post-activation ``z_post``.

Training goes through :func:`isodl.core.train.fit` (``task="autoencode"``, mean
squared error); :func:`train_autoencoder` wraps the course's settings and can
keep snapshots of the latent over training.
:func:`load_quantisation_results` reads the committed results of
``scripts/quantisation_nulls.py`` (the full ablation against its nulls).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import skip_init

from isodl.core import activations as _functions
from isodl.core import data as _data
from isodl.core.train import History, fit
from isodl.core.validate import check_choice, check_float, check_generator, check_int, check_tensor, check_widths

__all__ = [
    "ELEMENTWISE",
    "ISOTROPIC",
    "ACTIVATIONS",
    "Bottleneck",
    "AutoEncoder",
    "digits_unit",
    "latent_snapshot_epochs",
    "AERun",
    "train_autoencoder",
    "QUANTISATION_RESULTS",
    "load_quantisation_results",
    "KMEANS_RESULTS",
]

#: Elementwise (anisotropic) activations: applied per coordinate of a basis.
ELEMENTWISE = tuple(_functions.ELEMENTWISE_ACTIVATIONS)
#: Isotropic activations: ``sigma(|x|) x / |x|`` (``"isotropic_" + radial function``).
ISOTROPIC = tuple(f"isotropic_{a}" for a in _functions.ISOTROPIC_ACTIVATIONS if a != "identity")
#: Every activation name the autoencoder accepts.
ACTIVATIONS = ELEMENTWISE + ISOTROPIC


class _Act(nn.Module):
    """One hidden activation: elementwise (optionally in a basis) or isotropic."""

    def __init__(self, name: str, basis: torch.Tensor | None, negative_slope: float):
        super().__init__()
        self.name = name
        self.negative_slope = negative_slope
        if basis is not None:
            self.register_buffer("basis", basis.clone())
        else:
            self.basis = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name.startswith("isotropic_"):
            return _functions.isotropic(x, self.name[len("isotropic_") :], negative_slope=self.negative_slope)
        return _functions.elementwise(x, self.name, self.basis, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        where = "" if self.basis is None else f", basis of {self.basis.shape[0]} rows"
        return f"{self.name}{where}"


@dataclass
class Bottleneck:
    """The bottleneck of an :class:`AutoEncoder` for a batch: ``pre`` (``z_pre``) and ``post`` (``act_B(z_pre)``)."""

    pre: torch.Tensor
    post: torch.Tensor


class AutoEncoder(nn.Module):
    """MLP autoencoder ``widths[0] -> ... -> widths[-1] -> ... -> widths[0]`` (see the module docstring).

    Parameters
    ----------
    widths : sequence of int
        ``[input, hidden..., bottleneck]``; the decoder mirrors the encoder.
    activation : str
        One of :data:`ACTIVATIONS`, used at every hidden layer.
    basis : tensor of shape [K, widths[-1]], optional
        A privileged basis for the bottleneck's elementwise activation.
    bottleneck_gain : float, > 0
        Factor on the encoder-to-bottleneck weights after initialisation.
    negative_slope : float in [0, 1]
        Slope of the leaky ReLUs for negative inputs.
    generator : torch.Generator, optional
        Draws the initial weights ``N(0, 1 / fan_in)``; ``None`` uses PyTorch's
        global generator. The same seeded generator gives the same model.
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 32, 8),
        activation: str = "tanh",
        basis=None,
        *,
        bottleneck_gain: float = 1.0,
        negative_slope: float = 0.01,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        widths = check_widths(
            widths, example="[64, 32, 8] (input, hidden..., bottleneck)", layout="an input and a bottleneck size"
        )
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.bottleneck_gain = check_float("bottleneck_gain", bottleneck_gain, minimum=0.0, strict_minimum=True)
        self.negative_slope = check_float("negative_slope", negative_slope, minimum=0.0, maximum=1.0)
        generator = check_generator(generator)
        n_b = widths[-1]
        b = None
        if basis is not None:
            if self.activation in ISOTROPIC:
                raise ValueError(
                    f"basis was given with activation {self.activation!r}, but isotropic activations have no "
                    "privileged basis; use an elementwise activation such as 'tanh' with a basis"
                )
            b = check_tensor("basis", basis, ndim=2, floating=True, finite=True)
            if b.shape[1] != n_b:
                raise ValueError(
                    f"dimension mismatch: basis has {b.shape[1]} columns but the bottleneck has {n_b} units "
                    f"(basis must be [K, {n_b}])"
                )
            norms = torch.linalg.vector_norm(b.to(torch.float64), dim=1, keepdim=True)
            if bool((norms == 0).any()):
                raise ValueError("basis has a zero row; every privileged direction needs a non-zero vector")
            b = (b.to(torch.float64) / norms).to(torch.get_default_dtype())
        self.widths = widths
        # skip_init: nn.Linear's own initialisation would draw from the global generator.
        enc = [skip_init(nn.Linear, a, c) for a, c in zip(widths[:-1], widths[1:])]
        dec = [skip_init(nn.Linear, a, c) for a, c in zip(widths[::-1][:-1], widths[::-1][1:])]
        for lin in enc + dec:
            nn.init.normal_(lin.weight, 0.0, 1.0 / math.sqrt(lin.in_features), generator=generator)
            nn.init.zeros_(lin.bias)
        with torch.no_grad():
            enc[-1].weight.mul_(self.bottleneck_gain)
        self.encoder = nn.ModuleList(enc)
        self.decoder = nn.ModuleList(dec)
        self.hidden_act = _Act(self.activation, None, self.negative_slope)
        self.bottleneck_act = _Act(self.activation, b, self.negative_slope)

    @property
    def basis(self) -> torch.Tensor | None:
        """The bottleneck's privileged basis (unit rows), or ``None`` for the standard basis / isotropic."""
        return self.bottleneck_act.basis

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck pre-activation ``z_pre``."""
        h = x
        for lin in self.encoder[:-1]:
            h = self.hidden_act(lin(h))
        return self.encoder[-1](h)

    def decode(self, z_post: torch.Tensor) -> torch.Tensor:
        h = z_post
        for lin in self.decoder[:-1]:
            h = self.hidden_act(lin(h))
        return self.decoder[-1](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.bottleneck_act(self.encode(x)))

    @torch.no_grad()
    def bottleneck(self, x) -> Bottleneck:
        """``Bottleneck(pre, post)`` for a batch ``x`` ``[N, widths[0]]`` (no gradient)."""
        x = check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.widths[0]:
            raise ValueError(f"x must have {self.widths[0]} columns (the input size), got {x.shape[1]}")
        was = self.training
        self.eval()
        x = x.to(self.encoder[0].weight.dtype)
        pre = self.encode(x)
        post = self.bottleneck_act(pre)
        self.train(was)
        return Bottleneck(pre, post)

    def extra_repr(self) -> str:
        return f"widths={self.widths}, bottleneck_gain={self.bottleneck_gain:g}"


def digits_unit(seed: int = 0, test_fraction: float = 0.25) -> _data.Dataset:
    """sklearn's 8x8 digits with pixels scaled to [0, 1] (divided by 16): the autoencoders' data.

    Split stratified by ``seed`` like :func:`isodl.core.data.digits`.
    """
    ds = _data.digits(seed=seed, test_fraction=test_fraction, standardise=False)
    meta = dict(ds.meta, scaled="pixels / 16, in [0, 1]")
    return _data.Dataset(ds.x_train / 16.0, ds.y_train, ds.x_test / 16.0, ds.y_test, ds.name, ds.classes, meta)


def latent_snapshot_epochs(epochs: int, n_panels: int = 6) -> list[int]:
    """``n_panels`` epochs spread over ``0 ... epochs`` (always including 0 and ``epochs``)."""
    epochs = check_int("epochs", epochs, minimum=0)
    n_panels = check_int("n_panels", n_panels, minimum=1)
    if epochs == 0 or n_panels == 1:
        return [epochs]
    return sorted({round(i * epochs / (n_panels - 1)) for i in range(n_panels)})


@dataclass
class AERun:
    """One trained autoencoder: the model, its :class:`~isodl.core.train.History`, latent snapshots and settings.

    ``snapshots`` maps an epoch to the bottleneck pre-activation of the
    training set at that epoch (epoch 0 is the untrained model).
    """

    model: AutoEncoder
    history: History
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def test_mse(self) -> float:
        return float(self.history.test_loss[-1])


def train_autoencoder(
    data: _data.Dataset,
    activation: str = "tanh",
    basis=None,
    *,
    seed: int = 0,
    widths: Sequence[int] = (64, 32, 8),
    bottleneck_gain: float = 6.0,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 3e-3,
    optimizer: str = "adam",
    momentum: float = 0.0,
    snapshot_epochs: Sequence[int] | None = None,
    progress: bool | None = None,
) -> AERun:
    """Build an :class:`AutoEncoder` with seed ``seed`` and train it with Adam on ``data`` (MSE).

    The seed fixes the initial weights (drawn from
    ``torch.Generator().manual_seed(seed)``; the global random state is not
    touched) and the mini-batch order. Defaults are the course's (Adam lr 3e-3, batch 32, gain 6;
    the spec's prototype). ``snapshot_epochs`` lists epochs at which the
    bottleneck pre-activation of the whole training set is stored. ``progress``
    is passed to :func:`isodl.core.train.fit` (a tqdm bar; ``None``: on in JupyterLab,
    off headless; pass ``False`` when a loop trains many models).
    ``optimizer`` (``"adam"``, ``"sgd"`` or ``"adamw"``) and ``momentum`` (SGD only)
    allow an optimiser control: Adam scales every parameter coordinate
    separately, which could itself favour the standard basis; SGD does not.
    """
    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd", "adamw"))
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    epochs = check_int("epochs", epochs, minimum=0)
    wanted = set()
    if snapshot_epochs is not None:
        wanted = {check_int("snapshot_epochs[]", e, minimum=0, maximum=epochs) for e in snapshot_epochs}
    generator = torch.Generator().manual_seed(seed)
    model = AutoEncoder(widths, activation, basis, bottleneck_gain=bottleneck_gain, generator=generator)
    x_train = data.x_train
    snapshots: dict[int, torch.Tensor] = {}
    if 0 in wanted:
        snapshots[0] = model.bottleneck(x_train).pre

    def keep(epoch, m, history):
        if epoch in wanted:
            snapshots[epoch] = m.bottleneck(x_train).pre

    history = fit(
        model,
        data,
        task="autoencode",
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        seed=seed,
        on_epoch=keep if wanted else None,
        progress=progress,
    )
    settings = dict(
        activation=model.activation,
        basis_rows=None if basis is None else int(model.basis.shape[0]),
        seed=seed,
        widths=list(model.widths),
        bottleneck_gain=bottleneck_gain,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
    )
    return AERun(model, history, snapshots, settings)


#: Where ``scripts/quantisation_nulls.py`` writes its committed results (notebook 04 reads them).
QUANTISATION_RESULTS = Path(__file__).resolve().parents[3] / "scripts" / "results" / "quantisation_nulls.json"


#: Where ``scripts/quantisation_kmeans.py`` writes its committed results (k-means ratios, per-family calibration).
KMEANS_RESULTS = QUANTISATION_RESULTS.parent / "quantisation_kmeans.json"


def load_quantisation_results(path=None) -> dict:
    """The committed results of ``scripts/quantisation_nulls.py``: ``{"settings": {...}, "rows": [...]}``.

    ``path`` defaults to :data:`QUANTISATION_RESULTS`. Each row is one trained
    run (family, gain, seed, test MSE, stuck units, PPPM entropy and c4 beside
    their nulls; see the script's docstring).
    """
    p = QUANTISATION_RESULTS if path is None else path
    if not isinstance(p, (str, Path)):
        raise TypeError(f"path must be a file path (str or pathlib.Path) or None, got {type(p).__name__}")
    p = Path(p)
    if not p.is_file():
        raise FileNotFoundError(
            f"no results file at {p}; run `python scripts/{p.stem}.py` from the repository root to make it"
        )
    out = json.loads(p.read_text())
    if not isinstance(out, dict) or "rows" not in out or "settings" not in out:
        raise ValueError(f"{p} is not a results file of scripts/quantisation_nulls.py (no 'settings' and 'rows')")
    return out
