"""The hidden-basis experiment of notebook 14 (sections 5-7) over many seeds: does a hidden layer put features on neurons?

For every seed and every arm (hidden activation ReLU, tanh or isotropic tanh; Adam or SGD), the
toy models ``x' = ReLU(W^T f(W x) + b)`` (F = 20, m = 5, importances 0.7^i) are trained at the
sparsities 0.6, 0.75 and 0.9 with 6 initialisations each, exactly as in the notebook (1,000 steps
of batch 256; Adam lr 3e-3; SGD lr 0.5, 0.6, 1.2 by sparsity), and measured against rotated nulls
(:func:`isodl.superposition.experiments.hidden_basis_experiment`): the weight share on the top
neuron, and PPPM, per-coordinate kurtosis and the four-fold SRM harmonic of the pre-activations
``W x`` in the neuron basis against rotated bases. The seeds (100 .. 100 + SEEDS - 1 by default)
are seed streams the notebook never uses, so the results are an independent replication of its
live run. Per-instance results go to ``scripts/results/superposition_hidden_basis.json``, which
notebook 14 reads.

    python scripts/superposition_hidden_basis.py              # 8 seeds (the committed run)
    python scripts/superposition_hidden_basis.py --seeds 2 --steps 50 --out /tmp/hb.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import isodl
from isodl.superposition import experiments, models

OUT = Path(__file__).resolve().parent / "results" / "superposition_hidden_basis.json"
SPARSITIES = (0.6, 0.75, 0.9)
SGD_LR = (0.5, 0.6, 1.2)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--initialisations", type=int, default=6)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    isodl.setup(0, "course")
    t0 = time.perf_counter()
    settings = dict(
        n_features=20, n_hidden=5, decay=0.7, sparsities=list(SPARSITIES), initialisations=args.initialisations,
        steps=args.steps, batch=256, adam_lr=3e-3, sgd_lr=list(SGD_LR), n_samples=512, epsilon=0.8, n_rotations=24,
    )  # fmt: skip
    importance = models.geometric_importance(settings["n_features"], settings["decay"])
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    per_seed = []
    for seed in seeds:
        result = experiments.hidden_basis_experiment(
            SPARSITIES, args.initialisations, importance, n_hidden=settings["n_hidden"], steps=args.steps,
            batch=settings["batch"], adam_lr=settings["adam_lr"], sgd_lr=SGD_LR, seed=seed,
        )  # fmt: skip
        per_seed.append(result)
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    summary = experiments.summarise_hidden_basis(per_seed)
    print(f"statistic minus its rotated null, mean ± s.e. over {len(seeds)} seeds:")
    for (act, opt), row in summary.items():
        print(f"  {act:15s} {opt:4s} " + "  ".join(f"{k} {m:+.3f} ± {s:.3f}" for k, (m, s) in row.items()))
    record = {
        "settings": settings,
        "seeds": seeds,
        "seconds": round(time.perf_counter() - t0, 1),
        "results": [
            {
                f"{act},{opt}": {k: [round(float(v), 6) for v in t] for k, t in arm.items()}
                for (act, opt), arm in r.items()
            }
            for r in per_seed
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} in {record['seconds']:.0f} s")
    return record


if __name__ == "__main__":
    main()
