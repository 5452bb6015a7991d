"""SRM at the size of a real model's layer, streamed (isodl.symmetry.srm.spotlight_resonance_stream, notebook 02).

The goal: n = 768 (a transformer's width), all 589,056 ordered planes of the
standard basis (PERM), N = 4,096 Gaussian activations (seeded generator),
A = 360 angles, epsilon = 0.1; the mean curve and every plane's four-fold
harmonic, contrast and peak. Target: <= 60 s and <= 2 GB peak memory on the
course's 2-core CPU. The full ``[P, A]`` array of curves would take 1.7 GB
in float64 before any work, so ``spotlight_resonance_stream`` reduces each
chunk of planes as it goes (and sweeps only the planes ``i < j``: the curve
of ``(j, i)`` is the exact reflection of the curve of ``(i, j)``).

Each thread count runs in a fresh child process, so its peak memory
(resident set size of the whole process, PyTorch included, from
``resource.getrusage``) is its own. The default is one thread
(``isodl.core.config.configure_threads``); on a busy machine PyTorch's two
threads can wait for each other, which is why both are reported.

Agreement check: a seeded random subset of planes (200 by default, both
orientations) is computed in full with ``spotlight_resonance``, and the
streamed curves of the same planes must have identical integer counts; their
summaries (total, max, min, peak index) must be identical and their
harmonics equal ``isodl.symmetry.representations.srm_harmonic`` to 1e-12.

    python benchmarks/bench_srm_large.py                  # the goal, 1 and 2 threads (about 1-2 minutes)
    python benchmarks/bench_srm_large.py --threads 1
    python benchmarks/bench_srm_large.py --n 128 --N 1024 --angles 72 --profile   # small, with a profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import pstats
import resource
import subprocess
import sys
import time

import torch

from isodl.core.config import configure_threads
from isodl.symmetry.representations import srm_harmonic
from isodl.symmetry.srm import pair_indices, spotlight_resonance, spotlight_resonance_stream


def _plane_index(pairs: torch.Tensor, k: int, wanted: torch.Tensor) -> torch.Tensor:
    """Rows of ``pairs`` (sorted row-major, as ``plane_pairs`` returns them) holding the pairs ``wanted``."""
    key = pairs[:, 0] * k + pairs[:, 1]
    idx = torch.searchsorted(key, wanted[:, 0] * k + wanted[:, 1])
    if not torch.equal(key[idx], wanted[:, 0] * k + wanted[:, 1]):
        raise SystemExit("the subset's planes are not among the streamed planes")
    return idx


def run_case(args, threads: int) -> dict:
    """The measured run in this process: returns the figures as a dict."""
    torch.set_num_threads(threads)
    n, n_samples, n_angles, eps = args.n, args.N, args.angles, args.epsilon
    gen = torch.Generator().manual_seed(args.seed)
    acts = torch.randn(n_samples, n, generator=gen, dtype=torch.float64)
    basis = torch.eye(n, dtype=torch.float64)
    n_check = min(args.check_planes, n * (n - 1))
    # The agreement subset, computed in full (a seeded subset of the ordered planes).
    start = time.perf_counter()
    full = spotlight_resonance(acts, basis, eps, n_angles, "perm", max_planes=n_check, seed=args.seed + 1)
    t_full = time.perf_counter() - start
    full_counts = torch.round(full.values * n_samples).to(torch.int64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    keep = _plane_index(pair_indices(n, "perm"), n, full.pairs)  # sorted, as full.pairs is
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    res = spotlight_resonance_stream(
        acts, basis, eps, n_angles, "perm", keep_planes=keep, chunk_planes=args.chunk_planes, top_k=args.top_k
    )
    if profiler is not None:
        profiler.disable()
    t_stream = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)

    # Agreement: integer counts, then the integer summaries, then the harmonic.
    streamed_counts = torch.round(res.kept_values * n_samples).to(torch.int64)  # rows: sorted plane indices
    same_counts = bool(torch.equal(res.kept, keep) and torch.equal(streamed_counts, full_counts))
    sel = keep
    same_summaries = bool(
        torch.equal(res.total[sel], full_counts.sum(1))
        and torch.equal(res.max_count[sel], full_counts.amax(1))
        and torch.equal(res.min_count[sel], full_counts.amin(1))
        and torch.equal(res.peak_index[sel], torch.argmax(full_counts, dim=1))
    )
    worst_h = 0.0
    for row, plane in enumerate(sel.tolist()):
        ref = srm_harmonic(full.values[row], full.angles)
        got = float(res.harmonic[plane])
        if math.isnan(ref) != math.isnan(got):
            worst_h = math.inf
        elif not math.isnan(ref):
            worst_h = max(worst_h, abs(ref - got))
    mirrored_in_check = int((full.pairs[:, 0] > full.pairs[:, 1]).sum())
    mean = res.mean
    return {
        "threads": threads,
        "planes": res.n_planes,
        "mirrored": res.mirrored,
        "chunks": res.n_chunks,
        "chunk_planes": res.chunk_planes,
        "largest_chunk": res.largest_chunk,
        "stream_s": t_stream,
        "full_subset_s": t_full,
        "rss_before_mb": before / 1024,
        "peak_mb": peak / 1024,
        "check_planes": int(full.pairs.shape[0]),
        "mirrored_in_check": mirrored_in_check,
        "same_counts": same_counts,
        "same_summaries": same_summaries,
        "harmonic_max_diff": worst_h,
        "mean_min": float(mean.min()),
        "mean_max": float(mean.max()),
        "mean_harmonic": srm_harmonic(mean, res.angles),
        "harmonic_abs_max": float(res.harmonic.nan_to_num(0.0).abs().max()),
        "top_pair": res.top_pairs[0].tolist() if res.top.numel() else None,
    }


def _print_row(r: dict, goal_s: float, goal_mb: float) -> bool:
    agree = r["same_counts"] and r["same_summaries"] and r["harmonic_max_diff"] <= 1e-12
    ok = r["stream_s"] <= goal_s and r["peak_mb"] <= goal_mb
    print(
        f"   {r['threads']:>7} {r['stream_s']:>9.2f} {r['peak_mb']:>9.0f} {r['rss_before_mb']:>9.0f} "
        f"{r['planes']:>9,} {r['mirrored']:>9,} {r['chunks']:>7} {r['largest_chunk']:>6}  "
        f"{'identical' if agree else 'DIFFERENT'} ({r['check_planes']} planes, {r['mirrored_in_check']} mirrored; "
        f"harmonic within {r['harmonic_max_diff']:.1e})   goal: {'met' if ok else 'NOT met'}"
    )
    return agree


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=768, help="dimension (standard basis, n (n - 1) ordered planes)")
    parser.add_argument("--N", type=int, default=4096, help="number of activations")
    parser.add_argument("--angles", type=int, default=360, help="number of probe angles A")
    parser.add_argument("--epsilon", type=float, default=0.1, help="cone threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-planes", type=int, default=200, help="planes in the agreement check")
    parser.add_argument("--chunk-planes", type=int, default=None, help="memory bound (default: the library's)")
    parser.add_argument("--top-k", type=int, default=16)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each in a fresh process")
    parser.add_argument("--in-process", action="store_true", help="run in this process (no fresh child per run)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the streamed call (stderr)")
    parser.add_argument("--goal-s", type=float, default=60.0)
    parser.add_argument("--goal-mb", type=float, default=2048.0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_case(args, args.child)))
        return
    try:
        threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"--threads must be comma-separated integers, got {args.threads!r}") from None
    default_threads = configure_threads()
    planes = args.n * (args.n - 1)
    print(
        f"torch {torch.__version__}; default {default_threads} thread(s); float64\n"
        f"n = {args.n}, standard basis, PERM ({planes:,} ordered planes), N = {args.N:,} Gaussian activations, "
        f"A = {args.angles}, epsilon = {args.epsilon}; the [P, A] curves in float64 would be "
        f"{planes * args.angles * 8 / 2**30:.2f} GiB\n"
    )
    print(
        f"   {'threads':>7} {'seconds':>9} {'peak MB':>9} {'MB before':>9} {'planes':>9} {'mirrored':>9} "
        f"{'chunks':>7} {'chunk':>6}  agreement with spotlight_resonance"
    )
    all_agree, results = True, []
    for threads in threads_list:
        if args.in_process:
            r = run_case(args, threads)
        else:
            child = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--child", str(threads)]
            out = subprocess.run(child, capture_output=True, text=True, check=True)
            if args.profile:
                print(out.stderr, file=sys.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        all_agree &= _print_row(r, args.goal_s, args.goal_mb)
    r = results[0]
    print(
        f"\n   mean curve over planes: {r['mean_min']:.5f} .. {r['mean_max']:.5f} "
        f"(four-fold harmonic {r['mean_harmonic']:+.4f}); largest per-plane |harmonic| {r['harmonic_abs_max']:.3f}; "
        f"top plane by |harmonic|: {r['top_pair']}"
    )
    print(f"   full computation of the {r['check_planes']} check planes: {r['full_subset_s']:.2f} s")
    if not all_agree:
        raise SystemExit("the streamed SRM disagrees with spotlight_resonance")


if __name__ == "__main__":
    main()
