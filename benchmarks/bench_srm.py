"""Speed and memory of the Spotlight Resonance Method in isodl.symmetry.srm (notebook 02).

Prints two figures, on the CPU, float64 activations (tanh of standard Gaussian
samples, so the curves have structure):

1. **Against the rotation-matrix reference**: n = 16, N = 2,000, the standard
   basis (K = 16), PERM (240 planes), A = 100 angles. The reference,
   ``isodl.symmetry.srm.rotation_matrix_srm``, builds a full n x n rotation matrix for
   every plane and angle and contracts it with the activations in one
   unoptimised ``einsum``, as the author's code does. The library's
   ``spotlight_resonance`` is timed with both evaluation methods of the exact
   in-plane formula ("arcs", the default, and "dense"); all three must return
   identical values. Goal: the library >= 100x faster.
2. **A large basis, the library alone**: n = 64, a Thomson basis of K = 64
   vectors (4,032 planes, PERM), N = 2,000, A = 360. Run in a fresh child
   process to measure its peak memory (resident set size of the whole process,
   PyTorch included). Goal: <= 10 s and <= 1 GB.

Timings are medians over repeats (the reference runs once: it is slow). On a
shared, busy machine absolute times are not meaningful, and PyTorch's two
threads may spin against other processes; the run is repeated with one thread
for comparison.

    python benchmarks/bench_srm.py            # about 1 minute on 2 cores
    python benchmarks/bench_srm.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from isodl.core.config import configure_threads
from isodl.symmetry.srm import rotation_matrix_srm, spotlight_resonance, thomson_basis


def _median_time(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def against_reference(repeats: int) -> None:
    n, n_samples, n_angles, eps = 16, 2000, 100, 0.5
    gen = torch.Generator().manual_seed(0)
    acts = torch.tanh(torch.randn(n_samples, n, generator=gen, dtype=torch.float64))
    basis = torch.eye(n, dtype=torch.float64)
    print(f"1. n = {n}, N = {n_samples:,}, standard basis K = {n}, PERM (240 planes), A = {n_angles}, epsilon = {eps}")
    start = time.perf_counter()
    ref = rotation_matrix_srm(acts, basis, eps, n_angles, "perm")
    t_ref = time.perf_counter() - start
    spotlight_resonance(acts, basis, eps, n_angles, "perm")  # warm-up
    rows = [("rotation matrices (reference)", t_ref, ref)]
    for method in ("dense", "arcs"):
        t, res = _median_time(
            lambda m=method: spotlight_resonance(acts, basis, eps, n_angles, "perm", method=m), repeats
        )
        rows.append((f"isodl.symmetry.srm, method={method!r}", t, res))
    print(f"   {'implementation':<32} {'seconds':>9} {'speed-up':>9}  identical values")
    for name, t, res in rows:
        same = bool(torch.equal(res.values, ref.values))
        print(f"   {name:<32} {t:>9.4f} {t_ref / t:>8.0f}x  {same}")
        if not same:
            raise SystemExit(
                f"{name} disagrees with the reference: largest difference {(res.values - ref.values).abs().max():.3g}"
            )
    best = t_ref / rows[-1][1]
    print(f"   goal >= 100x for the library's default (arcs): {'met' if best >= 100 else 'NOT met'} ({best:.0f}x)\n")


def _child(threads: int) -> None:
    """Run the large case and print JSON (called in a fresh process)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    basis = thomson_basis(64, 64, seed=0)
    t_basis = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    acts = torch.tanh(torch.randn(2000, 64, generator=gen, dtype=torch.float64))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    res = spotlight_resonance(acts, basis, 0.3, 360, "perm")
    t_srm = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "threads": threads,
                "basis_s": t_basis,
                "srm_s": t_srm,
                "planes": int(res.values.shape[0]),
                "rss_before_mb": before / 1024,
                "peak_mb": peak / 1024,
                "mean": float(res.values.mean()),
            }
        )
    )


def large_basis(threads_list: list[int]) -> None:
    print(
        "2. n = 64, Thomson basis K = 64 (4,032 planes, PERM), N = 2,000, A = 360, epsilon = 0.3 (library alone, fresh process)"
    )
    for threads in threads_list:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(threads)], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ok = r["srm_s"] <= 10 and r["peak_mb"] <= 1024
        print(
            f"   {r['threads']} thread(s): Thomson basis {r['basis_s']:.2f} s; SRM over {r['planes']} planes {r['srm_s']:.2f} s; "
            f"peak memory {r['peak_mb']:.0f} MB (process, {r['rss_before_mb']:.0f} MB before the SRM call); "
            f"goal <= 10 s and <= 1 GB: {'met' if ok else 'NOT met'}"
        )
    print()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return
    threads = configure_threads()
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {threads} CPU thread(s), float64\n")
    against_reference(3 if args.quick else 7)
    large_basis(sorted({threads, 1}, reverse=True))
    print(f"total benchmark time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
