"""Speed of the course's one isotropic activation (isodl.core.activations, notebooks 01-09) against the special cases it replaced.

Until the library was given one implementation, isotropic tanh existed three times: the
shared, guarded :func:`isodl.core.activations.isotropic_tanh`, and two
special cases written because the shared one was slow: ``_gain_fast`` in
``isodl.topology.network`` (the isotropic MLP's gain, with an intrinsic
length ``o``) and ``_isotropic_tanh_fast`` in ``isodl.symmetry.autoencoder``.
Both special cases are gone from the library; they are re-implemented below,
**only as a reference for this comparison**, exactly as they were.

For each size (width n, batch B) and dtype (float32, float64) one call is a
forward and a backward pass (``y.backward(w)`` with a fixed random ``w``) of:

* ``autoencoder``: :func:`isodl.core.activations.isotropic_tanh` against the
  old ``_isotropic_tanh_fast``;
* ``network``: ``isotropic_gain(z, "tanh", o=o) * z``
  (:func:`isodl.core.activations.isotropic_gain`, called exactly so by every
  hidden layer of :class:`isodl.topology.network.IsotropicMLP`) against the old
  ``_gain_fast``, with a trainable ``o = 1e-6`` that receives a gradient;
* ``guarded``: the shared function on a batch holding one row too long for a
  plain sum of squares (length 1e30 in float32, 1e200 in float64), so the
  whole call takes the overflow-safe path; for information, against the same
  old autoencoder special case on an ordinary batch of that size.

The ratio is new / old (below 1: the shared function is faster). Goal: at most
1.2 at width 512, batch 256, in both dtypes. Timings are medians over
repeats, new and old interleaved, so a busy machine slows both sides of a ratio alike;
absolute times on a shared machine are not meaningful. One CPU thread by
default (isodl.core.config.configure_threads; ``ISODL_THREADS`` overrides it).
On Linux the benchmark first asks glibc (``mallopt``) to keep freed memory
instead of handing it back to the system: otherwise every call pays a
hundred or so page faults for its fresh temporaries, which doubles the times
and makes them jump from run to run (``--no-mallopt`` measures without it).
The benchmark also prints the largest difference between new and old values
and gradients (zero or rounding).

    python benchmarks/bench_activations.py                  # about 15 s on 2 cores
    python benchmarks/bench_activations.py --repeats 20     # quicker, noisier
    python benchmarks/bench_activations.py --sizes 512x256 1024x64
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time

import torch

from isodl.core.activations import isotropic_gain, isotropic_tanh
from isodl.core.config import configure_threads

DEFAULT_SIZES = ("512x256", "64x32", "2048x1024")
GOAL_SIZE = (512, 256)
GOAL_RATIO = 1.2


# --------------------------------------------------------------------------- the old special cases (reference only)


def old_autoencoder_special_case(x: torch.Tensor) -> torch.Tensor:
    """OLD SPECIAL CASE, reference only: ``isodl.symmetry.autoencoder._isotropic_tanh_fast`` as it was.

    Sum of squares, Taylor series below ``|x|^2 = 1e-6``; batches with a squared
    length of 1e30 or more went to the shared function (never the case here).
    """
    s = (x * x).sum(dim=-1, keepdim=True)
    if not float(s.detach().max()) < 1e30:
        return isotropic_tanh(x)
    small = s < 1e-6
    r = torch.sqrt(torch.where(small, torch.ones_like(s), s))
    g = torch.where(small, 1.0 - s / 3.0 + (2.0 / 15.0) * s * s, torch.tanh(r) / r)
    return g * x


def old_network_special_case(z: torch.Tensor, o) -> torch.Tensor:
    """OLD SPECIAL CASE, reference only: ``isodl.topology.network._gain_fast`` as it was (no overflow guard)."""
    s = (z * z).sum(dim=-1) + o
    small = s < 1e-6
    rho = torch.sqrt(torch.where(small, torch.ones_like(s), s))
    return torch.where(small, 1.0 - s / 3.0 + (2.0 / 15.0) * s * s, torch.tanh(rho) / rho)


# --------------------------------------------------------------------------- timing


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (no trimming, no mmap below 32 MB); False where not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 25)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, batch = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxBATCH such as 512x256, got {text!r}") from None
    if width < 1 or batch < 1:
        raise argparse.ArgumentTypeError(f"width and batch must be >= 1, got {text!r}")
    return width, batch


def _fwd_bwd(fn, x: torch.Tensor, w: torch.Tensor, leaves) -> float:
    for leaf in leaves:
        leaf.grad = None
    start = time.perf_counter()
    fn(x).backward(w)
    return time.perf_counter() - start


def _value_and_grads(fn, x: torch.Tensor, w: torch.Tensor, leaves):
    for leaf in leaves:
        leaf.grad = None
    y = fn(x)
    y.backward(w)
    return y.detach(), [leaf.grad.clone() for leaf in leaves]


def _max_diff(a, b) -> float:
    (ya, ga), (yb, gb) = a, b
    diffs = [(ya - yb).abs().max()] + [(p - q).abs().max() for p, q in zip(ga, gb)]
    return float(max(diffs))


def bench_size(width: int, batch: int, dtype: torch.dtype, repeats: int) -> list[dict]:
    """Time every case at one size and dtype; returns one dict per case."""
    gen = torch.Generator().manual_seed(0)
    x = (2.0 * torch.randn(batch, width, generator=gen, dtype=torch.float64) / width**0.5).to(dtype)
    x.requires_grad_(True)
    w = torch.randn(batch, width, generator=gen, dtype=dtype)
    o = torch.tensor(1e-6, dtype=dtype, requires_grad=True)
    huge = x.detach().clone()
    huge[0] *= 1e30 if dtype == torch.float32 else 1e200
    huge.requires_grad_(True)

    # case -> (new function, old function, input of the new one, input of the old one, leaves)
    cases = {
        "autoencoder": (isotropic_tanh, old_autoencoder_special_case, x, x, [x]),
        "network": (
            lambda z: isotropic_gain(z, "tanh", o=o) * z,
            lambda z: old_network_special_case(z, o).unsqueeze(-1) * z,
            x,
            x,
            [x, o],
        ),
        "guarded": (isotropic_tanh, old_autoencoder_special_case, huge, x, [x, huge]),
    }
    diffs = {}
    for name, (new, old, x_new, x_old, leaves) in cases.items():
        if name != "guarded":
            diffs[name] = _max_diff(_value_and_grads(new, x_new, w, leaves), _value_and_grads(old, x_old, w, leaves))
    times = {(name, side): [] for name in cases for side in ("new", "old")}
    # One case at a time (new and old interleaved within it): the guarded path allocates several times more
    # memory, and interleaving it with the others would make them pay for fresh pages it leaves behind.
    for name, (new, old, x_new, x_old, leaves) in cases.items():
        for _ in range(3):  # warm-up
            _fwd_bwd(new, x_new, w, leaves)
            _fwd_bwd(old, x_old, w, leaves)
        for i in range(repeats):  # alternate which side runs first, so neither always follows the other
            sides = (("new", new, x_new), ("old", old, x_old))
            for side, fn, inp in sides if i % 2 == 0 else sides[::-1]:
                times[name, side].append(_fwd_bwd(fn, inp, w, leaves))
    rows = []
    for name in cases:
        t_new = statistics.median(times[name, "new"])
        t_old = statistics.median(times[name, "old"])
        rows.append(
            dict(
                case=name,
                width=width,
                batch=batch,
                dtype=str(dtype).replace("torch.", ""),
                new_us=1e6 * t_new,
                old_us=1e6 * t_old,
                ratio=t_new / t_old,
                max_diff=diffs.get(name, float("nan")),
            )
        )
    return rows


LABELS = {
    "autoencoder": ("isotropic_tanh(x)", "old special case: autoencoder _isotropic_tanh_fast"),
    "network": ('isotropic_gain(z, "tanh", o=o) * z', "old special case: network _gain_fast(z, o) * z"),
    "guarded": ("isotropic_tanh, guarded path", "old special case: autoencoder (ordinary batch)"),
}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", type=_parse_size, default=None, help=f"WIDTHxBATCH (default {' '.join(DEFAULT_SIZES)})"
    )
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per case (median; default 100)")
    parser.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=["float32", "float64"])
    parser.add_argument("--no-mallopt", action="store_true", help="leave the C allocator's settings alone")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    sizes = args.sizes or [_parse_size(s) for s in DEFAULT_SIZES]
    threads = configure_threads()
    kept = False if args.no_mallopt else keep_freed_memory()
    start = time.perf_counter()
    print(
        f"torch {torch.__version__}, {threads} CPU thread(s), forward + backward, {args.repeats} interleaved repeats, "
        f"freed memory {'kept (mallopt)' if kept else 'returned to the system'}\n"
    )
    header = f"{'width x batch':>13} {'dtype':<8} {'new (shared)':<35} {'us':>8}   {'old':<52} {'us':>8} {'new/old':>8} {'max |diff|':>11}"
    print(header)
    print("-" * len(header))
    rows = []
    for width, batch in sizes:
        for dtype_name in args.dtypes:
            for row in bench_size(width, batch, getattr(torch, dtype_name), args.repeats):
                new_label, old_label = LABELS[row["case"]]
                diff = "" if row["max_diff"] != row["max_diff"] else f"{row['max_diff']:.1e}"
                print(
                    f"{f'{width} x {batch}':>13} {row['dtype']:<8} {new_label:<35} {row['new_us']:>8.0f}   "
                    f"{old_label:<52} {row['old_us']:>8.0f} {row['ratio']:>8.2f} {diff:>11}"
                )
                rows.append(row)
    goal = [r for r in rows if (r["width"], r["batch"]) == GOAL_SIZE and r["case"] != "guarded"]
    if goal:
        worst = max(r["ratio"] for r in goal)
        verdict = "met" if worst <= GOAL_RATIO else "NOT met"
        print(
            f"\ngoal: shared within {GOAL_RATIO}x of the old special cases at width 512, batch 256: {verdict} (largest ratio {worst:.2f})"
        )
    print(f"total benchmark time: {time.perf_counter() - start:.1f} s")
    return rows


if __name__ == "__main__":
    main()
