"""Cost of exact recurrent gradients: forward sensitivity (RTRL) versus BPTT.

Prints, for a TanhRNN with input size 4 in float64 (one sequence, no batch),
the wall time per step of one full gradient computation and the analytic
memory each method keeps (see isodl.recurrent.sensitivity.stored_bytes): BPTT keeps T hidden
states, forward sensitivity keeps S = dh/dtheta of size n x P whatever T is.

Expected shape of the result: forward-sensitivity time per step grows like
n^3 to n^4 (the product J_t S_(t-1)) once past fixed Python overhead and is
flat in T; BPTT time per step is nearly flat in n at these sizes (overhead
bound, O(n^2) work); forward-sensitivity memory is flat in T, BPTT memory
linear in T. Runs in well under a minute on 2 CPU cores.

    python benchmarks/bench_rnn.py
    ISODL_THREADS=1 python benchmarks/bench_rnn.py   # steadier on a busy machine

The thread count follows isodl.core.config.configure_threads (2 by default). With 2
threads, the multi-threaded kernels of forward sensitivity slow down sharply
whenever another process holds a core, so on a shared machine single-threaded
timings are the reproducible ones (n = 64 is then about 1.6x slower).
"""

from __future__ import annotations

import time

import torch

from isodl.core.config import configure_threads
from isodl.recurrent.sensitivity import measure_cost

SIZES = (8, 16, 32, 64)
LENGTHS = (50, 100, 200, 400)


def _kib(n_bytes: int) -> str:
    return f"{n_bytes / 1024:,.1f}"


def main() -> None:
    threads = configure_threads()
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {threads} CPU thread(s), float64, input_size=4, batch=1")
    print("time = best of 3 runs (after a warm-up) / T;  memory = analytic bytes of stored tensors\n")
    header = (
        f"{'n':>3} {'T':>4} | {'forward ms/step':>15} {'BPTT ms/step':>12} {'ratio':>6} | "
        f"{'forward KiB':>11} {'BPTT KiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for n in SIZES:
        for T in LENGTHS:
            fs = measure_cost("forward", n, T, repeats=3)
            bp = measure_cost("bptt", n, T, repeats=3)
            print(
                f"{n:>3} {T:>4} | {1e3 * fs.seconds_per_step:>15.3f} {1e3 * bp.seconds_per_step:>12.3f} "
                f"{fs.seconds / bp.seconds:>6.1f} | {_kib(fs.memory_bytes):>11} {_kib(bp.memory_bytes):>9}"
            )
        print("-" * len(header))
    print(f"\ntotal benchmark time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
