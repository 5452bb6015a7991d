"""Grow or shrink a trained layer to every target width: the 4 x 4 grid behind notebook 08, section 3.

A single hidden layer ``[64, m, 10]`` on the digits. For each start width and
target width in {4, 8, 12, 16}: train 8 epochs at the start width, move
linearly to the target over 8 epochs (scaffold neurons added, or the weakest
removed with o/psi compensation after a fresh SVD, one neuron at a time), then
keep training for 56 more epochs, to a plateau (72 epochs in all). Controls for
each target: a static isotropic network and a static elementwise-tanh network of
the target width, trained for the same 72 epochs on the same mini-batches. The
first 24 epochs are the schedule of the short run (8 + 8 + 8), so the accuracy
after epoch 24 and after epoch 72 both come from the same runs. AdamW, lr 3e-3,
batch 96, float32; the seeds are 0 .. SEEDS-1. Results (test accuracy after every epoch, per run) go to
``scripts/results/grow_shrink_grid.json``, which notebook 08 plots next to a
small live replication.

    python scripts/grow_shrink_grid.py              # 12 seeds (the committed run): 558 s on the busy 2-core course CPU
    python scripts/grow_shrink_grid.py --seeds 2 --out /tmp/grid.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import isodl
from isodl.core import data
from isodl.topology import schedules

WIDTHS = (4, 8, 12, 16)
OUT = Path(__file__).resolve().parent / "results" / "grow_shrink_grid.json"


def summarise(results: dict) -> dict[str, tuple[float, float]]:
    """Final accuracy per grid cell and control: (mean, standard error over seeds)."""
    rows = {}
    for group in ("adaptive", "static", "elementwise"):
        for key, runs in results[group].items():
            final = np.array([r[-1] for r in runs])
            se = final.std(ddof=1) / np.sqrt(len(final)) if len(final) > 1 else float("nan")
            rows[f"{group} {key}"] = (float(final.mean()), float(se))
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--epochs", type=int, nargs=3, default=[8, 8, 56], metavar=("WARMUP", "ADAPT", "SETTLE"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    isodl.setup(0, "course")
    t0 = time.perf_counter()
    warmup, adapt, settle = args.epochs
    results = schedules.grow_shrink_grid(
        data.digits(seed=0),
        args.widths,
        args.widths,
        list(range(args.seeds)),
        warmup=warmup,
        adapt=adapt,
        settle=settle,
    )
    results["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results))
    for name, (mean, se) in summarise(results).items():
        print(f"{name:22s} final test accuracy {mean:.3f} +- {se:.3f}")
    print(f"{len(results['seeds'])} seeds, {results['seconds']} s; written to {args.out}")
    return results


if __name__ == "__main__":
    main()
