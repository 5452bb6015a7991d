"""Does quantisation go with higher reconstruction error? An extra, raw-entropy version of notebook 04's question.

Notebook 04 no longer uses this script: its error test (section 9) reads the
committed results of ``quantisation_nulls.py`` and uses the live units'
entropy below its Gaussian null, with the number of live units held fixed.
This script keeps the older, simpler check (raw entropy, gain 6 only, no
results file), which the notebook shows is mostly a stuck-unit count. It
trains the ablation of notebook 04 (tanh, leaky ReLU, Thomson-basis tanh with
K = 9, 16, 32, isotropic tanh; gain 6 on the encoder-to-bottleneck weights,
8-d bottleneck, digits) and prints Spearman's rank correlation between the
angular entropy of the PPPM points (epsilon = 0.8, pre-activation latent) and
the test MSE, for three selections of runs:

- all runs,
- all runs but the K = 4n Thomson runs (the most continuous and the best
  reconstructors, on which a pooled correlation leans),
- tanh, leaky ReLU and isotropic tanh only.

A negative rho means "more quantised (lower entropy), higher error". Runs whose
latent keeps no PPPM point have no entropy and are left out.

    python scripts/quantisation_vs_error.py                 # course scale, about 1 minute
    python scripts/quantisation_vs_error.py --scale paper   # 60 runs of 100 epochs, about 3.5 minutes
"""

from __future__ import annotations

import argparse

import torch

import isodl
from isodl.symmetry import autoencoder, pppm, representations, srm

GAIN = 6.0
EPSILON = 0.8
BOTTLENECK = 8


def train_ablation(seed: int, scale: str, epochs: int | None = None, seeds: int | None = None) -> list[dict]:
    """One row per trained run: activation label, seed, angular entropy and test MSE (notebook 04's settings)."""
    cfg = isodl.setup(seed, scale)
    epochs = epochs or isodl.by_scale(cfg.scale, course=60, paper=100)
    batch_size = isodl.by_scale(cfg.scale, course=32, paper=24)
    n_main = seeds or isodl.by_scale(cfg.scale, course=8, paper=10)
    n_thomson = seeds or isodl.by_scale(cfg.scale, course=3, paper=10)
    bases = {k: srm.thomson_basis(k, BOTTLENECK, seed=0) for k in (BOTTLENECK + 1, 2 * BOTTLENECK, 4 * BOTTLENECK)}
    ablation = {
        "tanh": ("tanh", None, n_main),
        "leaky ReLU": ("leaky_relu", None, n_main),
        **{f"Thomson tanh K={k}": ("tanh", b, n_thomson) for k, b in bases.items()},
        "isotropic tanh": ("isotropic_tanh", None, n_main),
    }
    data = autoencoder.digits_unit(seed=0)
    rows = []
    for label, (act, basis, count) in ablation.items():
        for s in range(seed, seed + count):
            run = autoencoder.train_autoencoder(
                data,
                act,
                None if basis is None else basis.float(),
                seed=s,
                epochs=epochs,
                batch_size=batch_size,
                bottleneck_gain=GAIN,
                progress=False,
            )
            res = pppm.privileged_plane_projection(run.model.bottleneck(data.x_train).pre, basis, EPSILON)
            rows.append(
                {
                    "activation": label,
                    "seed": s,
                    "entropy": representations.pppm_metrics(res)["entropy"],
                    "mse": run.test_mse,
                }
            )
    return rows


def correlation(rows: list[dict], keep, seed: int = 0) -> tuple[int, float, float]:
    """(number of runs used, Spearman rho, permutation p) of entropy against MSE over the kept rows with an entropy."""
    used = [r for r in rows if keep(r["activation"]) and r["entropy"] == r["entropy"]]
    h = torch.tensor([r["entropy"] for r in used], dtype=torch.float64)
    mse = torch.tensor([r["mse"] for r in used], dtype=torch.float64)
    rho, p = representations.rank_correlation(h, mse, seed=seed)
    return len(used), rho, p


def main(argv: list[str] | None = None) -> dict[str, tuple[int, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="first seed of every group of runs (default 0)")
    parser.add_argument("--scale", choices=("course", "paper"), default="course")
    parser.add_argument("--epochs", type=int, default=None, help="override the scale's epochs (for a quick smoke run)")
    parser.add_argument("--seeds", type=int, default=None, help="override the number of seeds per activation")
    args = parser.parse_args(argv)
    rows = train_ablation(args.seed, args.scale, args.epochs, args.seeds)
    largest = f"Thomson tanh K={4 * BOTTLENECK}"
    selections = {
        "all runs": lambda label: True,
        f"without {largest}": lambda label: label != largest,
        "tanh, leaky ReLU, isotropic tanh": lambda label: label in ("tanh", "leaky ReLU", "isotropic tanh"),
    }
    results = {}
    print(f"scale={args.scale} seed={args.seed}: Spearman rho of angular entropy against test MSE")
    for name, keep in selections.items():
        results[name] = correlation(rows, keep, seed=args.seed)
        n, rho, p = results[name]
        print(f"  {name:<34} {n:>3} runs   rho = {rho:+.2f}   permutation p = {p:.3f}")
    return results


if __name__ == "__main__":
    main()
