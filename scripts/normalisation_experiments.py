"""Notebook 12's experiments at paper scale: the method comparison and the batch-size test, with honest statistics.

Everything is plain SGD on MNIST-1D (notebook 12's protocol, the course's own design; not the paper's protocol or
numbers):

1. **Method comparison.** Every method of :data:`isodl.normalisation.experiments.ALL_METHODS` (six methods, the
   rescaled-gradient control and L2 pre-normalisation without bias), its learning rate tuned on a log grid by
   *validation* accuracy over several tuning seeds (the grid widened while the choice sits at an edge), then trained
   at the chosen rate over more seeds. Reported: test
   accuracy and final train loss with 95 % confidence intervals, whether the chosen rate sits inside its grid, and the
   affine-like layer's paired differences (by seed) with every other method.
2. **Batch-size test at a fixed sample budget.** Every batch size sees the same number of samples; the rate at batch
   size B is the method's tuned rate at B = 32 scaled by sqrt(B / 32) and, as a second protocol, by B / 32. Reported:
   accuracy per (method, B), each method's slope (accuracy per doubling of B, one per seed) and its paired difference
   from the plain network's and from BatchNorm's slope, with 95 % confidence intervals. The author's public post
   predicts a clearly more negative slope for divergence-correcting layers than for plain affine layers or BatchNorm.

3. **Batch-size test with the rate tuned per (method, B)** (``--part batch_tuned``). At the same fixed sample budget,
   each method's rate is tuned again at every batch size (validation accuracy, two tuning seeds, a factor-2 log grid
   around the B = 32 rate scaled by sqrt(B / 32), widened while the choice sits at an edge; a choice still at an edge
   is flagged), then trained at the chosen rate on ten evaluation seeds kept apart from the tuning seeds. Reported
   as in 2, with and without the runs that blew up, and the final train loss per (method, B). This removes the last
   confound of 2: a rate that is good at B = 32 may be too large or too small at another B.

    python scripts/normalisation_experiments.py                  # paper scale, parts 1-3 (about 1 h on a busy CPU)
    python scripts/normalisation_experiments.py --part batch_tuned   # part 3 only, merged into the existing file
    python scripts/normalisation_experiments.py --scale course   # notebook 12's sizes (a few minutes)

The results go to ``scripts/results/normalisation_experiments_<scale>.json``; notebook 12 plots the paper-scale file
beside its own small live run.
"""

from __future__ import annotations

import argparse
import json
import math
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
        tune_seeds=3,
        seeds=5,
        grid_points=3,
        max_widen=3,
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
    grid_points=3,
    max_widen=1,
    batch_sizes=[8, 32],
    bs_methods=["none", "batchnorm", "affine_like"],
    bs_seeds=2,
    scalings=["sqrt"],
)

