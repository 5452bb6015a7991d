"""Quantisation against its nulls: the full ablation behind notebook 04, with stuck-unit diagnostics.

For every activation family of notebook 04 (tanh, leaky ReLU, Thomson-basis
tanh with K = 9, 16, 32, isotropic tanh), every bottleneck gain (1, 3, 6) and
every seed, train the digit autoencoder (8-d bottleneck, 60 epochs, batch 32,
Adam 3e-3) and record, for the pre-activation latent of the training set:

- per-unit mean and sd and the number of *stuck* units (same sign for > 99 %
  of the samples; in each family's own basis), at epoch 0 and at the end;
- the PPPM angular entropy H and c4 (epsilon = 0.8) of the whole latent, and
  the same on its nulls: moment-matched Gaussian clouds, randomly rotated
  copies, and uniform angles at the same kept count;
- for the standard-basis families, the same on the *live* units only (the
  stuck coordinates dropped), and on a positive control built from them: the
  live latent replaced by its ten class means plus 5 % noise, a latent that
  really takes a few discrete values;
- the mean excess kurtosis of the live coordinates and its rotated null;
- the test reconstruction MSE.

It writes one JSON file (default ``scripts/results/quantisation_nulls.json``)
that notebook 04 loads and plots beside its small live replication, and
prints a one-line summary per family and gain.

    python scripts/quantisation_nulls.py                    # 6 families x 3 gains x 8 seeds, about 15 minutes
    python scripts/quantisation_nulls.py --seeds 2 --epochs 1 --out /tmp/q.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

import isodl
from isodl.symmetry import autoencoder, representations, srm

EPSILON = 0.8
BOTTLENECK = 8
GAINS = (1.0, 3.0, 6.0)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "quantisation_nulls.json"
#: The margin by which an entropy must undercut every moment-matched Gaussian draw to count as clustering.
MARGIN = 0.03


def families() -> dict[str, tuple[str, torch.Tensor | None]]:
    """label -> (activation name, bottleneck basis or None): notebook 04's ablation."""
    bases = {k: srm.thomson_basis(k, BOTTLENECK, seed=0) for k in (BOTTLENECK + 1, 2 * BOTTLENECK, 4 * BOTTLENECK)}
    return {
        "tanh": ("tanh", None),
        "leaky ReLU": ("leaky_relu", None),
        **{f"Thomson tanh K={k}": ("tanh", b) for k, b in bases.items()},
        "isotropic tanh": ("isotropic_tanh", None),
    }


