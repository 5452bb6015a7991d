"""Tests of isodl.topology.schedules: the training drivers over the core loop, function-change measures, schedules.

The drivers train through :mod:`isodl.core.train` (the psi penalty as its hook)
and record a divergence instead of raising.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from isodl.core import train
from isodl.core.train import Divergence
from isodl.topology import schedules
from isodl.topology.network import IsotropicMLP

F64 = torch.float64


def blob_task(n_in=6, n_classes=3, n=240, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(n_classes, n_in, generator=gen, dtype=F64)
    y = torch.arange(n) % n_classes
    x = centres[y] + torch.randn(n, n_in, generator=gen, dtype=F64)
    return x.to(dtype), y


# --------------------------------------------------------------------------- metrics and training helpers


def test_function_change_metrics():
    z = torch.randn(10, 4, dtype=F64)
    same = schedules.function_change(z, z.clone(), labels=torch.arange(10) % 4)
    assert same["max_relative"] == 0.0 and same["kl"] == 0.0 and same["argmax_agreement"] == 1.0
    assert same["delta_accuracy"] == 0.0
    moved = schedules.function_change(z, 1.1 * z)
    assert moved["max_relative"] == pytest.approx(0.1) and moved["eps_scaled"] == pytest.approx(10.0)
    assert moved["kl"] > 0
    with pytest.raises(ValueError, match="same"):
        schedules.function_change(z, z[:3])


def test_isotropic_network_trains_with_the_core_loop_and_its_penalty():
    x, y = blob_task(dtype=torch.float32)
    model = IsotropicMLP([6, 12, 3], generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = train.train_epoch(
        model, opt, x, y, batch_size=48, penalty=model.penalty, generator=torch.Generator().manual_seed(0)
    )
    for i in range(5):
        last = train.train_epoch(
            model, opt, x, y, batch_size=48, penalty=model.penalty, generator=torch.Generator().manual_seed(i)
        )
    assert last.mean_loss < first.mean_loss and train.accuracy(model, x, y) > 0.8
    assert train.predict(model, x).shape == (240, 3)
    for name in ("train_epoch", "predict", "accuracy"):  # one loop, one predict, one accuracy: the core's
        assert name not in schedules.__all__ and getattr(schedules, name, None) in (None, getattr(train, name))
    with pytest.raises(TypeError, match="optimizer"):
        train.train_epoch(model, "adam", x, y)
    with pytest.raises(ValueError, match="same"):
        train.train_epoch(model, opt, x, y[:5])


# --------------------------------------------------------------------------- drivers


def test_fit_classifier_pairs_and_callback():
    x, y = blob_task(dtype=torch.float32)
    data = (x[:180], y[:180], x[180:], y[180:])
    calls = []
    runs = []
    for _ in range(2):
        model = IsotropicMLP([6, 8, 3], generator=torch.Generator().manual_seed(3))
        runs.append(
            schedules.fit_classifier(
                model, data, epochs=3, lr=1e-2, seed=4, after_epoch=lambda e, m, o: calls.append(e)
            )
        )
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]  # same seed, same model: same run
    assert calls == [1, 2, 3, 1, 2, 3] and len(runs[0]["epoch"]) == 4 and math.isnan(runs[0]["train_loss"][0])
    assert isinstance(runs[0]["optimizer"], torch.optim.AdamW) and runs[0]["diverged"] is None
    with pytest.raises(TypeError, match="data"):
        schedules.fit_classifier(model, x, epochs=1)
    with pytest.raises(TypeError, match="after_epoch"):
        schedules.fit_classifier(model, data, epochs=1, after_epoch=3)


def test_fit_classifier_train_loss_is_the_epoch_mean_with_the_penalty():
    x, y = blob_task(dtype=torch.float32)
    data = (x[:180], y[:180], x[180:], y[180:])
    model = IsotropicMLP([6, 8, 3], generator=torch.Generator().manual_seed(3))
    twin = IsotropicMLP([6, 8, 3], generator=torch.Generator().manual_seed(3))
    run = schedules.fit_classifier(model, data, epochs=2, lr=1e-2, seed=4)
    opt = torch.optim.AdamW(twin.parameters(), lr=1e-2, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(4)
    by_hand = [
        train.train_epoch(twin, opt, data[0], data[1], batch_size=48, generator=gen, penalty=twin.penalty).mean_loss
        for _ in range(2)
    ]
    assert run["train_loss"][1:] == by_hand
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def inf_sample_data(seed, batch_size, n=180, where=77):
    """Blob data whose training sample ``where`` is infinite, and the batch it falls in during the first epoch."""
    x, y = blob_task(dtype=torch.float32)
    x_tr = x[:n].clone()
    x_tr[where] = float("inf")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    batch = int((order == where).nonzero()) // batch_size
    return (x_tr, y[:n], x[n:], y[n:]), batch


def test_drivers_record_divergence_instead_of_raising():
    data, batch = inf_sample_data(seed=4, batch_size=48)
    model = IsotropicMLP([6, 8, 3], generator=torch.Generator().manual_seed(3))
    before = [p.detach().clone() for p in model.parameters()]
    run = schedules.fit_classifier(model, data, epochs=3, lr=1e-2, seed=4)
    assert run["diverged"] == Divergence(epoch=1, batch=batch, loss=run["diverged"].loss)
    assert math.isnan(run["diverged"].loss) and run["epoch"] == [0] and len(run["test_accuracy"]) == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if batch == 0:
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    width = schedules.run_width_schedule(data, [6, 4, 3], [4, 5], seed=0)
    assert isinstance(width["diverged"], Divergence) and width["diverged"].epoch == 1 and width["test_accuracy"] == []
    tasks = [data, data]
    rec = schedules.run_task_schedule(tasks, [[0], [0, 1]], [5], seed=0)
    assert isinstance(rec["diverged"], Divergence) and rec["diverged"].epoch == 1
    assert all(rec[k] == [] for k in ("active", "widths", "accuracy", "attach_change", "adapt_change"))


def test_width_schedule_and_run_width_schedule():
    assert schedules.width_schedule(8, 4, warmup=2, adapt=4, settle=1) == [8, 8, 7, 6, 5, 4, 4]
    assert schedules.width_schedule(3, 3, warmup=0, adapt=2, settle=0) == [3, 3]
    with pytest.raises(ValueError, match="adapt"):
        schedules.width_schedule(3, 4, warmup=0, adapt=0, settle=0)
    x, y = blob_task(dtype=torch.float32)
    data = (x[:180], y[:180], x[180:], y[180:])
    run = schedules.run_width_schedule(data, [6, 4, 4, 3], [4, 6, 5, [2, 3]], seed=0)
    assert [w[1:-1] for w in run["widths"]] == [[4, 4], [6, 6], [5, 5], [2, 3]]
    assert run["resize_epoch"] == [1, 2, 3] and run["diverged"] is None
    assert run["acc_before"][0] == run["acc_after"][0]  # growth leaves the function unchanged
    with pytest.raises(ValueError, match="hidden widths"):
        schedules.run_width_schedule(data, [6, 4, 4, 3], [[4, 4, 4]])
    with pytest.raises(ValueError, match="lr"):
        schedules.run_width_schedule(data, [6, 4, 3], [4], lr=0.0)
    with pytest.raises(TypeError, match="schedule"):
        schedules.run_width_schedule(data, [6, 4, 3], 4)


def test_run_task_schedule_attaches_and_detaches_exactly():
    tasks = [blob_task(n_in=d, seed=s) for d, s in ((5, 0), (4, 1), (6, 2))]
    tasks = [(x[:180], y[:180], x[180:], y[180:]) for x, y in tasks]
    schedule = [[0], [0, 1], [0, 1, 2], [1]]
    rec = schedules.run_task_schedule(tasks, schedule, [10, 8], threshold=0.95, buffer=2, seed=0)
    assert rec["active"] == schedule and rec["diverged"] is None
    assert [w[0] for w in rec["widths"]] == [5, 9, 15, 4] and [w[-1] for w in rec["widths"]] == [3, 6, 9, 3]
    assert max(rec["attach_change"]) < 1e-5
    assert math.isnan(rec["accuracy"][0][1]) and not math.isnan(rec["accuracy"][2][2])
    assert len(rec["strengths"][0]) == 2 and rec["strengths"][0][0].shape == (rec["widths"][0][1],)
    static = schedules.run_task_schedule(tasks, schedule, [10, 8], adapt=False, seed=0)
    assert all(w[1:-1] == [10, 8] for w in static["widths"]) and static["changes"][0] == {}
    with pytest.raises(ValueError, match="same number of classes"):
        schedules.run_task_schedule(
            [tasks[0], (tasks[1][0], tasks[1][1] % 2, tasks[1][2], tasks[1][3] % 2)], [[0]], [4]
        )
    with pytest.raises(ValueError, match="schedule\\[0\\]"):
        schedules.run_task_schedule(tasks, [[0, 0]], [4])
    with pytest.raises(ValueError, match="batch_size"):
        schedules.run_task_schedule(tasks, [[0]], [4], batch_size=0)


def test_run_task_schedule_baseline_measures_magnitude_pruning_without_touching_the_run():
    tasks = [blob_task(n_in=d, seed=s) for d, s in ((5, 0), (4, 1))]
    tasks = [(x[:180], y[:180], x[180:], y[180:]) for x, y in tasks]
    schedule = [[0], [0, 1], [0, 1]]
    plain = schedules.run_task_schedule(tasks, schedule, [16, 12], threshold=0.95, buffer=2, seed=3)
    rec = schedules.run_task_schedule(tasks, schedule, [16, 12], threshold=0.95, buffer=2, seed=3, baseline=True)
    assert rec["widths"] == plain["widths"] and rec["changes"] == plain["changes"]  # the baseline runs on a copy
    assert [ch["eps_scaled"] for ch in rec["adapt_change"]] == [ch["eps_scaled"] for ch in plain["adapt_change"]]
    removing = [any(v < 0 for v in ch.values()) for ch in rec["changes"]]
    assert any(removing)
    for e, has in enumerate(removing):
        assert (rec["baseline_change"][e] is None) != has
    first = removing.index(True)
    assert rec["baseline_change"][first]["eps_scaled"] > 0 and rec["baseline_change"][first]["kl"] >= 0
    with pytest.raises(TypeError, match="baseline"):
        schedules.run_task_schedule(tasks, [[0]], [4], baseline="yes")


def test_random_rotation_is_orthogonal_seeded_and_validated():
    q = schedules.random_rotation(7, torch.Generator().manual_seed(0))
    assert q.dtype == F64 and torch.allclose(q.T @ q, torch.eye(7, dtype=F64), atol=1e-12)
    assert torch.equal(q, schedules.random_rotation(7, torch.Generator().manual_seed(0)))
    assert not torch.allclose(q, schedules.random_rotation(7, torch.Generator().manual_seed(1)))
    with pytest.raises(TypeError, match="generator"):
        schedules.random_rotation(3, None)
    with pytest.raises(ValueError, match="n"):
        schedules.random_rotation(0, torch.Generator())


def test_run_task_schedule_baseline_prunes_in_a_random_basis_not_the_current_one():
    """The baseline rotates each pruned layer at random first: it differs from magnitude pruning in the current basis."""
    tasks = [blob_task(n_in=d, seed=s) for d, s in ((5, 0), (4, 1))]
    tasks = [(x[:180], y[:180], x[180:], y[180:]) for x, y in tasks]
    rec = schedules.run_task_schedule(tasks, [[0], [0, 1]], [16, 12], threshold=0.95, buffer=2, seed=3, baseline=True)
    first = next(e for e, ch in enumerate(rec["changes"]) if any(v < 0 for v in ch.values()))
    assert first == 0
    # rebuild the state just before the first adaptation step and prune in the current basis
    rebuilt = schedules.run_task_schedule(tasks, [[0]], [16, 12], adapt=False, threshold=0.95, buffer=2, seed=3)
    model = rebuilt["model"]
    assert rebuilt["acc_after"][0] == rec["acc_before"][0]  # the same state as just before the first step
    x = tasks[0][2].to(torch.float32)
    before = train.predict(model, x)
    native = copy.deepcopy(model)
    for k in sorted(rec["changes"][first], reverse=True):
        if rec["changes"][first][k] < 0:
            native.prune_by_magnitude(k, -rec["changes"][first][k])
    native_eps = schedules.function_change(before, train.predict(native, x))["eps_scaled"]
    assert rec["adapt_change"][first]["eps_scaled"] != pytest.approx(native_eps, rel=1e-6)  # a real removal step
    assert rec["baseline_change"][first]["eps_scaled"] != pytest.approx(native_eps, rel=1e-6)


def test_prune_by_magnitude_removes_the_smallest_rows_with_compensation():
    model = IsotropicMLP([4, 6, 5, 2], dtype=F64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.weights[1].mul_(torch.arange(1, 6, dtype=F64)[:, None])
        model.weights[1][0] = 0.0  # a dead neuron with a bias: removing it is exact with o/psi compensation
        model.biases[1][0] = 0.5
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    before = model(x).detach()
    removed = model.prune_by_magnitude(1, 1)
    assert removed == [0.0] and model.widths == [4, 6, 4, 2]
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-12, atol=1e-12)
    removed = model.prune_by_magnitude(1, 2)
    assert removed == sorted(removed) and model.widths == [4, 6, 2, 2]
    with pytest.raises(ValueError, match="count"):
        model.prune_by_magnitude(1, 2)


def test_training_after_rotation_is_exact_for_sgd_with_rotated_momentum_only():
    x, y = blob_task(n_in=6, n=160, seed=4)
    data = (x[:120], y[:120], x[120:], y[120:])
    model = IsotropicMLP([6, 8, 7, 3], dtype=F64, generator=torch.Generator().manual_seed(0))
    kw = dict(lr=0.05, warmup_epochs=2, epochs=1, batch_size=16, seed=1)
    exact = schedules.training_after_rotation(model, data, optimizer="sgd", carry_state=True, **kw)
    stale = schedules.training_after_rotation(model, data, optimizer="sgd", carry_state=False, **kw)
    adam = schedules.training_after_rotation(model, data, optimizer="adamw", carry_state=True, **kw)
    assert exact["at_rotation"] < 1e-12 and exact["max_relative"] < 1e-10
    assert stale["max_relative"] > 1e-4 and adam["max_relative"] > 1e-4
    with pytest.raises(ValueError, match="optimizer"):
        schedules.training_after_rotation(model, data, optimizer="rmsprop")
    with pytest.raises(TypeError, match="model"):
        schedules.training_after_rotation(torch.nn.Linear(6, 3), data)


def test_grow_shrink_grid_shapes_pairing_and_differences(tmp_path):
    x, y = blob_task(n_in=5, n_classes=3, n=200, seed=2)
    data = (x[:150].float(), y[:150], x[150:].float(), y[150:])
    res = schedules.grow_shrink_grid(data, [2, 4], [2, 4], [0, 1], warmup=1, adapt=2, settle=1)
    assert res["epochs"] == 4 and set(res["adaptive"]) == {"2->2", "2->4", "4->2", "4->4"}
    # the diagonal of the grid is the static network (same seed, same batches)
    assert res["adaptive"]["4->4"] == res["static"]["4"]
    diffs = schedules.grid_differences(res)
    assert set(diffs) == {"2->4", "4->2", "elementwise 2", "elementwise 4"}
    assert all(n == 2 and math.isfinite(m) for m, _, n in diffs.values())
    assert schedules.grid_differences(res, epoch=4) == diffs
    at_1 = schedules.grid_differences(res, epoch=1)
    by_hand = 100.0 * (np.array([r[0] for r in res["adaptive"]["4->2"]]) - np.array([r[0] for r in res["static"]["2"]]))
    assert at_1["4->2"][0] == pytest.approx(by_hand.mean())
    with pytest.raises(ValueError, match="epoch"):
        schedules.grid_differences(res, epoch=5)
    path = tmp_path / "g.json"
    import json

    path.write_text(json.dumps(res))
    assert schedules.load_grow_shrink_grid(path) == res
    with pytest.raises(FileNotFoundError, match="grow_shrink_grid"):
        schedules.load_grow_shrink_grid(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="at least one"):
        schedules.grow_shrink_grid(data, [], [2], [0])
