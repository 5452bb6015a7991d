"""Dimensions per feature on a fine sparsity grid (notebook 14, section 1): does m / ||W||_F^2 stick at 1/2?

The ReLU-output toy model of notebook 14 (F = 20, m = 5, importances 0.7^i; Adam lr 1e-2, 1,000
steps of batch 256, exactly the notebook's settings) is trained at 16 sparsities with 1 / (1 - S)
evenly spaced in log from 2 to 500, with 6 initialisations each (seed stream 200, one the notebook
never uses). Per instance it records m / ||W||_F^2, the number of features represented and the
loss, in ``scripts/results/superposition_dims_sweep.json``; notebook 14 reads it and asks whether the
models stop at 2m features (m / ||W||_F^2 = 1/2; at m = 5 the quantity is a staircase m/k) over more of
the sweep than at 2m - 1 or 2m + 1.

    python scripts/superposition_dims_sweep.py                 # the committed run
    python scripts/superposition_dims_sweep.py --points 4 --steps 50 --out /tmp/dims.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import isodl
from isodl.superposition import experiments, models

OUT = Path(__file__).resolve().parent / "results" / "superposition_dims_sweep.json"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--initialisations", type=int, default=6)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=200)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    isodl.setup(0, "course")
    t0 = time.perf_counter()
    settings = dict(
        n_features=20, n_hidden=5, decay=0.7, initialisations=args.initialisations, steps=args.steps, batch=256,
        lr=1e-2, seed=args.seed, grid="1/(1-S) log-spaced from 2 to 500",
    )  # fmt: skip
    sparsities = experiments.log_sparsity_grid(args.points)
    importance = models.geometric_importance(settings["n_features"], settings["decay"])
    sweep = experiments.train_sweep(
        sparsities, args.initialisations, importance, n_hidden=settings["n_hidden"], steps=args.steps,
        batch=settings["batch"], lr=settings["lr"], seed=args.seed,
    )  # fmt: skip
    per = sweep.per_instance()
    mean, se = experiments.mean_se(per["dims_per_feature"], args.initialisations)
    print("S        1/(1-S)   m/||W||_F^2 (mean ± s.e.)")
    for s, m, e in zip(sparsities, mean, se):
        print(f"{s:.4f}  {1 / (1 - s):8.1f}   {float(m):.3f} ± {float(e):.3f}")
    record = {
        "settings": settings,
        "sparsities": [round(s, 8) for s in sparsities],
        "seconds": round(time.perf_counter() - t0, 1),
        **{k: [round(float(v), 6) for v in per[k]] for k in ("dims_per_feature", "represented", "loss")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} in {record['seconds']:.0f} s")
    return record


if __name__ == "__main__":
    main()