def class_mean_control(live: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A quantised latent: each sample replaced by its class's mean live latent, plus noise of 5 % of each unit's sd."""
    means = torch.stack([live[labels == k].mean(0) for k in range(int(labels.max()) + 1)])
    noise = torch.randn(live.shape, generator=generator, dtype=torch.float64)
    return means[labels] + 0.05 * live.std(0) * noise


def _floats(v):
    return [float(x) for x in v]


def compact(obj, digits: int = 5):
    """Round every float in a nested structure to ``digits`` decimals (keeps the results file small)."""
    if isinstance(obj, float):
        return obj if obj != obj else round(obj, digits)
    if isinstance(obj, dict):
        return {k: compact(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [compact(v, digits) for v in obj]
    return obj


def analyse(z: torch.Tensor, basis, labels: torch.Tensor, generator: torch.Generator) -> dict:
    """Every number the notebook plots for one latent (see the module docstring)."""
    diag = representations.unit_diagnostics(z, basis)
    row = {
        "n_stuck": diag.n_stuck,
        "unit_mean": _floats(diag.mean),
        "unit_sd": _floats(diag.sd),
        "all": representations.quantisation_nulls(z, basis, EPSILON, generator=generator),
    }
    if basis is None and diag.n_live >= 3:
        live = z[:, diag.live]
        row["live"] = representations.quantisation_nulls(live, None, EPSILON, generator=generator)
        control = class_mean_control(live, labels, generator)
        row["control"] = representations.quantisation_nulls(control, None, EPSILON, generator=generator)
        row["kurtosis"] = float(representations.excess_kurtosis(live).nanmean())
        row["kurtosis_rot"] = _floats(representations.kurtosis_rotated_null(live, generator=generator))
    return row


def run_all(seed: int, n_seeds: int, epochs: int, gains=GAINS, labels=None) -> list[dict]:
    data = autoencoder.digits_unit(seed=0)
    x = data.x_train
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for label, (act, basis) in families().items():
        if labels is not None and label not in labels:
            continue
        for gain in gains:
            for s in range(seed, seed + n_seeds):
                start = time.perf_counter()
                run = autoencoder.train_autoencoder(
                    data, act, None if basis is None else basis.float(), seed=s, epochs=epochs,
                    bottleneck_gain=gain, snapshot_epochs=[0], progress=False,
                )  # fmt: skip
                z = run.model.bottleneck(x).pre.double()
                row = {"family": label, "gain": gain, "seed": s, "mse": run.test_mse}
                row.update(analyse(z, basis, data.y_train, generator))
                init = analyse(run.snapshots[0].double(), basis, data.y_train, generator)
                row["epoch0"] = {"n_stuck": init["n_stuck"], "all": init["all"]}
                row["seconds"] = time.perf_counter() - start
                rows.append(row)
    return rows


def clustered(block: dict, margin: float = MARGIN) -> bool:
    """The notebook's test: entropy below every moment-matched Gaussian draw by more than ``margin``."""
    return representations.beyond_null(block["entropy"], block["gauss_entropy"], side="less", margin=margin)


def summary(rows: list[dict]) -> list[str]:
    lines = [f"{'family':<20}{'gain':>5}{'runs':>5}{'stuck':>7}{'H':>7}{'H gauss':>9}{'clustered':>10}{'H live':>8}"
             f"{'gauss':>7}{'live clustered':>15}{'MSE':>8}"]  # fmt: skip
    keys = list(dict.fromkeys((r["family"], r["gain"]) for r in rows))
    for fam, gain in keys:
        sel = [r for r in rows if r["family"] == fam and r["gain"] == gain]
        mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
        h = mean([r["all"]["entropy"] for r in sel if not math.isnan(r["all"]["entropy"])])
        hg = mean([mean(r["all"]["gauss_entropy"]) for r in sel])
        live = [r for r in sel if "live" in r]
        hl = mean([r["live"]["entropy"] for r in live])
        hlg = mean([mean(r["live"]["gauss_entropy"]) for r in live])
        lines.append(
            f"{fam:<20}{gain:>5g}{len(sel):>5}{mean([r['n_stuck'] for r in sel]):>7.1f}{h:>7.2f}{hg:>9.2f}"
            f"{sum(clustered(r['all']) for r in sel):>6}/{len(sel):<3}{hl:>8.2f}{hlg:>7.2f}"
            f"{sum(clustered(r['live']) for r in live):>10}/{len(live):<4}{mean([r['mse'] for r in sel]):>8.4f}"
        )
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per family and gain (default 8)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60, notebook 04's)")
    parser.add_argument("--gains", type=float, nargs="+", default=list(GAINS))
    parser.add_argument("--families", nargs="+", default=None, help="a subset of the family labels")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    isodl.setup(args.seed, "course")
    start = time.perf_counter()
    rows = run_all(args.seed, args.seeds, args.epochs, tuple(args.gains), args.families)
    result = {
        "settings": {
            "epsilon": EPSILON, "bottleneck": BOTTLENECK, "epochs": args.epochs, "batch_size": 32, "lr": 3e-3,
            "first_seed": args.seed, "seeds": args.seeds, "gains": args.gains, "margin": MARGIN,
            "stuck": "same sign for more than 99 % of the training samples",
            "torch": torch.__version__, "machine": platform.machine(),
            "seconds": round(time.perf_counter() - start, 1),
        },
        "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(compact(result), separators=(",", ":"), allow_nan=True) + "\n")
    for line in summary(rows):
        print(line)
    print(f"wrote {len(rows)} runs to {args.out} in {result['settings']['seconds']} s")
    return result


if __name__ == "__main__":
    main()
