"""Basis-free clustering and per-family calibration for notebook 04 (k-means against moment-matched Gaussians).

For every activation family of notebook 04 (tanh, leaky ReLU, Thomson-basis
tanh with K = 9, 16, 32, isotropic tanh), every bottleneck gain and every
seed, train the digit autoencoder exactly as ``quantisation_nulls.py`` does
(8-d bottleneck, 60 epochs, batch 32, Adam 3e-3) and record, for the
pre-activation latent of the training set:

- the number of stuck units in the family's own basis (same sign for > 99 %
  of the samples; for a Thomson frame, the projections ``z . b_k`` the
  activation acts on);
- the **k-means ratio** (``representations.kmeans_nulls``, k = 10, the number
  of digit classes a quantised code would have to keep apart): k-means
  inertia of the whitened latent over that of 5 moment-matched Gaussian clouds,
  for all units and for the **live units** (``representations.live_subspace``:
  the span of the live basis rows, with those rows as the PPPM basis, so the
  Thomson families are measured in their own basis too);
- the PPPM angular entropy of the live units beside its Gaussian null;
- for the first ``--calib-seeds`` seeds of each family and gain, a **graded
  positive control built from the run's own live latent**
  (``representations.snap_to_centres``: every sample snapped to its digit
  class's mean live latent, plus noise of 0.1 to 1.5 times each unit's own sd),
  run through both tests (entropy flag and k-means flag), so the notebook can
  say up to which noise level clustering would have been detected per family.

It writes ``scripts/results/quantisation_kmeans.json`` (loaded by notebook
04) and prints a one-line summary per family and gain.

    python scripts/quantisation_kmeans.py                    # 6 families x 3 gains x 6 seeds (about 8 minutes)
    python scripts/quantisation_kmeans.py --seeds 1 --epochs 1 --gains 6 --out /tmp/k.json   # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import torch

import isodl
from isodl.symmetry import autoencoder, representations

_spec = importlib.util.spec_from_file_location(
    "quantisation_nulls", Path(__file__).resolve().parent / "quantisation_nulls.py"
)
_nulls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_nulls)

EPSILON = _nulls.EPSILON
MARGIN = _nulls.MARGIN
K = 10
#: The k-means ratio must undercut every Gaussian draw's ratio by this much (the draws spread by about +-0.01).
KMEANS_MARGIN = 0.02
NOISE_LEVELS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "quantisation_kmeans.json"


def entropy_flag(block: dict) -> bool:
    """Notebook 04's entropy test: H below every moment-matched Gaussian draw by more than MARGIN."""
    return representations.beyond_null(block["entropy"], block["gauss_entropy"], side="less", margin=MARGIN)


def kmeans_flag(block: dict) -> bool:
    """The k-means test: ratio below every Gaussian draw's own ratio by more than KMEANS_MARGIN."""
    return representations.beyond_null(block["ratio"], block["null_ratio"], side="less", margin=KMEANS_MARGIN)


def _entropy(z, basis, generator) -> dict:
    q = representations.quantisation_nulls(z, basis, EPSILON, n_rotations=1, generator=generator)
    return {"entropy": q["entropy"], "gauss_entropy": q["gauss_entropy"], "points": q["points"]}


def analyse(z, basis, labels, generator, calibrate: bool) -> dict:
    diag = representations.unit_diagnostics(z, basis)
    row = {
        "n_stuck": diag.n_stuck,
        "n_units": int(diag.stuck.numel()),
        "kmeans_all": representations.kmeans_nulls(z, K, generator=generator),
    }
    if diag.n_live >= 3:
        zl, bl = representations.live_subspace(z, basis)
        row["live_dim"] = int(zl.shape[1])
        row["kmeans_live"] = representations.kmeans_nulls(zl, K, generator=generator)
        row["entropy_live"] = _entropy(zl, bl, generator)
        if calibrate:
            calib = []
            for noise in NOISE_LEVELS:
                c = representations.snap_to_centres(zl, labels, noise, generator=generator)
                e, km = _entropy(c, bl, generator), representations.kmeans_nulls(c, K, generator=generator)
                calib.append(
                    {
                        "noise": noise,
                        "entropy": e,
                        "kmeans": km,
                        "entropy_flag": entropy_flag(e),
                        "kmeans_flag": kmeans_flag(km),
                    }
                )
            row["calibration"] = calib
    return row


