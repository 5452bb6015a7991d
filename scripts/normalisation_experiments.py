"""Notebook 12's experiments at paper scale: the method comparison and the batch-size test, with honest statistics.

Everything is plain SGD on MNIST-1D (notebook 12's protocol, the course's own design; not the paper's protocol or
numbers):

1. **Method comparison.** Every method of :data:`isodl.normalisation.experiments.ALL_METHODS` (six methods, the
   rescaled-gradient control and L2 pre-normalisation without bias), its learning rate tuned on a log grid by
   *validation* accuracy over several tuning seeds, then trained at the chosen rate over more seeds. Reported: test
   accuracy and final train loss with 95 % confidence intervals, whether the chosen rate sits inside its grid, and the
   affine-like layer's paired differences (by seed) with every other method.
2. **Batch-size test at a fixed sample budget.** Every batch size sees the same number of samples; the rate at batch
   size B is the method's tuned rate at B = 32 scaled by sqrt(B / 32) and, as a second protocol, by B / 32. Reported:
   accuracy per (method, B), each method's slope (accuracy per doubling of B, one per seed) and its paired difference
   from the plain network's and from BatchNorm's slope, with 95 % confidence intervals. The author's public post
   predicts a clearly more negative slope for divergence-correcting layers than for plain affine layers or BatchNorm.

    python scripts/normalisation_experiments.py                  # paper scale (30 min on a busy 2-core CPU)
    python scripts/normalisation_experiments.py --scale course   # notebook 12's sizes (about 1 min)

The results go to ``scripts/results/normalisation_experiments_<scale>.json``; notebook 12 plots the paper-scale file
beside its own small live run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import isodl
from isodl.core import data
from isodl.normalisation import experiments as nc

RESULTS = Path(__file__).resolve().parent / "results"

#: Sizes per scale. Grids are factor-4 log grids wide enough that the chosen rate sits inside.
SIZES = {
    "course": dict(
        hidden=[64, 64],
        epochs=5,
        tune_seeds=2,
        seeds=5,
        grid_points=4,
        batch_sizes=[8, 32, 128],
        bs_methods=["none", "batchnorm", "affine_like"],
        bs_seeds=5,
        scalings=["sqrt"],
    ),
    "paper": dict(
        hidden=[128, 128, 128],
        epochs=20,
        tune_seeds=3,
        seeds=6,
        grid_points=5,
        batch_sizes=[16, 32, 128, 512],
        bs_methods=["none", "batchnorm", "l2", "affine_like"],
        bs_seeds=6,
        scalings=["sqrt", "linear"],
    ),
}

#: A tiny configuration for the smoke test (seconds): three methods, one hidden layer of 8.
SMOKE = dict(
    hidden=[8],
    epochs=1,
    tune_seeds=1,
    seeds=2,
    grid_points=2,
    batch_sizes=[8, 32],
    bs_methods=["none", "batchnorm", "affine_like"],
    bs_seeds=2,
    scalings=["sqrt"],
)


def _clean(rows):
    return [
        {
            k: (None if k == "diverged" and v is None else (str(v) if k == "diverged" else v))
            for k, v in r.items()
            if k != "model"
        }
        for r in rows
    ]


def method_comparison(split, widths, sizes, seed0, methods=None) -> dict:
    """Tune every method on its grid over the tuning seeds; then train the chosen rate over all seeds."""
    methods = list(methods or nc.ALL_METHODS)
    grid = {m: nc.lr_grid(m, sizes["grid_points"]) for m in methods}
    tune_seeds = [seed0 + k for k in range(sizes["tune_seeds"])]
    all_seeds = [seed0 + k for k in range(sizes["seeds"])]
    tuning = nc.compare_methods(split, grid, seeds=tune_seeds, epochs=sizes["epochs"], batch_size=32, widths=widths)
    chosen = nc.best_lrs(nc.summarise(tuning))
    extra_seeds = [s for s in all_seeds if s not in tune_seeds]
    extra = (
        nc.compare_methods(
            split,
            {m: [lr] for m, lr in chosen.items()},
            seeds=extra_seeds,
            epochs=sizes["epochs"],
            batch_size=32,
            widths=widths,
        )
        if extra_seeds
        else []
    )
    at_chosen = [r for r in tuning + extra if r["lr"] == chosen[r["method"]]]
    table = []
    for m in methods:
        rs = [r for r in at_chosen if r["method"] == m]
        acc = nc.mean_ci([r["test_accuracy"] for r in rs])
        loss = nc.mean_ci([r["train_loss"] for r in rs])
        lrs = grid[m]
        table.append(
            {
                "method": m,
                "lr": chosen[m],
                "grid": lrs,
                "inside_grid": lrs[0] < chosen[m] < lrs[-1],
                "n": acc["n"],
                "test": acc,
                "train_loss": loss,
                "diverged": int(sum(bool(r["diverged"]) for r in rs)),
            }
        )
    like = {r["seed"]: r["test_accuracy"] for r in at_chosen if r["method"] == "affine_like"}
    diffs = {
        m: nc.paired_difference(like, {r["seed"]: r["test_accuracy"] for r in at_chosen if r["method"] == m})
        for m in methods
        if m != "affine_like"
    }
    return {"grid": grid, "chosen": chosen, "table": table, "affine_like_minus": diffs, "rows": _clean(tuning + extra)}


def batch_size_test(split, widths, sizes, chosen, seed0) -> dict:
    """The fixed-sample-budget batch-size test, one block per learning-rate scaling."""
    seeds = [seed0 + k for k in range(sizes["bs_seeds"])]
    budget = 32 * nc.steps_for_epochs(split.x_train.shape[0], 32, sizes["epochs"])  # the comparison's sample budget
    out = {"samples": budget, "batch_sizes": sizes["batch_sizes"], "seeds": seeds, "protocols": {}}
    for scaling in sizes["scalings"]:
        rows = nc.batch_size_sweep(
            split,
            {m: chosen[m] for m in sizes["bs_methods"]},
            sizes["batch_sizes"],
            seeds=seeds,
            samples=budget,
            lr_scaling=scaling,
            widths=widths,
        )
        out["protocols"][scaling] = {
            "table": nc.batch_size_table(rows),
            "slopes": nc.batch_size_slopes(rows),
            "minus_none": nc.slope_differences(rows, "none"),
            "minus_batchnorm": nc.slope_differences(rows, "batchnorm"),
            # the same without the runs that blew up (training loss above ln 10 or diverged): a rate extrapolated
            # from B = 32 can be far too large at another B, and such a run says nothing about the batch size
            "minus_none_trained": nc.slope_differences(rows, "none", trained_only=True),
            "blown_up": int(sum(r["blown_up"] for r in rows)),
            "rows": _clean(rows),
        }
    return out


def run(scale: str = "paper", seed: int = 0, sizes: dict | None = None, methods=None) -> dict:
    cfg = isodl.setup(seed, scale)
    sizes = dict(SIZES[cfg.scale] if sizes is None else sizes)
    signals = data.mnist1d()
    split = nc.split_data(signals, n_val=500)
    widths = [signals.n_features, *sizes["hidden"], signals.n_classes]
    start = time.perf_counter()
    comparison = method_comparison(split, widths, sizes, seed, methods)
    batch = batch_size_test(split, widths, sizes, comparison["chosen"], seed)
    return {
        "scale": cfg.scale,
        "seed": seed,
        "sizes": sizes,
        "widths": widths,
        "comparison": comparison,
        "batch_size": batch,
        "seconds": time.perf_counter() - start,
    }


def report(result: dict) -> str:
    """A short plain-text summary of :func:`run`'s result."""
    lines = [f"scale {result['scale']}, widths {result['widths']}, {result['seconds']:.0f} s"]
    for r in result["comparison"]["table"]:
        t, lo = r["test"], r["train_loss"]
        edge = "" if r["inside_grid"] else "  (at the grid's edge)"
        lines.append(
            f"{nc.LABELS[r['method']]:27s} lr {r['lr']:<7g} test {t['mean']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}] "
            f"n={t['n']}  train loss {lo['mean']:.3f}{edge}"
        )
    for m, d in result["comparison"]["affine_like_minus"].items():
        sig = "significant" if d["significant"] else "not significant"
        lines.append(f"affine-like minus {nc.LABELS[m]:27s} {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] ({sig})")
    for scaling, p in result["batch_size"]["protocols"].items():
        lines.append(f"batch size, fixed sample budget {result['batch_size']['samples']}, lr scaled {scaling}:")
        for m, s in p["slopes"].items():
            lines.append(f"  slope {nc.LABELS[m]:27s} {s['mean']:+.4f} per doubling (n={s['n']})")
        lines.append(f"  runs that blew up (train loss > ln 10 or diverged): {p['blown_up']} of {len(p['rows'])}")
        for ref in ("minus_none", "minus_batchnorm", "minus_none_trained"):
            for m, d in p[ref].items():
                sig = "significant" if d["significant"] else "not significant"
                lines.append(
                    f"  {m} {ref.replace('_', ' ')}: {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] ({sig})"
                )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", choices=("course", "paper", "smoke"), default="paper", help="smoke: a seconds-long check"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="result file (default scripts/results/...)")
    args = parser.parse_args(argv)
    if args.scale == "smoke":
        result = run("course", args.seed, sizes=SMOKE, methods=["none", "batchnorm", "affine_like"])
    else:
        result = run(args.scale, args.seed)
    out = args.out or RESULTS / f"normalisation_experiments_{args.scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(report(result))
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