#: Part 3 (``--part batch_tuned``): the rate tuned per (method, B) at the fixed sample budget.
TUNED = {
    "course": dict(
        methods=["none", "batchnorm", "affine_like"],
        batch_sizes=[8, 32, 128],
        tune_seeds=[100, 101],
        eval_seeds=[0, 1, 2, 3, 4, 5],
        points=5,
        max_widen=3,
    ),
    "paper": dict(
        methods=["none", "batchnorm", "l2", "affine_like"],
        batch_sizes=[16, 32, 64, 128, 256, 512],
        tune_seeds=[100, 101],
        eval_seeds=list(range(10)),
        points=5,
        max_widen=4,
    ),
    "smoke": dict(
        methods=["none", "batchnorm", "affine_like"],
        batch_sizes=[8, 32],
        tune_seeds=[100, 101],
        eval_seeds=[0, 1],
        points=3,
        max_widen=1,
    ),
}


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
    """Tune every method over the tuning seeds (grid widened at an edge); then train the chosen rate on all seeds.

    Each method's grid starts at :func:`isodl.normalisation.experiments.lr_grid` (a factor 4 apart) and grows by one
    rate beyond an edge while the rate with the best mean validation accuracy sits there
    (:func:`~isodl.normalisation.experiments.tune_lr`, at most ``sizes["max_widen"]`` times; a choice still at an
    edge is flagged ``inside_grid: False``). The tuning seeds are among the evaluation seeds (their runs are reused).
    """
    methods = list(methods or nc.ALL_METHODS)
    tune_seeds = [seed0 + k for k in range(sizes["tune_seeds"])]
    all_seeds = [seed0 + k for k in range(sizes["seeds"])]
    steps = nc.steps_for_epochs(split.x_train.shape[0], 32, sizes["epochs"])
    tuning, grid, chosen = [], {}, {}
    for m in methods:
        first = nc.lr_grid(m, sizes["grid_points"])
        t = nc.tune_lr(
            m,
            split,
            batch_size=32,
            samples=32 * steps,
            centre=first[len(first) // 2],
            seeds=tune_seeds,
            factor=4.0,
            points=sizes["grid_points"],
            max_widen=sizes.get("max_widen", 3),
            widths=widths,
        )
        tuning += t["rows"]
        grid[m], chosen[m] = t["grid"], t["chosen"]
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
        loss = nc.mean_ci([r["train_loss"] for r in rs if math.isfinite(r["train_loss"])] or [99.0])
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
    return {
        "grid": grid,
        "chosen": chosen,
        "tune_seeds": tune_seeds,
        "table": table,
        "affine_like_minus": diffs,
        "rows": _clean(tuning + extra),
    }


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


def _slope_block(rows, trained_only: bool) -> dict:
    """Per-method slopes with 95 % intervals and the paired differences from the plain net and from BatchNorm."""
    slopes = nc.batch_size_slopes(rows, trained_only=trained_only)
    out = {"slopes": {m: {**s, **nc.mean_ci(s["slopes"])} for m, s in slopes.items() if s["n"] >= 1}}
    for ref in ("none", "batchnorm"):
        out[f"minus_{ref}"] = nc.slope_differences(rows, ref, trained_only=trained_only)
    return out


def batch_tuned_test(split, widths, tuned: dict, centres: dict, samples: int, log=print) -> dict:
    """Part 3: the batch-size test with the rate tuned per (method, B); statistics over the evaluation seeds."""
    start = time.perf_counter()
    sweep = nc.batch_tuned_sweep(
        split,
        {m: centres[m] for m in tuned["methods"]},
        tuned["batch_sizes"],
        tune_seeds=tuned["tune_seeds"],
        eval_seeds=tuned["eval_seeds"],
        samples=samples,
        widths=widths,
        points=tuned["points"],
        max_widen=tuned["max_widen"],
        progress=log,
    )
    rows = sweep["rows"]
    chosen = {(t["method"], t["batch_size"]): t for t in sweep["tuning"]}
    table = []
    for m in tuned["methods"]:
        for b in tuned["batch_sizes"]:
            rs = [r for r in rows if r["method"] == m and r["batch_size"] == b]
            t = chosen[(m, b)]
            table.append(
                {
                    "method": m,
                    "batch_size": b,
                    "lr": t["chosen"],
                    "grid": t["grid"],
                    "at_edge": t["at_edge"],
                    "test": nc.mean_ci([r["test_accuracy"] for r in rs]),
                    "train_loss": nc.mean_ci([r["train_loss"] for r in rs if math.isfinite(r["train_loss"])] or [99.0]),
                    "blown_up": int(sum(r["blown_up"] for r in rs)),
                }
            )
    return {
        "samples": samples,
        "centres": {m: centres[m] for m in tuned["methods"]},
        "sizes": tuned,
        "table": table,
        "all_runs": _slope_block(rows, trained_only=False),
        "trained_only": _slope_block(rows, trained_only=True),
        "blown_up": int(sum(r["blown_up"] for r in rows)),
        "n_runs": len(rows) + len(sweep["tuning_rows"]),
        "tuning": sweep["tuning"],
        "rows": _clean(rows),
        "tuning_rows": _clean(sweep["tuning_rows"]),
        "seconds": time.perf_counter() - start,
    }


def run_batch_tuned(scale: str, seed: int, out: Path, tuned: dict | None = None, sizes: dict | None = None) -> dict:
    """Run part 3 and merge it into the results file ``out`` (key ``"batch_tuned"``), leaving the rest as it was.

    The B = 32 rates come from the file's method comparison (or :data:`LR_CENTRES` if the file is missing).
    """
    cfg = isodl.setup(seed, "course" if scale == "smoke" else scale)
    tuned = dict(TUNED[scale] if tuned is None else tuned)
    result = json.loads(out.read_text()) if out.exists() else {"scale": cfg.scale, "seed": seed}
    sizes = dict(result.get("sizes") or sizes or (SMOKE if scale == "smoke" else SIZES[cfg.scale]))
    signals = data.mnist1d()
    split = nc.split_data(signals, n_val=500)
    widths = result.get("widths") or [signals.n_features, *sizes["hidden"], signals.n_classes]
    centres = {**nc.LR_CENTRES, **result.get("comparison", {}).get("chosen", {})}
    samples = result.get("batch_size", {}).get("samples") or 32 * nc.steps_for_epochs(
        split.x_train.shape[0], 32, sizes["epochs"]
    )
    result["batch_tuned"] = batch_tuned_test(split, widths, tuned, centres, samples, log=lambda s: print(s, flush=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def report_batch_tuned(block: dict) -> str:
    """A short plain-text summary of part 3."""
    lines = [
        f"batch size, rate tuned per (method, B), fixed sample budget {block['samples']}, {block['seconds']:.0f} s:"
    ]
    for r in block["table"]:
        t, lo = r["test"], r["train_loss"]
        edge = "  (chosen rate at the grid's edge)" if r["at_edge"] else ""
        lines.append(
            f"  {nc.LABELS[r['method']]:20s} B={r['batch_size']:<4d} lr {r['lr']:<8.4g} test {t['mean']:.3f} "
            f"[{t['lo']:.3f}, {t['hi']:.3f}] train loss {lo['mean']:.3f}  blown up {r['blown_up']}{edge}"
        )
    for kind in ("all_runs", "trained_only"):
        b = block[kind]
        for m, s in b["slopes"].items():
            lines.append(
                f"  {kind}: slope {nc.LABELS[m]:20s} {s['mean']:+.4f} [{s['lo']:+.4f}, {s['hi']:+.4f}] per doubling"
            )
        for ref in ("minus_none", "minus_batchnorm"):
            for m, d in b[ref].items():
                lines.append("  " + kind + ": " + nc.describe_difference(f"{m} {ref.replace('_', ' ')}", d))
    return "\n".join(lines)


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
    parser.add_argument(
        "--part",
        choices=("all", "main", "batch_tuned"),
        default="all",
        help="main: parts 1-2; batch_tuned: part 3 only, merged into the existing results file; all: both",
    )
    args = parser.parse_args(argv)
    out = args.out or RESULTS / f"normalisation_experiments_{args.scale}.json"
    if args.part == "batch_tuned":
        result = run_batch_tuned(args.scale, args.seed, out)
        print(report_batch_tuned(result["batch_tuned"]))
        print(f"written to {out}")
        return result
    if args.scale == "smoke":
        result = run("course", args.seed, sizes=SMOKE, methods=["none", "batchnorm", "affine_like"])
    else:
        result = run(args.scale, args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(report(result))
    if args.part == "all":
        result = run_batch_tuned(args.scale, args.seed, out)
        print(report_batch_tuned(result["batch_tuned"]))
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