def run_all(seed: int, n_seeds: int, epochs: int, gains, labels=None, calib_seeds: int = 2) -> list[dict]:
    data = autoencoder.digits_unit(seed=0)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for label, (act, basis) in _nulls.families().items():
        if labels is not None and label not in labels:
            continue
        for gain in gains:
            for s in range(seed, seed + n_seeds):
                start = time.perf_counter()
                run = autoencoder.train_autoencoder(
                    data, act, None if basis is None else basis.float(), seed=s, epochs=epochs,
                    bottleneck_gain=gain, snapshot_epochs=[], progress=False,
                )  # fmt: skip
                z = run.model.bottleneck(data.x_train).pre.double()
                row = {"family": label, "gain": gain, "seed": s, "mse": run.test_mse}
                row.update(analyse(z, basis, data.y_train, generator, calibrate=s < seed + calib_seeds))
                row["seconds"] = time.perf_counter() - start
                rows.append(row)
                print(f"{label}, gain {gain:g}, seed {s}: {row['seconds']:.1f} s", flush=True)
    return rows


def detection_limit(calibration: list[dict], flag: str) -> float:
    """The largest noise level up to which every level is flagged (0 if the tightest one is missed)."""
    limit = 0.0
    for c in calibration:
        if not c[flag]:
            break
        limit = c["noise"]
    return limit


def summary(rows: list[dict]) -> list[str]:
    lines = [
        f"{'family':<20}{'gain':>5}{'stuck':>7}{'km all':>8}{'km live':>9}{'km flag':>8}{'H flag':>7}{'H lim':>7}{'km lim':>7}"
    ]
    for fam, gain in dict.fromkeys((r["family"], r["gain"]) for r in rows):
        sel = [r for r in rows if r["family"] == fam and r["gain"] == gain]
        live = [r for r in sel if "kmeans_live" in r]
        cal = [r["calibration"] for r in live if "calibration" in r]
        mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
        lines.append(
            f"{fam:<20}{gain:>5g}{mean([r['n_stuck'] for r in sel]):>7.1f}{mean([r['kmeans_all']['ratio'] for r in sel]):>8.3f}"
            f"{mean([r['kmeans_live']['ratio'] for r in live]):>9.3f}{sum(kmeans_flag(r['kmeans_live']) for r in live):>5}/{len(live):<2}"
            f"{sum(entropy_flag(r['entropy_live']) for r in live):>4}/{len(live):<2}"
            f"{mean([detection_limit(c, 'entropy_flag') for c in cal]):>7.2f}{mean([detection_limit(c, 'kmeans_flag') for c in cal]):>7.2f}"
        )  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=6, help="seeds per family and gain (default 6)")
    parser.add_argument("--calib-seeds", type=int, default=1, help="seeds per family and gain with the graded control")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60, notebook 04's)")
    parser.add_argument("--gains", type=float, nargs="+", default=list(_nulls.GAINS))
    parser.add_argument("--families", nargs="+", default=None, help="a subset of the family labels")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    isodl.setup(args.seed, "course")
    start = time.perf_counter()
    rows = run_all(args.seed, args.seeds, args.epochs, tuple(args.gains), args.families, args.calib_seeds)
    result = {
        "settings": {
            "epsilon": EPSILON, "k": K, "margin": MARGIN, "kmeans_margin": KMEANS_MARGIN, "noise_levels": list(NOISE_LEVELS),
            "epochs": args.epochs, "first_seed": args.seed, "seeds": args.seeds, "calib_seeds": args.calib_seeds,
            "gains": args.gains, "stuck": "same sign for more than 99 % of the training samples, in the family's own basis",
            "torch": torch.__version__, "machine": platform.machine(), "seconds": round(time.perf_counter() - start, 1),
        },
        "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_nulls.compact(result), separators=(",", ":"), allow_nan=True) + "\n")
    for line in summary(rows):
        print(line)
    print(f"wrote {len(rows)} runs to {args.out} in {result['settings']['seconds']} s")
    return result


if __name__ == "__main__":
    main()
