"""SRM and PPPM on a layer of your own network, against a rotated null and an untrained control.

What it does
------------
Trains a small conv net on the scikit-learn digits (8x8 images)::

    Conv(1->8, 3) - ReLU - Conv(8->16, 3) - ReLU - flatten - Linear(256->16) - ReLU - Linear(16->10)

captures the 16-d post-activations of the penultimate ReLU on the test set with
:func:`isodl.core.capture.capture_activations`, and asks whether they are
aligned with the neuron (standard) basis:

* SRM (:func:`isodl.symmetry.srm.spotlight_resonance`, epsilon 0.8, 100
  angles, every ordered pair of neurons): the four-fold harmonic of the mean
  curve (:func:`isodl.symmetry.representations.srm_harmonic`, > 0 when the
  cones on the neurons hold more than the diagonals) and its contrast
  ``(max - min) / mean`` (:func:`~isodl.symmetry.representations.curve_modulation`);
* PPPM (:func:`isodl.symmetry.pppm.privileged_plane_projection`): the kept
  points over the isotropic expectation and the ``c4`` of their in-plane angles.

A number means little on its own, so each is compared with a **rotated null**:
the same activations times random orthogonal matrices
(:func:`isodl.core.activations.random_orthogonal`). A rotation keeps every
property that does not depend on the basis (norms, angles between samples,
clusters, the spectrum) and destroys only the alignment with the neurons; the
spread over ``--rotations`` rotations is the null's range. The verdict says
whether the real value lies outside that range. An **untrained copy** of the
same net (same initial weights) is the second control: a ReLU layer is
non-negative, so some alignment with the neuron basis comes from the
elementwise activation itself, before any learning.

    python scripts/own_model_srm.py                      # about 15 s on one CPU thread (imports included)
    python scripts/own_model_srm.py --epochs 1 --rotations 3   # a smoke run

Adapting it to your model
-------------------------
The five lines that matter (see :func:`analyse`)::

    from isodl.core.capture import capture_activations
    acts = capture_activations(model, "penultimate", test_loader, max_samples=5000)  # your layer's name
    basis = torch.eye(acts.shape[1], dtype=torch.float64)                            # the neuron basis
    curve = srm.spotlight_resonance(acts.double(), basis, epsilon=0.8).mean()        # SRM, mean over planes
    null = acts.double() @ random_orthogonal(acts.shape[1], seed=k).T                # one rotated null

Name the layer as ``model.named_modules()`` does (``print(dict(model.named_modules()).keys())``);
name the activation module for post-activations, or pass ``when="pre"`` to take a module's
input. For conv channels use ``channels=True`` (each position a sample of ``C``
channels). SRM costs ``O(n^2)`` planes: for ``n`` in the hundreds pass
``max_planes=`` (a seeded subset) or ``pairs="comb"``.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import OrderedDict

import torch
from torch import nn

import isodl
from isodl.core.activations import random_orthogonal
from isodl.core.capture import capture_activations
from isodl.core.data import digits
from isodl.core.train import fit
from isodl.symmetry import pppm, representations, srm

LAYER = "penultimate"
METRICS = ("srm_harmonic", "srm_contrast", "pppm_ratio", "pppm_c4")


def conv_net() -> nn.Sequential:
    """The small conv net of the docstring; the penultimate ReLU is named ``"penultimate"``."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 8, 3)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(8, 16, 3)),
                ("relu2", nn.ReLU()),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(16 * 4 * 4, 16)),
                (LAYER, nn.ReLU()),
                ("out", nn.Linear(16, 10)),
            ]
        )
    )


def summary(acts: torch.Tensor, epsilon: float, n_angles: int) -> dict[str, float]:
    """SRM and PPPM summaries of ``[N, n]`` activations in the standard (neuron) basis."""
    basis = torch.eye(acts.shape[1], dtype=torch.float64)
    res = srm.spotlight_resonance(acts, basis, epsilon, n_angles)
    curve = res.mean()
    metrics = representations.pppm_metrics(pppm.privileged_plane_projection(acts, basis, epsilon))
    return {
        "srm_harmonic": representations.srm_harmonic(curve, res.angles),
        "srm_contrast": representations.curve_modulation(curve),
        "pppm_ratio": metrics["ratio"],
        "pppm_c4": metrics["c4"],
    }


