"""Tests of isodl.normalisation.experiments: models, the SGD loop, the comparison and batch-size machinery, the control layer."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from isodl.core import data
from isodl.core.train import Divergence
from isodl.normalisation import divergence, layers
from isodl.normalisation import experiments as nc
from isodl.normalisation import plots as norm_plots

F64 = torch.float64
WIDTHS = [6, 16, 16, 3]


@pytest.fixture(scope="module")
def blobs():
    ds = data.gaussian_blobs(n_samples=400, n_features=6, n_classes=3, spread=1.5, seed=0)
    return nc.split_data(ds, n_val=60, seed=0)


# --------------------------------------------------------------------------- models


def test_build_mlp_placements():
    kinds = {
        "none": [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear],
        "batchnorm": [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear],
        "layernorm": [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear],
        "rmsnorm": [nn.Linear, layers.RMSNorm, nn.ReLU, nn.Linear, layers.RMSNorm, nn.ReLU, nn.Linear],
        "l2": [layers.L2Norm, nn.Linear, nn.ReLU, layers.L2Norm, nn.Linear, nn.ReLU, layers.L2Norm, nn.Linear],
        "affine_like": [layers.AffineLike, nn.ReLU, layers.AffineLike, nn.ReLU, layers.AffineLike],
        "rescaled_grad": [nc.RescaledGradLinear, nn.ReLU, nc.RescaledGradLinear, nn.ReLU, nc.RescaledGradLinear],
        "l2_nobias": [layers.L2Norm, nn.Linear, nn.ReLU, layers.L2Norm, nn.Linear, nn.ReLU, layers.L2Norm, nn.Linear],
    }
    assert set(kinds) == set(nc.ALL_METHODS)
    for method, expected in kinds.items():
        model = nc.build_mlp(method, WIDTHS)
        assert [type(m) for m in model] == expected, method
        assert model(torch.randn(5, 6)).shape == (5, 3)
        assert isinstance(nc.first_affine(model), (nn.Linear, layers.AffineLike))
    torch.manual_seed(0)
    l2 = nc.build_mlp("l2", [64, 256, 3]).requires_grad_(False)
    assert abs(float(l2[1].weight.std()) - 1) < 0.03 and float(l2[1].bias.abs().max()) == 0
    assert nc.build_mlp("affine_like", WIDTHS, init="linear")[0].init == "linear"


@pytest.mark.parametrize("method", nc.ALL_METHODS)
def test_build_mlp_from_a_generator_draws_what_manual_seed_draws(method):
    init = {"init": "linear"} if method == "affine_like" else {}
    torch.manual_seed(7)
    reference = nc.build_mlp(method, WIDTHS, **init)
    state = torch.random.get_rng_state()
    model = nc.build_mlp(method, WIDTHS, generator=torch.Generator().manual_seed(7), **init)
    assert torch.equal(state, torch.random.get_rng_state()), "the global random state is not used"
    for (name, a), (_, b) in zip(reference.named_parameters(), model.named_parameters()):
        assert torch.equal(a, b), (method, name)
    with pytest.raises(TypeError, match="generator"):
        nc.build_mlp(method, WIDTHS, generator=7)


def test_rescaled_grad_linear_forward_backward_and_one_step():
    torch.manual_seed(0)
    layer = nc.RescaledGradLinear(5, 3).to(F64)
    plain = nn.Linear(5, 3).to(F64)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(4, 5, dtype=F64) * torch.tensor([0.1, 1, 3, 10], dtype=F64)[:, None]
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(4, 3, dtype=F64)
    (layer(x1) * g).sum().backward()
    (plain(x2) * g).sum().backward()
    torch.testing.assert_close(layer(x), plain(x))
    torch.testing.assert_close(x1.grad, x2.grad)  # the true gradient flows back
    scale = 1 / ((x * x).sum(1, keepdim=True) + 1)
    torch.testing.assert_close(layer.weight.grad, (g * scale).T @ x)
    torch.testing.assert_close(layer.bias.grad, (g * scale).sum(0))
    step = divergence.one_step(layer, x, lr=0.3)
    torch.testing.assert_close(step.ratio, torch.ones(4, dtype=F64), rtol=0, atol=1e-10)


def test_effective_step_ratios_at_batch_size_one():
    torch.manual_seed(0)
    x = torch.randn(50, 6, dtype=F64) * 2
    y = torch.randint(0, 3, (50,))
    expected = {"affine_like": 1.0, "l2": 2.0, "rescaled_grad": 1.0}
    for method, value in expected.items():
        model = nc.build_mlp(method, WIDTHS).to(F64)
        r = nc.effective_step_ratios(model, x, y, lr=0.1, batch_size=1, n_batches=6)
        assert r.shape == (6,) and np.allclose(r, value, rtol=0, atol=1e-10), method
    model = nc.build_mlp("none", WIDTHS).to(F64)
    r = nc.effective_step_ratios(model, x, y, lr=0.1, batch_size=1, n_batches=6, seed=3)
    gen = torch.Generator().manual_seed(3)
    idx = [int(torch.randperm(50, generator=gen)[0]) for _ in range(6)]
    assert np.allclose(r, layers.affine_factor(x[idx]).numpy(), rtol=1e-12, atol=1e-10)
    # Larger batches spread the affine-like ratios around 1; the model is not changed.
    model = nc.build_mlp("affine_like", WIDTHS).to(F64)
    before = [p.clone() for p in model.parameters()]
    r = nc.effective_step_ratios(model, x, y, lr=0.1, batch_size=16, n_batches=2)
    assert r.shape == (32,) and r.std() > 0.01
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    bn = nc.build_mlp("batchnorm", WIDTHS).to(F64)
    assert nc.effective_step_ratios(bn, x, y, lr=0.1, batch_size=8, n_batches=1).shape == (8,)


# --------------------------------------------------------------------------- training


def test_split_and_steps():
    ds = data.gaussian_blobs(n_samples=200, n_features=4, seed=1)
    sp = nc.split_data(ds, n_val=30, seed=2)
    assert sp.x_val.shape[0] == 30 and sp.x_train.shape[0] == ds.n_train - 30
    assert torch.equal(sp.x_test, ds.x_test)
    rows = {tuple(r.tolist()) for r in ds.x_train}
    assert {tuple(r.tolist()) for r in torch.cat([sp.x_train, sp.x_val])} == rows
    assert nc.steps_for_epochs(100, 32, 3) == 12
    assert torch.equal(sp.scaled(2.0).x_test, 2 * sp.x_test)
    assert "Split(train=" in repr(sp)


def test_train_run_learns_is_repeatable_and_leaves_global_rng(blobs):
    state = torch.random.get_rng_state()
    rows = [
        nc.train_run(m, blobs, lr=lr, batch_size=16, steps=150, seed=1, widths=WIDTHS)
        for m, lr in (("none", 0.1), ("batchnorm", 0.1), ("affine_like", 2.0))
    ]
    assert torch.equal(state, torch.random.get_rng_state())
    for r in rows:
        assert r["test_accuracy"] > 0.7 and r["val_accuracy"] > 0.7 and not r["diverged"], r
    again = nc.train_run("affine_like", blobs, lr=2.0, batch_size=16, steps=150, seed=1, widths=WIDTHS)
    assert again["test_accuracy"] == rows[2]["test_accuracy"] and again["train_loss"] == rows[2]["train_loss"]
    blown = nc.train_run("none", blobs.scaled(100.0), lr=50.0, batch_size=16, steps=100, seed=0, widths=WIDTHS)
    chance = 1.0 / (int(blobs.y_train.max()) + 1)
    assert isinstance(blown["diverged"], Divergence) and blown["test_accuracy"] == chance == blown["val_accuracy"]
    assert blown["blown_up"] and not any(r["blown_up"] for r in rows)
    assert blown["diverged"].epoch == 1 and not np.isfinite(blown["diverged"].loss)
    assert all(r["diverged"] is None for r in rows)
    assert nc.summarise([blown])[0]["diverged"] == 1
    kept = nc.train_run("l2", blobs, lr=1.0, batch_size=16, steps=5, seed=0, widths=WIDTHS, return_model=True)
    assert isinstance(kept["model"], nn.Sequential)


def test_train_sgd_keeps_every_step_loss_and_records_divergence(blobs):
    torch.manual_seed(0)
    model = nc.build_mlp("batchnorm", WIDTHS)
    out = nc.train_sgd(model, blobs.x_train, blobs.y_train, lr=0.1, batch_size=16, steps=70, seed=3)
    assert out["steps"] == 70 and len(out["losses"]) == 70 and out["diverged"] is None
    assert out["train_loss"] == pytest.approx(float(np.mean(out["losses"][-50:])), rel=1e-15)
    plain = nn.Sequential(nn.Linear(6, 3))
    blown = nc.train_sgd(plain, blobs.x_train * 1e30, blobs.y_train, lr=1e30, batch_size=16, steps=50, seed=0)
    assert isinstance(blown["diverged"], Divergence) and blown["steps"] == len(blown["losses"]) < 50
    assert all(np.isfinite(blown["losses"])) and not np.isfinite(blown["diverged"].loss)


def test_compare_and_summarise(blobs):
    grid = {"none": [0.01, 0.2], "affine_like": [0.5, 4.0]}
    rows = nc.compare_methods(blobs, grid, seeds=[0, 1], epochs=1, batch_size=32, widths=WIDTHS)
    assert len(rows) == 8 and {r["steps"] for r in rows} == {nc.steps_for_epochs(blobs.x_train.shape[0], 32, 1)}
    summary = nc.summarise(rows)
    assert len(summary) == 4 and all(r["n"] == 2 for r in summary)
    for method in grid:
        mine = [r for r in summary if r["method"] == method]
        best = [r for r in mine if r["best"]]
        assert len(best) == 1 and best[0]["val_mean"] == max(r["val_mean"] for r in mine)
    assert set(nc.best_lrs(summary)) == set(grid)
    table = nc.markdown_table(summary, ["method", "lr", "test_mean"], formats={"test_mean": ".3f"})
    assert table.splitlines()[0] == "| method | lr | test_mean |" and len(table.splitlines()) == 6
    fig = norm_plots.plot_lr_sweep(summary)
    assert isinstance(fig, matplotlib.figure.Figure) and all(ax.get_title() for ax in fig.axes)


def test_batch_size_sweep_protocols_and_slopes(blobs):
    lrs = {"batchnorm": 0.1, "affine_like": 2.0}
    rows = nc.batch_size_sweep(blobs, lrs, [1, 4, 16], seeds=[0], steps=20, widths=WIDTHS)
    assert {(r["method"], r["batch_size"]) for r in rows} == {
        ("batchnorm", 4),
        ("batchnorm", 16),
        ("affine_like", 1),
        ("affine_like", 4),
        ("affine_like", 16),
    }
    assert {r["steps"] for r in rows} == {20} and {r["protocol"] for r in rows} == {"steps"}
    by_epochs = nc.batch_size_sweep(blobs, {"none": 0.1}, [4, 16], seeds=[0], epochs=1, widths=WIDTHS)
    n = blobs.x_train.shape[0]
    assert [r["steps"] for r in by_epochs] == [nc.steps_for_epochs(n, 4, 1), nc.steps_for_epochs(n, 16, 1)]
    table = nc.batch_size_table(rows)
    assert len(table) == 5 and all(r["n"] == 1 for r in table)
    fake = [
        {"method": "m", "seed": s, "batch_size": b, "test_accuracy": 0.9 - 0.05 * np.log2(b) + 0.01 * s}
        for s in (0, 1)
        for b in (1, 4, 16)
    ]
    slopes = nc.batch_size_slopes(fake)
    assert abs(slopes["m"]["mean"] + 0.05) < 1e-12 and slopes["m"]["n"] == 2 and slopes["m"]["sd"] < 1e-12


def test_other_figures():
    fig = norm_plots.plot_effective_steps(
        {
            "none": {1: np.array([5.0, 9.0]), 16: np.array([3.0, 7.0])},
            "affine_like": {1: np.array([1.0, 1.0]), 16: np.array([0.5, 2.0])},
        }
    )
    assert len(fig.axes) == 2
    rows = [{"method": m, "input_scale": c, "test_accuracy": 0.5} for m in ("none", "l2") for c in (0.1, 1.0, 10.0)]
    assert isinstance(norm_plots.plot_scale_ablation(rows), matplotlib.figure.Figure)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors(blobs):
    with pytest.raises(ValueError, match="unknown method"):
        nc.build_mlp("groupnorm")
    with pytest.raises(TypeError, match="widths"):
        nc.build_mlp("none", 40)
    with pytest.raises(ValueError, match="init can only be chosen"):
        nc.build_mlp("none", WIDTHS, init="linear")
    with pytest.raises(ValueError, match="6 features"):
        nc.RescaledGradLinear(6, 2)(torch.randn(3, 5))
    with pytest.raises(TypeError, match="Dataset"):
        nc.split_data((1, 2))
    with pytest.raises(TypeError, match="split must be"):
        nc.train_run("none", "data", lr=0.1, batch_size=4, steps=1)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        nc.train_run("batchnorm", blobs, lr=0.1, batch_size=1, steps=1, widths=WIDTHS)
    with pytest.raises(ValueError, match="widths\\[0\\]"):
        nc.train_run("none", blobs, lr=0.1, batch_size=4, steps=1, widths=[5, 3])
    with pytest.raises(ValueError, match="exactly one of steps"):
        nc.batch_size_sweep(blobs, {"none": 0.1}, [4], seeds=[0])
    with pytest.raises(TypeError, match="seeds"):
        nc.batch_size_sweep(blobs, {"none": 0.1}, [4], seeds=0, steps=1)
    with pytest.raises(TypeError, match="lr_grid"):
        nc.compare_methods(blobs, {"none": 0.1}, seeds=[0], epochs=1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        nc.train_sgd(nn.Linear(6, 3), blobs.x_train, blobs.y_train, lr=-1.0, batch_size=4, steps=1)
    with pytest.raises(ValueError, match="same number of samples"):
        nc.train_sgd(nn.Linear(6, 3), blobs.x_train, blobs.y_train[:5], lr=0.1, batch_size=4, steps=1)
    with pytest.raises(ValueError, match="no nn.Linear"):
        nc.first_affine(nn.ReLU())
    with pytest.raises(ValueError, match="headers"):
        nc.markdown_table([{"a": 1}], ["a"], headers=["a", "b"])


def test_activation_spread_and_scale_ablation(blobs):
    torch.manual_seed(0)
    x = torch.randn(200, 40)
    normal = nc.activation_spread(nc.build_mlp("affine_like", [40, 128, 128, 128, 10]), x)
    linear = nc.activation_spread(nc.build_mlp("affine_like", [40, 128, 128, 128, 10], init="linear"), x)
    assert len(normal) == len(linear) == 4
    assert all(0.4 < v < 1.5 for v in normal), normal
    assert linear[-1] < 0.02 * normal[-1] and linear == sorted(linear, reverse=True), linear
    shifted = nn.Sequential(nn.Linear(40, 3))
    with torch.no_grad():
        shifted[0].bias.fill_(100.0)
    assert nc.activation_spread(shifted, x)[0] < 10, "a constant offset is not spread"
    with pytest.raises(ValueError, match="at least 2 samples"):
        nc.activation_spread(shifted, x[:1])
    l2 = nc.build_mlp("l2", [40, 16, 8, 3])
    inputs = nc.affine_inputs(l2, x)
    assert [tuple(a.shape) for a in inputs] == [(200, 40), (200, 16), (200, 8)]
    assert torch.allclose(inputs[1].norm(dim=1), torch.ones(200))
    assert torch.equal(nc.affine_inputs(nc.build_mlp("none", [40, 3]), x)[0], x)
    rows = nc.compare_methods(blobs, {"l2": [1.0]}, seeds=[0], epochs=1, batch_size=16, widths=WIDTHS)
    abl = nc.scale_ablation(
        blobs, {"l2": 1.0}, [0.1, 1.0], seeds=[0], epochs=1, batch_size=16, widths=WIDTHS, reuse=rows
    )
    assert [r["input_scale"] for r in abl] == [0.1, 1.0]
    assert abl[1]["seconds"] == rows[0]["seconds"], "the c = 1 run is reused, not retrained"
    assert abs(abl[0]["test_accuracy"] - abl[1]["test_accuracy"]) < 0.05, "L2 pre-normalisation ignores the input scale"
    with pytest.raises(TypeError, match="scales"):
        nc.scale_ablation(blobs, {"l2": 1.0}, 2.0, seeds=[0], epochs=1)


# --------------------------------------------------------------------------- notebook 12: statistics, budget, variants


def test_mean_ci_and_paired_difference_by_hand():
    from scipy import stats

    ci = nc.mean_ci([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert ci["mean"] == pytest.approx(2.0) and ci["se"] == pytest.approx(1 / np.sqrt(3))
    assert (ci["lo"], ci["hi"]) == pytest.approx((2 - half, 2 + half))
    one = nc.mean_ci([0.5])
    assert one["n"] == 1 and one["lo"] == -np.inf
    # pairing removes a shared per-seed effect: the paired interval is far narrower than the unpaired spread
    a = {0: 10.1, 1: 20.1, 2: 30.2, 3: 40.1}
    b = {0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0, 9: 5.0}  # seed 9 has no partner and is left out
    d = nc.paired_difference(a, b)
    assert d["seeds"] == [0, 1, 2, 3] and d["mean"] == pytest.approx(0.125)
    assert d["significant"] and d["lo"] > 0
    null = nc.paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.5, 1: 1.5, 2: 3.0})
    assert not null["significant"]
    with pytest.raises(ValueError, match="share no seed"):
        nc.paired_difference({0: 1.0}, {1: 1.0})
    with pytest.raises(TypeError, match="dicts"):
        nc.paired_difference([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        nc.mean_ci([])
    with pytest.raises(ValueError, match="confidence"):
        nc.mean_ci([1.0, 2.0], confidence=1.5)


def test_slope_differences_pair_the_seeds():
    rows = []
    for seed in range(4):
        for b in (8, 32, 128):
            k = np.log2(b)
            rows.append({"method": "none", "seed": seed, "batch_size": b, "test_accuracy": 0.5 + 0.01 * k + 0.1 * seed})
            rows.append({"method": "x", "seed": seed, "batch_size": b, "test_accuracy": 0.5 - 0.02 * k + 0.1 * seed})
    d = nc.slope_differences(rows, "none")["x"]
    assert d["mean"] == pytest.approx(-0.03)
    with pytest.raises(ValueError, match="reference"):
        nc.slope_differences(rows, "batchnorm")


def test_batch_size_sweep_fixed_sample_budget_and_lr_scaling(blobs):
    rows = nc.batch_size_sweep(
        blobs, {"none": 0.1}, [4, 16], seeds=[0], samples=64, lr_scaling="sqrt", reference_batch=16
    )
    by_b = {r["batch_size"]: r for r in rows}
    assert by_b[4]["steps"] == 16 and by_b[16]["steps"] == 4  # every batch size sees 64 samples
    assert by_b[4]["lr"] == pytest.approx(0.05) and by_b[16]["lr"] == pytest.approx(0.1)
    assert {r["protocol"] for r in rows} == {"samples"} and {r["lr_scaling"] for r in rows} == {"sqrt"}
    lin = nc.batch_size_sweep(blobs, {"none": 0.1}, [4], seeds=[0], samples=64, lr_scaling="linear", reference_batch=16)
    assert lin[0]["lr"] == pytest.approx(0.025)
    with pytest.raises(ValueError, match="exactly one"):
        nc.batch_size_sweep(blobs, {"none": 0.1}, [4], seeds=[0], samples=64, steps=3)
    with pytest.raises(ValueError, match="lr_scaling"):
        nc.batch_size_sweep(blobs, {"none": 0.1}, [4], seeds=[0], samples=64, lr_scaling="cubic")
    with pytest.raises(ValueError, match="samples"):
        nc.batch_size_sweep(blobs, {"none": 0.1}, [4, 16], seeds=[0], samples=8)


def test_l2_without_bias_has_factor_one_and_forgets_the_norm():
    net = nc.build_mlp("l2_nobias", [6, 5, 3], generator=torch.Generator().manual_seed(0)).double()
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Linear))
    first = nn.Sequential(*list(net.children())[:2])  # L2Norm -> Linear(bias=False)
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 5
    ratio = divergence.one_step(first, x, lr=0.01).ratio
    torch.testing.assert_close(ratio, torch.ones(7, dtype=torch.float64), rtol=0, atol=1e-10)
    with_bias = nn.Sequential(*list(nc.build_mlp("l2", [6, 5, 3]).double().children())[:2])
    torch.testing.assert_close(
        divergence.one_step(with_bias, x, lr=0.01).ratio, torch.full((7,), 2.0, dtype=torch.float64)
    )
    with torch.no_grad():
        torch.testing.assert_close(net(3 * x), net(x))  # scale-invariant: the norm is discarded


def test_lr_grid_and_paper_results(tmp_path):
    assert nc.lr_grid("affine_like", 3) == [2.0, 8.0, 32.0]
    assert nc.lr_grid("none", 5) == pytest.approx([0.025, 0.1, 0.4, 1.6, 6.4])
    with pytest.raises(ValueError, match="method"):
        nc.lr_grid("nope", 3)
    assert nc.load_paper_results(tmp_path / "missing.json") is None
    (tmp_path / "r.json").write_text('{"scale": "paper"}')
    assert nc.load_paper_results(tmp_path / "r.json") == {"scale": "paper"}


def test_plot_batch_budget():
    matplotlib.use("Agg")
    table = [{"method": "none", "batch_size": b, "n": 3, "mean": 0.5, "sd": 0.01} for b in (8, 32)]
    diffs = {"a minus b": {"mean": -0.01, "lo": -0.02, "hi": 0.0, "significant": False}}
    fig = norm_plots.plot_batch_budget(table, diffs, {"plain": [1.0, 0.5]}, [1, 2])
    assert len(fig.axes) == 3


def test_blown_up_rescore_and_trained_only_slopes():
    ok = {"train_loss": 0.5, "diverged": None, "test_accuracy": 0.6}
    high = {"train_loss": 21.0, "diverged": None, "test_accuracy": 0.1}
    nan = {"train_loss": float("nan"), "diverged": None, "test_accuracy": 0.3}
    div = {"train_loss": 1e30, "diverged": "training diverged", "test_accuracy": 0.0, "val_accuracy": 0.0}
    assert [nc.is_blown_up(r) for r in (ok, high, nan, div)] == [False, True, True, True]
    assert not nc.is_blown_up({"train_loss": 2.0, "diverged": None}) and nc.is_blown_up({"train_loss": 2.4})
    assert not nc.is_blown_up({"train_loss": 2.4}, n_classes=20)
    fixed = nc.rescore([ok, div])
    assert fixed[1]["test_accuracy"] == fixed[1]["val_accuracy"] == 0.1 and div["test_accuracy"] == 0.0
    assert fixed[0]["test_accuracy"] == 0.6 and [r["blown_up"] for r in fixed] == [False, True]
    # "x" falls with B only because its B = 128 runs blew up; without them it runs parallel to "none"
    rows = []
    for seed in range(4):
        for b in (8, 32, 128):
            k = np.log2(b)
            rows.append(
                {
                    "method": "none",
                    "seed": seed,
                    "batch_size": b,
                    "train_loss": 0.5,
                    "test_accuracy": 0.5 + 0.01 * k + 0.01 * seed,
                }
            )
            bad = b == 128
            rows.append(
                {
                    "method": "x",
                    "seed": seed,
                    "batch_size": b,
                    "train_loss": 30.0 if bad else 0.5,
                    "test_accuracy": 0.1 if bad else 0.52 + 0.01 * k + 0.01 * seed,
                }
            )
    every = nc.slope_differences(rows, "none")["x"]
    trained = nc.slope_differences(rows, "none", trained_only=True)["x"]
    assert every["significant"] and every["mean"] < -0.05
    assert trained["mean"] == pytest.approx(0.0, abs=1e-9) and trained["n"] == 4
    assert nc.batch_size_slopes(rows, trained_only=True)["x"]["mean"] == pytest.approx(0.01)
    table = {(r["method"], r["batch_size"]): r for r in nc.batch_size_table(rows)}
    assert table[("x", 128)]["blown_up"] == 4 and table[("x", 128)]["train_loss_median"] == 30.0
    assert table[("none", 128)]["blown_up"] == 0
    with pytest.raises(TypeError, match="trained_only"):
        nc.slope_differences(rows, "none", trained_only="yes")
    with pytest.raises(TypeError, match="row"):
        nc.is_blown_up({"diverged": None})


def test_describe_difference_follows_the_interval():
    below = {"mean": -0.01, "lo": -0.02, "hi": -0.001, "n": 6}
    across = {"mean": -0.01, "lo": -0.02, "hi": 0.003, "n": 6}
    above = {"mean": 0.01, "lo": 0.001, "hi": 0.02, "n": 6}
    assert nc.describe_difference("a", below).endswith("significantly below 0")
    assert nc.describe_difference("a", across).endswith("not significantly different from 0")
    assert nc.describe_difference("a", above).endswith("significantly above 0")
    assert "6 seeds" in nc.describe_difference("a", below) and "[-0.0200, -0.0010]" in nc.describe_difference(
        "a", below
    )
    with pytest.raises(TypeError, match="paired difference"):
        nc.describe_difference("a", {"mean": 0.0})


def test_tune_lr_widens_the_grid_until_the_choice_is_inside(blobs):
    # a centre far below the optimum: the first grid's best rate is its top one, so the grid grows upwards
    t = nc.tune_lr("none", blobs, batch_size=16, samples=320, centre=1e-3, seeds=[0, 1], points=3, max_widen=2)
    assert t["grid"][:3] == pytest.approx([5e-4, 1e-3, 2e-3]) and len(t["grid"]) == 3 + t["widened"]
    assert t["widened"] == 2 and t["grid"][-1] == pytest.approx(8e-3)  # still rising: flagged, not hidden
    assert t["at_edge"] and t["chosen"] == t["grid"][-1]
    assert {r["seed"] for r in t["rows"]} == {0, 1} and len(t["rows"]) == 2 * len(t["grid"])
    assert all(r["steps"] == 20 and r["batch_size"] == 16 for r in t["rows"])
    # the chosen rate has the best mean validation accuracy of the grid
    mean = {lr: np.mean([r["val_accuracy"] for r in t["rows"] if r["lr"] == lr]) for lr in t["grid"]}
    assert mean[t["chosen"]] == max(mean.values())
    # a wide grid around a sensible rate ends with the choice inside
    inside = nc.tune_lr("none", blobs, batch_size=16, samples=320, centre=1e-2, seeds=[0, 1], points=3, max_widen=2)
    assert not inside["at_edge"] and inside["widened"] == 2 and inside["chosen"] == pytest.approx(0.04)


def test_batch_tuned_sweep_keeps_tuning_and_evaluation_seeds_apart(blobs):
    lines = []
    out = nc.batch_tuned_sweep(
        blobs,
        {"none": 0.5, "affine_like": 4.0},
        [4, 16],
        tune_seeds=[10],
        eval_seeds=[0, 1],
        samples=64,
        reference_batch=16,
        points=3,
        max_widen=0,
        progress=lines.append,
    )
    assert len(lines) == 4 and len(out["tuning"]) == 4 and len(out["rows"]) == 8
    assert {r["seed"] for r in out["rows"]} == {0, 1} and {r["seed"] for r in out["tuning_rows"]} == {10}
    by = {(t["method"], t["batch_size"]): t for t in out["tuning"]}
    assert by[("none", 4)]["grid"][1] == pytest.approx(0.25)  # centre 0.5 * sqrt(4 / 16)
    assert all(r["lr"] == by[(r["method"], r["batch_size"])]["chosen"] for r in out["rows"])
    assert nc.slope_differences(out["rows"], "none")["affine_like"]["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="overlap"):
        nc.batch_tuned_sweep(blobs, {"none": 0.5}, [4], tune_seeds=[0], eval_seeds=[0], samples=64)
    with pytest.raises(ValueError, match="points"):
        nc.tune_lr("none", blobs, batch_size=4, samples=64, centre=0.1, seeds=[0], points=2)


def test_holm_adjusted_by_hand():
    from scipy import stats

    a = nc.paired_difference({0: 1.0, 1: 1.2, 2: 0.9, 3: 1.1}, {0: 0.0, 1: 0.1, 2: 0.0, 3: 0.05})
    b = nc.paired_difference({0: 0.1, 1: -0.2, 2: 0.15, 3: 0.0}, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0})
    p_a = 2 * stats.t.sf(abs(a["mean"] / a["se"]), 3)
    p_b = 2 * stats.t.sf(abs(b["mean"] / b["se"]), 3)
    adj = nc.holm_adjusted({"a": a, "b": b})
    assert p_a < p_b and adj["a"] == pytest.approx(2 * p_a) and adj["b"] == pytest.approx(max(2 * p_a, p_b))
    assert nc.holm_adjusted({"a": a}) == {"a": pytest.approx(p_a)}
    with pytest.raises(TypeError, match="paired difference"):
        nc.holm_adjusted({"a": {"mean": 1.0}})


def test_results_path_names_the_committed_file_of_each_scale():
    assert nc.results_path("course") == nc.COURSE_RESULTS and nc.results_path("paper") == nc.PAPER_RESULTS
    assert nc.COURSE_RESULTS.is_file() and nc.PAPER_RESULTS.is_file()
    with pytest.raises(ValueError, match="scale"):
        nc.results_path("huge")
