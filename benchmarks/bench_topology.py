"""Cost of isotropic networks and of their structural operations (isodl.topology, notebooks 05-07).

Prints two figures, on the CPU, float32:

1. **Training step time**, IsotropicMLP against the same MLP with elementwise
   tanh (same widths, same orthogonal initialisation), widths
   [512, 512, 512, 512, 10], batch 256, AdamW: one forward, backward and
   optimiser step. The isotropic net is timed twice: plain (o and psi off, as
   in the paper's accuracy comparison) and with the course defaults (trainable
   o, psi with decay). Goal: ratio <= 1.3.
2. **One structural operation against one training epoch**: one neurogenesis
   and one neurodegeneration (each includes a fresh SVD of the layer and
   carries the AdamW state) on hidden layer 1, against one epoch of training.
   Two settings:

   * the shape of the paper's timing experiment (E0) at width 512:
     [3072, 512, 512, 10], 50,000 samples (CIFAR-10 sized; synthetic inputs,
     since only the shape matters for time), batch 48. The epoch time is the
     median step time times the 1,042 steps of an epoch, measured on a sample
     of steps (a full epoch takes minutes on 2 cores);
   * the course's scale: MNIST-1D, [40, 128, 128, 10], 4,000 samples, batch
     48, a whole epoch measured.

   Goal: one operation <= 1 % of an epoch.

Timings are medians over interleaved repeats, so a busy machine slows both
sides of a ratio alike; absolute times on a shared machine are not meaningful.
The thread count follows isodl.core.config.configure_threads (2 by default). On a
machine where other processes hold the cores, every multi-threaded kernel waits
for its second thread; the isotropic step launches a few more small kernels per
layer than elementwise tanh (the squared norm, the gain, the rescaling and their
gradients), so it suffers more: on a shared machine single-threaded timings
are the reproducible ones.

    python benchmarks/bench_topology.py            # about a minute on 2 cores
    python benchmarks/bench_topology.py --quick    # fewer repeats
    ISODL_THREADS=1 python benchmarks/bench_topology.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from isodl.core.config import configure_threads
from isodl.core.train import train_epoch
from isodl.topology.network import ElementwiseTanhMLP, IsotropicMLP


def _step(model, opt, x, y) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y) + model.penalty()
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def step_times(repeats: int) -> None:
    widths, batch = [512, 512, 512, 512, 10], 256
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (batch,), generator=gen)
    models = {
        "elementwise tanh": ElementwiseTanhMLP(widths, generator=torch.Generator().manual_seed(1)),
        "isotropic (o, psi off)": IsotropicMLP(widths, "none", "none", generator=torch.Generator().manual_seed(1)),
        "isotropic (defaults)": IsotropicMLP(widths, generator=torch.Generator().manual_seed(1)),
    }
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-3) for k, m in models.items()}
    times = {k: [] for k in models}
    for _ in range(5):  # warm-up
        for k in models:
            _step(models[k], opts[k], x, y)
    for _ in range(repeats):
        for k in models:  # interleaved: load changes hit every model alike
            times[k].append(_step(models[k], opts[k], x, y))
    base = statistics.median(times["elementwise tanh"])
    print(f"1. training step, widths {widths}, batch {batch}, AdamW, float32 ({repeats} interleaved repeats, median)")
    print(f"   {'model':<24} {'ms/step':>8} {'ratio':>6}")
    for k in models:
        med = statistics.median(times[k])
        print(f"   {k:<24} {1e3 * med:>8.2f} {med / base:>6.2f}")
    worst = max(statistics.median(times[k]) for k in models if k != "elementwise tanh") / base
    print(f"   goal <= 1.3x: {'met' if worst <= 1.3 else 'NOT met'} (largest ratio {worst:.2f})\n")


def _time_ops(model, opt, layer: int, repeats: int) -> dict[str, float]:
    out = {"neurogenesis": [], "neurodegeneration": []}
    gen = torch.Generator().manual_seed(0)
    for _ in range(repeats):  # alternate so the width stays put
        start = time.perf_counter()
        model.neurogenesis(layer, 1, optimizer=opt, generator=gen)
        out["neurogenesis"].append(time.perf_counter() - start)
        start = time.perf_counter()
        model.neurodegeneration(layer, 1, optimizer=opt)
        out["neurodegeneration"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in out.items()}


def ops_vs_epoch_paper_shape(repeats: int, sample_steps: int) -> None:
    widths, n_train, batch = [3072, 512, 512, 10], 50_000, 48
    steps = -(-n_train // batch)
    gen = torch.Generator().manual_seed(0)
    model = IsotropicMLP(widths, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    x = torch.randn(batch, widths[0], generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    for _ in range(5):
        _step(model, opt, x, y)
    step_samples, op_samples = [], {"neurogenesis": [], "neurodegeneration": []}
    chunk = max(1, sample_steps // repeats)
    for _ in range(repeats):  # interleave steps and operations
        step_samples += [_step(model, opt, x, y) for _ in range(chunk)]
        for k, v in _time_ops(model, opt, 1, 1).items():
            op_samples[k].append(v)
    epoch = statistics.median(step_samples) * steps
    print(
        f"2a. paper's E0 shape at width 512: widths {widths}, {n_train:,} samples, batch {batch} ({steps} steps/epoch), AdamW"
    )
    print(
        f"    epoch = median step ({1e3 * statistics.median(step_samples):.1f} ms over {len(step_samples)} steps) x {steps} = {epoch:.1f} s"
    )
    _report_ops({k: statistics.median(v) for k, v in op_samples.items()}, epoch)


def ops_vs_epoch_course(repeats: int) -> None:
    from isodl.core.data import mnist1d

    data = mnist1d()
    model = IsotropicMLP([40, 128, 128, 10], generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(0)
    train_epoch(model, opt, data.x_train, data.y_train, batch_size=48, generator=gen, penalty=model.penalty)  # warm-up
    epochs, op_samples = [], {"neurogenesis": [], "neurodegeneration": []}
    for _ in range(max(3, repeats // 4)):
        start = time.perf_counter()
        train_epoch(model, opt, data.x_train, data.y_train, batch_size=48, generator=gen, penalty=model.penalty)
        epochs.append(time.perf_counter() - start)
        for k, v in _time_ops(model, opt, 1, 2).items():
            op_samples[k].append(v)
    epoch = statistics.median(epochs)
    print(f"2b. course scale: MNIST-1D, widths [40, 128, 128, 10], {data.n_train:,} samples, batch 48, AdamW")
    print(f"    epoch = {epoch:.3f} s (median of {len(epochs)} whole epochs)")
    _report_ops({k: statistics.median(v) for k, v in op_samples.items()}, epoch)


def _report_ops(ops: dict[str, float], epoch: float) -> None:
    for k, v in ops.items():
        share = 100 * v / epoch
        print(
            f"    one {k:<18} {1e3 * v:>8.1f} ms = {share:5.2f} % of an epoch  (goal <= 1 %: {'met' if share <= 1 else 'NOT met'})"
        )
    print()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args(argv)
    threads = configure_threads()
    repeats = 10 if args.quick else 30
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {threads} CPU thread(s), float32\n")
    step_times(repeats)
    ops_vs_epoch_paper_shape(max(3, repeats // 3), sample_steps=3 * repeats)
    ops_vs_epoch_course(repeats)
    print(f"total benchmark time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