def analyse(acts: torch.Tensor, *, rotations: int, seed: int, epsilon: float, n_angles: int) -> dict:
    """The summaries of ``acts`` and of ``rotations`` rotated copies: ``{"real": {...}, "null": {metric: [..]}}``."""
    acts = acts.to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    null: dict[str, list[float]] = {k: [] for k in METRICS}
    for _ in range(rotations):
        q = random_orthogonal(acts.shape[1], seed=gen)
        for k, v in summary(acts @ q.T, epsilon, n_angles).items():
            null[k].append(v)
    return {"real": summary(acts, epsilon, n_angles), "null": null}


def finite(values: list[float]) -> list[float]:
    return [v for v in values if v == v]


def verdict(real: float, null: list[float]) -> str:
    """Whether ``real`` lies outside the range of the finite null values (``nan``: no sample in any cone)."""
    kept = finite(null)
    if real != real or not kept:
        return "undefined (nan)"
    return "OUTSIDE the null's range" if real < min(kept) or real > max(kept) else "inside the null's range"


def report(label: str, result: dict) -> None:
    print(f"\n{label}")
    print(f"  {'metric':<13} {'real':>7}   rotated null: {'mean':>7} {'min':>7} {'max':>7}  {'below real':>10}")
    for k in METRICS:
        real, null = result["real"][k], result["null"][k]
        kept = finite(null)
        stats = (
            f"{sum(kept) / len(kept):>7.3f} {min(kept):>7.3f} {max(kept):>7.3f}  {sum(v < real for v in kept):>4}/{len(kept):<5}"
            if kept
            else f"{'nan':>7} {'nan':>7} {'nan':>7}  {'':>10}"
        )
        undefined = f" ({len(null) - len(kept)} nan)" if len(kept) < len(null) else ""
        print(f"  {k:<13} {real:>7.3f}   {'':>13} {stats} {verdict(real, null)}{undefined}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the batches and the rotations")
    parser.add_argument("--rotations", type=int, default=50, help="random rotations in the null (default 50)")
    parser.add_argument("--epsilon", type=float, default=0.8, help="SRM and PPPM threshold (default 0.8)")
    parser.add_argument("--angles", type=int, default=100, help="SRM probe angles (default 100)")
    args = parser.parse_args(argv)
    if args.rotations < 1:
        parser.error("--rotations must be at least 1")
    start = time.perf_counter()

    isodl.setup(args.seed, style=False)  # seeds the initial weights, one CPU thread
    data = digits(seed=args.seed)
    images = (data.x_train.reshape(-1, 1, 8, 8), data.y_train, data.x_test.reshape(-1, 1, 8, 8), data.y_test)
    model = conv_net()
    untrained = copy.deepcopy(model)
    history = fit(model, images, epochs=args.epochs, batch_size=64, lr=3e-3, seed=args.seed, progress=False)
    accuracy = history.test_accuracy[-1]

    settings = {"rotations": args.rotations, "seed": args.seed, "epsilon": args.epsilon, "n_angles": args.angles}
    results = {"test_accuracy": accuracy, "epochs": args.epochs}
    for label, net in (("trained", model), ("untrained", untrained)):
        acts = capture_activations(net, LAYER, images[2])  # [450, 16] post-ReLU, test set
        results[label] = analyse(acts, **settings)
        results[label]["dead_fraction"] = float((acts == 0).all(dim=0).double().mean())
        results[label]["zero_fraction"] = float((acts == 0).double().mean())

    print(
        f"{LAYER} ReLU of a conv net on digits, {images[2].shape[0]} test samples x 16 neurons; "
        f"{args.epochs} epochs, test accuracy {accuracy:.3f}; epsilon={args.epsilon}, {args.angles} angles, "
        f"{args.rotations} rotations, seed {args.seed}"
    )
    for label in ("trained", "untrained"):
        r = results[label]
        report(
            f"{label} net (zero entries {r['zero_fraction']:.0%}, dead neurons {r['dead_fraction']:.0%})",
            r,
        )
    parts = []
    for label in ("trained", "untrained"):
        h, null = results[label]["real"]["srm_harmonic"], finite(results[label]["null"]["srm_harmonic"])
        span = f"{min(null):+.3f} .. {max(null):+.3f} over {len(null)} rotations" if null else "no finite null value"
        parts.append(f"{label} {h:+.3f} is {verdict(h, results[label]['null']['srm_harmonic'])} ({span})")
        results[label]["verdict"] = verdict(h, results[label]["null"]["srm_harmonic"])
    print("\nverdict (four-fold SRM harmonic against the rotated null): " + "; ".join(parts))
    results["seconds"] = time.perf_counter() - start
    print(f"({results['seconds']:.1f} s)")
    return results


if __name__ == "__main__":
    main()
